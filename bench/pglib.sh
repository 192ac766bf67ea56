# bench/pglib.sh — what bench/pgbench.sh and bench/pginstr.sh share (sourced,
# not run): the CASE arguments, a throwaway PostgreSQL 15 cluster on a free
# loopback port, and one database per schema. The caller sets `here`, `repo`,
# `upto` (the last migration of schema new, 9999 for all) and defines die().
PEER_HARNESS=${PEER_HARNESS:-$repo/../shared/peer-bench/harness}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_OS_USER=${PG_OS_USER:-postgres}
pm_pid=

peer_ok() { [ -r "$PEER_HARNESS/schema.sql" ] && [ -r "$PEER_HARNESS/pgbench-webhook.sql" ]; }

# parse_cases [CASE ...]: fills the array `cases` with SCHEMA:STATEMENT pairs
# (old new, plus peer when the peer harness is there, by default)
parse_cases() {
	local c s t
	if [ $# -eq 0 ]; then
		set -- old new
		peer_ok && set -- "$@" peer
	fi
	cases=()
	for c in "$@"; do
		[[ $c == *:* ]] || c=$c:$c
		s=${c%%:*} t=${c#*:}
		[[ $s =~ ^(old|new|peer)$ && $t =~ ^(old|new|peer)$ ]] || die "bad case '$c' (see -h)"
		{ [ "$s" != peer ] && [ "$t" != peer ]; } || peer_ok || die "case $c needs $PEER_HARNESS"
		cases+=("$c")
	done
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi; }

# pg_stop: a fast shutdown of the cluster, then quit if it lingers past 30 s
pg_stop() {
	local i
	if [ -n "$pm_pid" ] && kill -0 "$pm_pid" 2>/dev/null; then
		kill -INT "$pm_pid" 2>/dev/null || true
		for i in $(seq 1 300); do kill -0 "$pm_pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pm_pid" 2>/dev/null && kill -QUIT "$pm_pid" 2>/dev/null
	fi
	pm_pid=
}

# pg_up BASE: initdb in BASE/data, postgresql.conf gets the address, port and
# socket directory plus whatever comes on stdin, then start it; sets `port`
# and `pm_pid`
pg_up() {
	local base=$1
	# a free loopback port (the kernel picks one; PostgreSQL binds it right after)
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$base"
	as_pg mkdir -p "$base/data" "$base/sock"
	as_pg "$PG_BINDIR/initdb" -D "$base/data" -U postgres --auth=trust --encoding=UTF8 \
		--locale=C.UTF-8 >"$base/initdb.log" 2>&1 || { cat "$base/initdb.log" >&2; exit 1; }
	{
		printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" \
			"$port" "$base/sock"
		cat
	} | as_pg tee -a "$base/data/postgresql.conf" >/dev/null
	as_pg "$PG_BINDIR/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 start >/dev/null
	pm_pid=$(head -1 "$base/data/postmaster.pid")
}

psqlc() { timeout 600 "$PG_BINDIR/psql" -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }

# make_databases: v_old, v_new, v_peer for the schemas `cases` uses
make_databases() {
	local c s m b
	declare -A made=()
	for c in "${cases[@]}"; do
		s=${c%%:*}
		[ -n "${made[$s]:-}" ] && continue
		made[$s]=1
		psqlc -d postgres -c "CREATE DATABASE v_$s"
		case $s in
		peer) psqlc -d "v_$s" -f "$PEER_HARNESS/schema.sql" >/dev/null ;;
		old) for m in "$repo"/db/migrations/000[12]_*.sql; do
			psqlc -d "v_$s" -1 -f "$m" >/dev/null; done ;;
		new) for m in $(find "$repo/db/migrations" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | LC_ALL=C sort); do
			b=$(basename "$m"); [[ ${b:0:4} > $upto ]] && break
			echo "schema new: $b"
			psqlc -d "v_$s" -1 -f "$m" >/dev/null; done ;;
		esac
	done
}
