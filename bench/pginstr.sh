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
PEER_HARNESS=${PEER_HARNESS:-$repo/../shared/peer-bench/harness}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_OS_USER=${PG_OS_USER:-postgres}
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
peer_ok() { [ -r "$PEER_HARNESS/schema.sql" ] && [ -r "$PEER_HARNESS/pgbench-webhook.sql" ]; }
if [ $# -eq 0 ]; then
	set -- old new
	peer_ok && set -- "$@" peer
fi
cases=()
for c in "$@"; do
	[[ $c == *:* ]] || c=$c:$c
	s=${c%%:*} t=${c#*:}
	[[ $s =~ ^(old|new|peer)$ && $t =~ ^(old|new|peer)$ ]] || die "bad case '$c'"
	{ [ "$s" != peer ] && [ "$t" != peer ]; } || peer_ok || die "case $c needs $PEER_HARNESS"
	cases+=("$c")
done
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi; }

base=$(mktemp -d /tmp/voice-pginstr.XXXXXX)
pm_pid=
cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	if [ -n "$pm_pid" ] && kill -0 "$pm_pid" 2>/dev/null; then
		kill -INT "$pm_pid" 2>/dev/null || true
		for i in $(seq 1 300); do kill -0 "$pm_pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pm_pid" 2>/dev/null && kill -QUIT "$pm_pid" 2>/dev/null
	fi
	rm -rf "$base"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$base"
as_pg mkdir -p "$base/data" "$base/sock"
as_pg "$PG_BINDIR/initdb" -D "$base/data" -U postgres --auth=trust --encoding=UTF8 \
	--locale=C.UTF-8 >"$base/initdb.log" 2>&1 || { cat "$base/initdb.log" >&2; exit 1; }
as_pg tee -a "$base/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base/sock'
shared_buffers = 512MB
max_wal_size = 4GB
EOF
as_pg "$PG_BINDIR/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 start >/dev/null
pm_pid=$(head -1 "$base/data/postmaster.pid")
psqlc() { timeout 600 "$PG_BINDIR/psql" -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
declare -A made=()
for c in "${cases[@]}"; do
	s=${c%%:*}
	[ -n "${made[$s]:-}" ] && continue
	made[$s]=1
	psqlc -d postgres -c "CREATE DATABASE v_$s"
	case $s in
	peer) psqlc -d "v_$s" -f "$PEER_HARNESS/schema.sql" >/dev/null ;;
	old) for m in "$repo"/db/migrations/000[12]_*.sql; do psqlc -d "v_$s" -1 -f "$m" >/dev/null; done ;;
	new) for m in $(find "$repo/db/migrations" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | LC_ALL=C sort); do
		b=$(basename "$m"); [[ ${b:0:4} > $upto ]] && break
		psqlc -d "v_$s" -1 -f "$m" >/dev/null; done ;;
	esac
done
kill -INT "$pm_pid"
for i in $(seq 1 300); do kill -0 "$pm_pid" 2>/dev/null || break; sleep 0.1; done
pm_pid=

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
