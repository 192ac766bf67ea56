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

# Quotes a value for a KEY='value' line (single quotes; ' becomes '\'').
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

# True if PID is a running process whose argv[0] or executable ends in NAME.
pid_is() {
	local pid=$1 name=$2 arg0 exe
	[[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] || return 1
	[ -d "/proc/$pid" ] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	arg0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1 || true)
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
