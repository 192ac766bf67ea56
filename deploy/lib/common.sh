# Shared by deploy/up, deploy/down and deploy/voicectl (sourced, not run).
# Expects VOICE_REPO to be set to the repository root.

: "${VOICE_RUN_DIR:=$VOICE_REPO/.run}"
PG_BIN=/usr/lib/postgresql/15/bin

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# install_packages LIST_FILE...: apt-get installs the Debian packages named in
# the files (one a line, # comments) that are not installed yet. An existing
# nginx (any flavour) satisfies nginx-light. Shared by deploy/up and tests/run.
install_packages() {
	local missing=() p
	for p in $(sed -e 's/#.*//' "$@"); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && continue
		[ "$p" = nginx-light ] && command -v nginx >/dev/null && continue
		missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	is_root || die "missing packages (${missing[*]}); run as root or set VOICE_SKIP_INSTALL=1"
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Absolute path of the run directory and everything under it.
run_paths() {
	mkdir -p "$VOICE_RUN_DIR"
	VOICE_RUN_DIR=$(cd "$VOICE_RUN_DIR" && pwd)
	STACK_ENV=$VOICE_RUN_DIR/stack.env
	GEN_ENV=$VOICE_RUN_DIR/generated.env
	PID_DIR=$VOICE_RUN_DIR/pids
	SOCK_DIR=$VOICE_RUN_DIR/sock
	LOG_DIR=$VOICE_RUN_DIR/logs
	TLS_DIR=$VOICE_RUN_DIR/tls
	NGINX_DIR=$VOICE_RUN_DIR/nginx
	PG_DIR=$VOICE_RUN_DIR/pg
	PG_DATA=$PG_DIR/data
	PG_SOCK=$PG_DIR/run
	SIM_DIR=$VOICE_RUN_DIR/sim
}

# Runs a command as the PostgreSQL server's owner: "postgres" when we are
# root (initdb refuses to run as root), else ourselves.
as_pg() {
	if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Reads KEY=VALUE lines (shell-quoted values as written by env_write, or
# plain values as in .env) from FILE and exports each KEY that is not
# already set in the environment. Lines that are not assignments are ignored.
# Nothing is evaluated: values are taken literally.
env_load_missing() {
	local file=$1 line key val
	[ -r "$file" ] || return 0
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		[[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
		key=${BASH_REMATCH[2]}
		val=${BASH_REMATCH[3]}
		if [[ $val =~ ^\'(.*)\'$ ]]; then
			val=${BASH_REMATCH[1]//\'\\\'\'/\'}
		elif [[ $val =~ ^\"(.*)\"$ ]]; then
			val=${BASH_REMATCH[1]}
		else
			val=${val%%[[:space:]]#*}
			val=${val%"${val##*[![:space:]]}"}
		fi
		if [ -z "${!key+x}" ]; then
			export "$key=$val"
		fi
	done <"$file"
}

# env_file_get FILE KEY: KEY's value in FILE (read as env_load_missing
# reads it; the environment does not count), or "" when it is not set there.
env_file_get() {
	(
		unset "$2"
		env_load_missing "$1"
		printf '%s' "${!2:-}"
	)
}

# public_origin URL: prints the origin (https://host[:port]) of an https URL,
# e.g. PUBLIC_BASE_URL for nginx's redirect to https; fails (prints nothing)
# for anything else, so nothing but a host and a port reaches nginx's config.
public_origin() {
	[[ $1 =~ ^(https://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?)(/[^[:space:]]*)?$ ]] ||
		return 1
	printf '%s' "${BASH_REMATCH[1]}"
}

# Quotes a value for a KEY='value' line (single quotes; ' becomes '\'').
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

# True if PID is a running process whose argv[0] or executable ends in NAME.
pid_is() {
	local pid=$1 name=$2 arg0 exe
	[[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] || return 1
	[ -d "/proc/$pid" ] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	arg0=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n 1 || true)
	[[ $exe == *"$name" || $arg0 == *"$name"* ]]
}

# Stops every PID listed in FILE (one per line) that is still the program
# NAME: SIGTERM, up to TIMEOUT seconds for it to exit, then SIGKILL. Removes
# FILE. Never signals anything not listed in FILE.
stop_pidfile() {
	local file=$1 name=$2 timeout=${3:-10} pid live i
	[ -f "$file" ] || return 0
	live=()
	while read -r pid || [ -n "$pid" ]; do
		if pid_is "$pid" "$name"; then
			kill -TERM "$pid" 2>/dev/null && live+=("$pid")
		fi
	done <"$file"
	for ((i = 0; i < timeout * 10 && ${#live[@]} > 0; i++)); do
		local still=()
		for pid in "${live[@]}"; do
			if pid_is "$pid" "$name"; then still+=("$pid"); fi
		done
		live=("${still[@]+"${still[@]}"}")
		[ ${#live[@]} -gt 0 ] && sleep 0.1
	done
	for pid in "${live[@]+"${live[@]}"}"; do
		say "$name (pid $pid) did not stop after ${timeout}s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -f "$file"
}

# Prints PID's start time (clock ticks after boot, field 22 of
# /proc/PID/stat): with the PID it names one process, even after PID reuse.
pid_start() {
	local stat f
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	read -r -a f <<<"${stat##*) }" # from field 3 (state) on
	[ ${#f[@]} -ge 20 ] && printf '%s' "${f[19]}"
}

# Prints PID:STARTTIME of every child of PID, one a line (from
# /proc/PID/task/*/children: whichever thread forked them). Nothing if PID is
# gone.
pid_children() {
	local pid=$1 all kids kid start
	all=$(cat "/proc/$pid"/task/*/children 2>/dev/null | tr '\n' ' ') || true
	read -r -a kids <<<"$all"
	for kid in "${kids[@]+"${kids[@]}"}"; do
		start=$(pid_start "$kid") && printf '%s:%s\n' "$kid" "$start"
	done
	return 0
}

# Stops the pool master listed in FILE (call_fcgi or webhook_fcgi as
# spawn-fcgi -F 1 recorded it) and its worker processes. SIGTERM goes to the
# master only: it stops its workers accepting, lets their requests in flight
# finish, waits for them and exits. After TIMEOUT seconds the master is
# killed, and so is every worker of it still running (one left behind would
# keep serving on the socket). Workers are recognised by PID and start time,
# never by name alone. Removes FILE.
stop_master() {
	local file=$1 name=$2 timeout=${3:-35} pid i kid killed=0 deadline
	[ -f "$file" ] || return 0
	pid=$(head -n 1 "$file")
	if ! pid_is "$pid" "$name"; then
		rm -f "$file"
		return 0
	fi
	local -A kids=()
	for kid in $(pid_children "$pid"); do kids[$kid]=1; done
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + timeout + 1)) # at least TIMEOUT whole seconds
	while [ $SECONDS -lt $deadline ]; do
		# Workers the master starts while draining count too.
		for kid in $(pid_children "$pid"); do kids[$kid]=1; done
		pid_is "$pid" "$name" || break
		sleep 0.1
	done
	if pid_is "$pid" "$name"; then
		for kid in $(pid_children "$pid"); do kids[$kid]=1; done
		say "$name (pid $pid) did not stop after ${timeout}s; killing it and its workers"
		kill -KILL "$pid" 2>/dev/null || true
		killed=1
	fi
	# A master that exited by itself waited for its workers: any one still
	# there gets a second to finish exiting before it is killed.
	for ((i = 0; killed == 0 && i < 10; i++)); do
		[ -n "$(same_processes "$name" "${!kids[@]}")" ] || break
		sleep 0.1
	done
	for kid in $(same_processes "$name" "${!kids[@]}"); do
		[ "$killed" = 1 ] || say "$name worker (pid $kid) outlived its master; killing it"
		kill -KILL "$kid" 2>/dev/null || true
	done
	rm -f "$file"
}

# Prints, of the PID:STARTTIME arguments after NAME, the PIDs that still name
# that process and are a running NAME.
same_processes() {
	local name=$1 kid start
	shift
	for kid in "$@"; do
		start=$(pid_start "${kid%%:*}") || continue
		[ "$start" = "${kid#*:}" ] && pid_is "${kid%%:*}" "$name" && printf '%s\n' "${kid%%:*}"
	done
	return 0
}

# True if every PID in FILE is a running NAME (and there is at least one).
pidfile_alive() {
	local file=$1 name=$2 pid n=0
	[ -s "$file" ] || return 1
	while read -r pid || [ -n "$pid" ]; do
		pid_is "$pid" "$name" || return 1
		n=$((n + 1))
	done <"$file"
	[ "$n" -gt 0 ]
}

# Embedded PostgreSQL helpers.
pg_running() {
	[ -f "$PG_DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# Splits DATABASE_URL into a connection string without the password
# (PG_CONNINFO, safe for a process's arguments) and the password (exported as
# PGPASSWORD), so secrets never show in `ps`. Accepts URIs and key=value
# strings, like libpq.
pg_client_env() {
	[ -n "${DATABASE_URL:-}" ] || die "DATABASE_URL is not set (run deploy/up, or set it)"
	local out
	out=$(python3 - <<'PY'
import os, re, shlex, urllib.parse
url = os.environ["DATABASE_URL"]
pw = None
if re.match(r"^postgres(ql)?://", url):
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        userinfo, hosts = parts.netloc.rsplit("@", 1)
        if ":" in userinfo:
            user, raw = userinfo.split(":", 1)
            pw = urllib.parse.unquote(raw)
            url = urllib.parse.urlunsplit(parts._replace(netloc=user + "@" + hosts))
else:
    m = re.search(r"(^|\s)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))", url)
    if m:
        pw = re.sub(r"\\(.)", r"\1", m.group(2)) if m.group(2) is not None else m.group(3)
        url = (url[:m.start()] + " " + url[m.end():]).strip()
print("PG_CONNINFO=" + shlex.quote(url))
if pw is not None:
    print("export PGPASSWORD=" + shlex.quote(pw))
PY
	) || die "could not parse DATABASE_URL"
	eval "$out"
	export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
}

# psql against DATABASE_URL: no psqlrc, stop at the first error, quiet.
db_psql() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$PG_CONNINFO" "$@"
}
