#!/usr/bin/env bash
# bench/pgbench.sh [options] [CASE ...]
#
# PostgreSQL cost of one status callback, without the service: a throwaway
# PostgreSQL 15 cluster on 127.0.0.1 (initdb in a temporary directory, fsync,
# synchronous_commit and full_page_writes on), one database per schema, and
# pgbench -M prepared running the callback statement. For every run it prints
# callbacks/s, the CPU PostgreSQL used (postmaster and all its children,
# from /proc: 100% = one core) and that CPU per callback, the share of calls
# updates that were HOT, and checks that one event is stored per callback.
#
# CASE is SCHEMA:STATEMENT (or just NAME for NAME:NAME):
#   schema    old   db/migrations 0001 + 0002 (the schema before 0003)
#             new   every db/migrations/*.sql in order (0001, 0002, 0003, ...)
#             peer  the Node peer's schema ($PEER_HARNESS/schema.sql)
#   statement old   bench/callback-old.sql (event_record before 0003)
#             new   bench/callback.sql     (event_record for 0003)
#             peer  $PEER_HARNESS/pgbench-webhook.sql
# Default cases: old new, plus peer when $PEER_HARNESS has its files.
#
# Options (defaults in brackets):
#   -c N   pgbench clients [64]          -j N  pgbench threads [2]
#   -T S   seconds per run [10]          -b N  callbacks per transaction [1]:
#          N > 1 wraps N statements in BEGIN ... COMMIT (group commit)
#   -w N   calls per wave per client [100]: each client sends initiated for
#          N calls, then ringing, in-progress, completed for the same N, so a
#          call is one INSERT and three UPDATEs. 2000 is the peer harness's
#          value: a 10 s run then only ever inserts.
#   -r N   rounds [1]: all cases run N times, interleaved (a b c a b c ...)
#   -m NNNN  schema new stops at migration NNNN (e.g. 0003) [all of them]
#   -k     keep the cluster's directory (logs) afterwards
# Env: PEER_HARNESS [<repo>/../shared/peer-bench/harness], PG_BINDIR
# [/usr/lib/postgresql/15/bin], PG_OS_USER [postgres: as root, the server
# runs as this user; PostgreSQL refuses to run as root].
#
# Everything stays on loopback; each pgbench run has a time limit; the
# cluster is stopped by its postmaster's PID at the end, also on failure or
# Ctrl-C, and its directory removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
clients=64 threads=2 secs=10 batch=1 wave=100 rounds=1 keep= upto=9999

die() { echo "pgbench.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
posint() { [[ $2 =~ ^[1-9][0-9]{0,5}$ ]] || die "$1 needs a positive integer, not '$2'"; }

while getopts c:j:T:b:w:r:m:kh opt; do
	case $opt in
	c) posint -c "$OPTARG"; clients=$OPTARG ;;
	j) posint -j "$OPTARG"; threads=$OPTARG ;;
	T) posint -T "$OPTARG"; secs=$OPTARG ;;
	b) posint -b "$OPTARG"; batch=$OPTARG ;;
	w) posint -w "$OPTARG"; wave=$OPTARG ;;
	r) posint -r "$OPTARG"; rounds=$OPTARG ;;
	m) [[ $OPTARG =~ ^[0-9]{4}$ ]] || die "-m needs a migration number like 0003"; upto=$OPTARG ;;
	k) keep=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ "$secs" -le 600 ] || die "-T is at most 600"
[ "$clients" -le 180 ] || die "-c is at most 180"
[ "$batch" -le 1000 ] || die "-b is at most 1000"
[ "$rounds" -le 20 ] || die "-r is at most 20"

# shellcheck source=bench/pglib.sh
. "$here/pglib.sh"
parse_cases "$@"

for b in initdb pg_ctl postgres psql pgbench; do
	[ -x "$PG_BINDIR/$b" ] || die "$PG_BINDIR/$b not found (set PG_BINDIR)"
done
base=$(mktemp -d /tmp/voice-pgbench.XXXXXX)
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	pg_stop
	if [ -n "$keep" ]; then echo "pgbench.sh: kept $base" >&2; else rm -rf "$base"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_up "$base" <<EOF
max_connections = 200
shared_buffers = 512MB
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
max_wal_size = 4GB
checkpoint_timeout = 30min
logging_collector = off
log_min_messages = warning
EOF

make_databases

# the pgbench script of each statement, BATCH statements per transaction
script_for() {
	local t=$1 src out=$base/$1-b$batch.sql i
	case $t in
	old) src=$here/callback-old.sql ;;
	new) src=$here/callback.sql ;;
	peer) src=$PEER_HARNESS/pgbench-webhook.sql ;;
	esac
	if [ ! -e "$out" ]; then
		if [ "$batch" = 1 ]; then cp "$src" "$out"; else
			{ echo "BEGIN;"; for i in $(seq "$batch"); do cat "$src"; echo; done; echo "COMMIT;"; } >"$out"
		fi
	fi
	echo "$out"
}

# CPU seconds (utime + stime) of the postmaster and every live child, plus
# what its reaped children used (cutime + cstime)
pg_cpu() {
	python3 - "$pm_pid" <<'PY'
import os, sys
pm = sys.argv[1]
hz = os.sysconf("SC_CLK_TCK")
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        continue
    fields = st[st.rindex(")") + 2:].split()
    ppid, ut, stt, cut, cst = fields[1], *map(int, (fields[11], fields[12], fields[13], fields[14]))
    if pid == pm:
        total += ut + stt + cut + cst
    elif ppid == pm:
        total += ut + stt
print(f"{total / hz:.2f}")
PY
}
pg_children() { { grep -ls "^PPid:[[:space:]]*$pm_pid\$" /proc/[0-9]*/status || true; } | wc -l; }

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "PostgreSQL $("$PG_BINDIR/postgres" -V | awk '{print $3}') on 127.0.0.1:$port, $(nproc) cores;" \
	"pgbench -M prepared -c $clients -j $threads -T $secs, $batch callback(s) per transaction, wave $wave"
printf '%-10s %5s %9s %9s %7s %9s %7s %5s %s\n' case round tx/s cb/s pg_cpu% us/cb wal/cb hot% check
declare -A res_cbs=() res_cpu=() res_us=()
for r in $(seq "$rounds"); do
	for c in "${cases[@]}"; do
		s=${c%%:*} t=${c#*:} db=v_${c%%:*}
		script=$(script_for "$t")
		psqlc -d "$db" -c "TRUNCATE call_events, calls RESTART IDENTITY" -c "CHECKPOINT" \
			-c "SELECT pg_stat_reset()" >/dev/null
		lsn0=$(psqlc -d "$db" -c "SELECT pg_current_wal_insert_lsn()")
		before_children=$(pg_children)
		cpu0=$(pg_cpu)
		log=$base/pgbench-$s-$t-$r.log
		if ! timeout $((secs + 60)) "$PG_BINDIR/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres \
			-M prepared -c "$clients" -j "$threads" -T "$secs" -D wave="$wave" -D k=-1 \
			-f "$script" "$db" >"$log" 2>&1; then
			cat "$log" >&2
			die "pgbench failed for case $c"
		fi
		# the backends exit after pgbench; wait (bounded) until they are reaped
		for i in $(seq 1 100); do [ "$(pg_children)" -le "$before_children" ] && break; sleep 0.05; done
		cpu1=$(pg_cpu)
		processed=$(sed -n 's/.*actually processed: \([0-9]*\).*/\1/p' "$log")
		failed=$(sed -n 's/.*number of failed transactions: \([0-9]*\).*/\1/p' "$log")
		stored=$(psqlc -d "$db" -c "SELECT count(*) FROM call_events")
		wal=$(psqlc -d "$db" -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0') / greatest($processed * $batch, 1))")
		hot=$(psqlc -d "$db" -c "SELECT CASE WHEN n_tup_upd > 0 THEN round(100.0 * n_tup_hot_upd / n_tup_upd) ELSE 0 END FROM pg_stat_user_tables WHERE relname = 'calls'")
		read -r tps cbs cpu us < <(awk -v p="$processed" -v b="$batch" -v T="$secs" -v c0="$cpu0" -v c1="$cpu1" \
			'BEGIN{tps=p/T; cbs=tps*b; cpu=(c1-c0)/T*100; printf "%.0f %.0f %.0f %.0f\n", tps, cbs, cpu, (c1-c0)*1e6/(p*b)}')
		check=PASS
		[ "$stored" = "$((processed * batch))" ] && [ "${failed:-0}" = 0 ] || check="FAIL(stored $stored of $((processed * batch)), failed ${failed:-?})"
		printf '%-10s %5s %9s %9s %7s %9s %7s %5s %s\n' "$c" "$r" "$tps" "$cbs" "$cpu" "$us" "$wal" "$hot" "$check"
		res_cbs[$c]+="$cbs " res_cpu[$c]+="$cpu " res_us[$c]+="$us "
		[ "$check" = PASS ] || die "case $c: $check"
	done
done

if [ "$rounds" -gt 1 ]; then
	echo
	echo "median of $rounds rounds:"
	printf '%-10s %9s %7s %9s\n' case cb/s pg_cpu% us/cb
	for c in "${cases[@]}"; do
		# shellcheck disable=SC2086
		printf '%-10s %9s %7s %9s\n' "$c" "$(median ${res_cbs[$c]})" "$(median ${res_cpu[$c]})" "$(median ${res_us[$c]})"
	done
fi
