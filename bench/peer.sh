#!/usr/bin/env bash
# bench/peer.sh — the service against the Node peer, with the shared harness
# (shared/peer-bench/harness/bench-c-vs-peer.sh), on this machine.
#
#   REPEAT=3 LATENCY_MS=150 bench/peer.sh          # from the repository root, as root
#   PROJECT=/tmp/baseline REPEAT=1 bench/peer.sh   # measure another checkout
#
# Why a copy: shared/peer-bench is laid without write bits (CI gets it the
# same way), but its scripts run `npm ci` in place when node_modules is
# missing (harness/peer.sh, harness/bench-webhook.sh) and none of them takes
# another location for it. NODE_PATH would satisfy node's require(), not
# those `[ -d node_modules ]` checks, so the tree itself cannot be run
# without writing into it. This script copies it, unchanged, to
# PEER_BENCH_DIR (default /tmp/peer-bench), runs `npm ci` there and then
# runs the copy's bench-c-vs-peer.sh from PROJECT, exactly as its README
# says for the original. The copy is refreshed whenever the shared tree
# differs from it (node_modules aside).
#
# Environment:
#   PROJECT          the checkout to measure (default: this repository); the
#                    harness runs its deploy/up (builds PROJECT/build/release,
#                    run dir PROJECT/.run) and deploy/down
#   REPEAT, LATENCY_MS, VOICE_*_WORKERS, BENCH_DURATION ...
#                    passed through to the harness (see its README)
#   PEER_BENCH_SRC   the harness to copy (default: <repo>/../shared/peer-bench)
#   PEER_BENCH_DIR   where the copy lives (default /tmp/peer-bench)
#   RUN_DIR          the harness's scratch dir (default /tmp/peerbench-run):
#                    PID files, logs, c-vs-peer.log with every SUMMARY line
#   PEER_BENCH_NO_INSTALL=1  do not apt-get install anything
#
# Needs: root (PostgreSQL and the workers run as other users), node >= 20 and
# npm, the Debian packages of deploy/packages.txt plus wrk (installed here
# when missing). Uses the fixed loopback ports 8443 and 8080 (deploy/up),
# 55432 (PostgreSQL), 18089 (fake Twilio) and 3000 (peer): it refuses to
# start while any of them is taken. Every process is stopped by the harness
# (deploy/down and its PID files) on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=${PEER_BENCH_SRC:-$repo/../shared/peer-bench}
dst=${PEER_BENCH_DIR:-/tmp/peer-bench}
project=$(cd "${PROJECT:-$repo}" && pwd)
run_dir=${RUN_DIR:-/tmp/peerbench-run}

say() { printf 'peer.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL and the workers run as other users)"
[ -f "$src/harness/bench-c-vs-peer.sh" ] || die "no harness in $src (set PEER_BENCH_SRC)"
src=$(cd "$src" && pwd)
[ -f "$project/deploy/up" ] || die "PROJECT=$project has no deploy/up"

# Packages: what deploy/up needs (its own list) plus wrk for the load.
if [ "${PEER_BENCH_NO_INSTALL:-0}" != 1 ]; then
	# shellcheck source=/dev/null
	VOICE_REPO=$repo . "$repo/deploy/lib/common.sh"
	install_packages "$repo/deploy/packages.txt" <(echo wrk)
fi
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	die "node and npm are missing (the harness needs node >= 20)"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node $(node -v) is too old; the harness needs node >= 20"

# The copy: refreshed when the shared tree changed, node_modules installed
# from the lock files (no install scripts; npm's cache makes a rerun offline).
if [ ! -d "$dst" ] || ! diff -rq -x node_modules "$src" "$dst" >/dev/null 2>&1; then
	say "copying $src to $dst"
	rm -rf "$dst"
	cp -r "$src" "$dst"
	chmod -R u+w "$dst"
fi
for d in peer harness; do
	if [ ! -d "$dst/$d/node_modules" ]; then
		say "npm ci in $dst/$d"
		(cd "$dst/$d" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts --prefer-offline >/dev/null) ||
			die "npm ci failed in $dst/$d"
	fi
done

# The harness's ports are fixed; a stack or a peer left running would be
# measured instead of (or fight with) the one started here.
busy=""
for p in 8443 8080 55432 18089 3000; do
	if ss -Hltn "sport = :$p" | grep -q .; then busy="$busy $p"; fi
done
[ -z "$busy" ] || die "port(s)$busy already in use on this machine; stop what holds them (deploy/down, harness stop scripts) first"

say "project $project ($(git -C "$project" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$project" diff --quiet HEAD 2>/dev/null || echo ', with uncommitted changes')), harness $dst, REPEAT=${REPEAT:-3} LATENCY_MS=${LATENCY_MS:-150}"
cd "$project"
rc=0
PROJECT=$project RUN_DIR=$run_dir bash "$dst/harness/bench-c-vs-peer.sh" || rc=$?

log=$run_dir/c-vs-peer.log
if [ -s "$log" ]; then
	echo
	python3 "$dst/harness/summarize.py" "$log" || true
	echo
	# c/peer ratio of the medians, per load
	python3 - "$log" <<'PY' || true
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    if line.startswith("SUMMARY "):
        kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
        runs.setdefault(kv["label"], []).append(kv)
def med(label, key):
    v = [float(r[key]) for r in runs.get(label, []) if r.get(key) not in (None, "", "-")]
    return statistics.median(v) if v else None
for label in runs:
    if not label.startswith("c-"):
        continue
    peer = "peer-" + label[2:]
    parts = []
    for key in ("rps", "p50_ms", "p99_ms", "pg_cpu"):
        c, p = med(label, key), med(peer, key)
        if c is not None and p:
            parts.append(f"{key} {c:g}/{p:g} = {c / p:.2f}")
    print(f"ratio c/peer {label[2:]}: " + ", ".join(parts))
PY
fi
exit $rc
