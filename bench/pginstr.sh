#!/usr/bin/env bash
# bench/pginstr.sh [-n N] [-w WAVE] [-m NNNN] [CASE ...]
#
# PostgreSQL instructions per status callback, counted by valgrind
# (callgrind): a number that does not move with the machine's load, unlike
# the CPU time bench/pgbench.sh measures. Same cases and pgbench scripts as
# bench/pgbench.sh (CASE is SCHEMA:STATEMENT or NAME, from old, new, peer;
# default old new, plus peer when $PEER_HARNESS has its files).
#
# For each case it loads the schema into a throwaway cluster (initdb in a
# temporary directory, run as user postgres, 127.0.0.1 only), stops it, and
# runs a single-user backend (postgres --single) under callgrind that
# PREPAREs the pgbench script's statement (its :call, :step and :rank become
# $1, $2, $3) and EXECUTEs it N times, one client's callbacks in waves of
# WAVE calls (as pgbench does: initiated, ringing, in-progress, completed),
# each in its own transaction. The same without EXECUTEs is subtracted: what
# remains is the work of N callbacks (executor, triggers, indexes, WAL
# insertion, commit), not the session's start. fsync is off (a system call,
# not instructions); nothing else differs from bench/pgbench.sh's settings.
# Counts are user-space instructions of the backend only; the kernel, the
# WAL writer and the client are not in them, so CPU ratios (pgbench.sh)
# come out smaller than these.
#
# Options: -n N callbacks [1200]; -w WAVE [100]; -m NNNN: schema new stops at
# migration NNNN [all]. Needs valgrind (Debian package valgrind). Takes
# about 10 s per case.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
n=1200 wave=100 upto=9999

die() { echo "pginstr.sh: $*" >&2; exit 2; }
while getopts n:w:m:h opt; do
	case $opt in
	n) [[ $OPTARG =~ ^[1-9][0-9]{0,4}$ ]] || die "-n needs 1..99999"; n=$OPTARG ;;
	w) [[ $OPTARG =~ ^[1-9][0-9]{0,4}$ ]] || die "-w needs 1..99999"; wave=$OPTARG ;;
	m) [[ $OPTARG =~ ^[0-9]{4}$ ]] || die "-m needs a migration number like 0003"; upto=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
# shellcheck source=bench/pglib.sh
. "$here/pglib.sh"
parse_cases "$@"
base=$(mktemp -d /tmp/voice-pginstr.XXXXXX)
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	pg_stop
	rm -rf "$base"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_up "$base" <<EOF
shared_buffers = 512MB
max_wal_size = 4GB
EOF
make_databases >/dev/null
pg_stop # single-user runs below take the data directory

# single-user input: PREPARE the script's statement, then COUNT executions
gen_input() {
	python3 - "$1" "$2" "$wave" <<'PY'
import re, sys
path, count, wave = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = open(path).read()
sql = "\n".join(l for l in text.splitlines() if not l.startswith("\\") and not l.startswith("--")).strip()
sql = re.sub(r":(call|step|rank)\b", lambda m: {"call": "$1", "step": "$2", "rank": "$3"}[m.group(1)], sql)
assert not re.search(r"(?<!:):[a-z]", sql), "unknown pgbench variable left"
print("TRUNCATE call_events, calls;")
print("PREPARE ev(bigint, integer, integer) AS " + " ".join(sql.split()))
for k in range(count):
    step = (k // wave) % 4
    call = (k // (4 * wave)) * wave + k % wave
    print(f"EXECUTE ev({call}, {step}, {step + 1});")
PY
}
run_count() { # DB SCRIPT COUNT -> instructions
	local in=$base/in-$RANDOM.sql out=$base/cg.out log=$base/single.log
	gen_input "$2" "$3" >"$in"
	chmod a+r "$in"
	as_pg timeout 900 valgrind --tool=callgrind --callgrind-out-file="$out" \
		"$PG_BINDIR/postgres" --single -D "$base/data" -c fsync=off "$1" <"$in" >"$log" 2>&1 ||
		{ tail -20 "$log" >&2; die "single-user run failed"; }
	! grep -q ERROR "$log" || { grep -m3 ERROR "$log" >&2; die "statement failed in $1"; }
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
}

echo "PostgreSQL $("$PG_BINDIR/postgres" -V | awk '{print $3}'), callgrind; $n callbacks per case, one client, waves of $wave"
printf '%-10s %14s\n' case instr/cb
declare -A per=()
for c in "${cases[@]}"; do
	s=${c%%:*} t=${c#*:}
	case $t in
	old) src=$here/callback-old.sql ;;
	new) src=$here/callback.sql ;;
	peer) src=$PEER_HARNESS/pgbench-webhook.sql ;;
	esac
	i0=$(run_count "v_$s" "$src" 0)
	i1=$(run_count "v_$s" "$src" "$n")
	per[$c]=$(( (i1 - i0) / n ))
	printf '%-10s %14s\n' "$c" "${per[$c]}"
done
for c in "${cases[@]}"; do
	[ "$c" = peer:peer ] && [ -n "${per[peer:peer]:-}" ] || continue
	echo
	for d in "${cases[@]}"; do
		awk -v a="${per[$d]}" -v b="${per[peer:peer]}" -v d="$d" 'BEGIN{printf "%-10s %.2fx the peer\n", d, a/b}'
	done
done
