#!/usr/bin/env bash
# bench/engine/run.sh - the run engine of `outrigger serve`: cost per step,
# log ingestion, and event-stream delivery, against the targets of
# ../shared/notes/perf-baselines.md.
#
# What it does (bench/README.md explains how to read the result):
#   1. engine overhead per step: a blueprint of STEPS no-op steps (a chain, a
#      fan-out and join, another chain) using bench/engine/noop.c, run on two
#      servers side by side, --parallel 1 and --parallel 8, alternating; per
#      step = the run's wall time / steps executed, split into time inside
#      steps (started_at..finished_at) and time between them; beside it the
#      raw cost of starting processes with posix_spawn: a standalone
#      `outrigger step` of the noop plugin, `outrigger version`, an empty
#      main() linked against the same libraries (with and without libcurl,
#      and with libjansson only), /bin/true;
#   2. log ingestion: one step writing LINES lines of LINE_BYTES bytes, through
#      the exec plugin (a C line generator), through api->log and through the
#      runner's stdout (bench/engine/chatty.c); lines/s = lines stored / step
#      duration; meanwhile a paced client GETs an environment and its p99 is
#      compared with the same client's p99 with no run, same server, same round;
#   3. SSE delivery: WATCHERS clients of one run's event stream while a step
#      logs TICK_RATE lines a second for TICK_SECONDS, each carrying its
#      CLOCK_REALTIME in microseconds; delivered/expected, latency p50/p99,
#      server VmRSS.
#
# It must never touch anything but loopback, and never stop a process it did
# not start: every server and client is stopped by PID from the EXIT trap.
#
# Environment: ROUNDS (5), FIGURES ("1 2 3"), STEPS (200), SPAWNS (200),
# LINES (2000000), LINE_BYTES (100), LOG_MODES ("exec log print"),
# PROBE_RATE (500), PROBE_CONNS (4), PROBE_SECONDS (5), WATCHERS ("1000
# 5000"), TICK_RATE (100), TICK_SECONDS (10), OUTRIGGER (build/outrigger),
# CC (cc), OUT (build/bench/engine), KEEP_TMP=1 keeps the temp dir.
#
# Exit status: 0 when every measurement was clean (a MISS is reported, not
# failed: this is a benchmark on a noisy machine, not a test); 1 when a run
# failed, lines or events were lost, a client saw errors or a server died;
# 2 on a usage or set-up problem.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

ROUNDS=${ROUNDS:-5}
FIGURES=${FIGURES:-1 2 3}
STEPS=${STEPS:-200}
SPAWNS=${SPAWNS:-200}
LINES=${LINES:-2000000}
LINE_BYTES=${LINE_BYTES:-100}
LOG_MODES=${LOG_MODES:-exec log print}
PROBE_RATE=${PROBE_RATE:-500}
PROBE_CONNS=${PROBE_CONNS:-4}
PROBE_SECONDS=${PROBE_SECONDS:-5}
WATCHERS=${WATCHERS:-1000 5000}
TICK_RATE=${TICK_RATE:-100}
TICK_SECONDS=${TICK_SECONDS:-10}
OUTRIGGER=${OUTRIGGER:-$root/build/outrigger}
CC=${CC:-cc}
OUT=${OUT:-$root/build/bench/engine}

# Targets of perf-baselines.md ("Targets for Outrigger").
T_STEP_MS=5		# engine overhead per step, median
T_LINES_S=200000	# log lines ingested per second
T_API_P99=1.20		# API p99 during ingestion / without, at most
T_SSE_1K_P99=20		# ms, 1 000 watchers
T_SSE_1K_RSS=40		# MB, 1 000 watchers
T_SSE_5K_P99=150	# ms, 5 000 watchers

say() { printf 'bench/engine: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
pos() { if ! is_uint "$2" || [ "$2" -lt 1 ]; then die "$1 must be a positive integer (got '$2')"; fi; }
pos ROUNDS "$ROUNDS"
pos STEPS "$STEPS"
pos SPAWNS "$SPAWNS"
pos LINES "$LINES"
pos PROBE_RATE "$PROBE_RATE"
pos PROBE_CONNS "$PROBE_CONNS"
pos PROBE_SECONDS "$PROBE_SECONDS"
pos TICK_RATE "$TICK_RATE"
pos TICK_SECONDS "$TICK_SECONDS"
[ "$STEPS" -ge 8 ] || die "STEPS must be at least 8 (got $STEPS)"
{ is_uint "$LINE_BYTES" && [ "$LINE_BYTES" -ge 12 ] && [ "$LINE_BYTES" -le 4000 ]; } ||
	die "LINE_BYTES must be 12..4000 (got '$LINE_BYTES')"
for f in $FIGURES; do case $f in 1 | 2 | 3) ;; *) die "FIGURES are 1, 2 and 3 (got '$FIGURES')" ;; esac; done
for m in $LOG_MODES; do case $m in exec | log | print) ;; *) die "LOG_MODES are exec, log and print (got '$LOG_MODES')" ;; esac; done
for n in $WATCHERS; do pos WATCHERS "$n"; done
want() { case " $FIGURES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# --- tools -----------------------------------------------------------------

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v "$CC" >/dev/null 2>&1 || missing+=("$CC (a C compiler)")
if [ "${#missing[@]}" -gt 0 ]; then
	say "missing tool(s): ${missing[*]}"
	say "install them with:  tools/deps.sh install build bench"
	exit 2
fi
# sqlite3 counts the stored lines of figure 2 in one query; without it they
# are paged out through GET /api/v1/runs/{id}/logs (slower, same answer).
have_sqlite3=0
command -v sqlite3 >/dev/null 2>&1 && have_sqlite3=1
[ -x "$OUTRIGGER" ] || die "no server binary at $OUTRIGGER: build it first with 'make' in $root"

# 5 000 watchers need that many descriptors in the server and in the client.
maxw=0
for n in $WATCHERS; do [ "$n" -gt "$maxw" ] && maxw=$n; done
need_fds=$((maxw + 1000))
if want 3 && [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
	ulimit -n "$need_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
		die "$maxw watchers need 'ulimit -n' >= $need_fds; this shell allows $(ulimit -Hn)"
	fi
fi

# --- state and cleanup -------------------------------------------------------

tmp=
cli_pid=
declare -A SRV_PID=() SRV_PORT=()
problems=()

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	local st
	[ -n "$1" ] && [ -r "/proc/$1/status" ] || return 1
	st=$(awk '/^State:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# shellcheck disable=SC2317 # stop_pid and cleanup run from the traps
# stop_pid PID NAME: SIGTERM, up to 5 s for a clean exit, then SIGKILL; reap.
# Only ever called with the PID of a child this script started.
stop_pid() {
	local pid=$1 name=$2 i st=0
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			say "$name (pid $pid) did not stop within 5 s of SIGTERM: sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || st=$?
	# 143 = ended by our SIGTERM, the normal way out of a server.
	if [ "$st" -ne 0 ] && [ "$st" -ne 143 ] && [ "$name" != client ]; then
		say "$name (pid $pid) exited with status $st"
	fi
}

# shellcheck disable=SC2317
cleanup() {
	local rc=$? label
	set +e
	trap - EXIT INT TERM HUP
	stop_pid "$cli_pid" client
	for label in "${!SRV_PID[@]}"; do
		stop_pid "${SRV_PID[$label]}" "outrigger ($label)"
		[ -s "$tmp/$label.log" ] && cp "$tmp/$label.log" "$OUT/raw/server-$label.log"
	done
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/outrigger-bench-engine.XXXXXX")
# plugins/blueprints: the built-in blueprint dir of --plugins, empty here.
mkdir -p "$tmp/bin" "$tmp/plugins/blueprints" "$tmp/blueprints"
rm -rf "$OUT"
mkdir -p "$OUT/raw"

# --- helpers: build ----------------------------------------------------------

# A copy of the binary: a rebuild during the run cannot swap it under the
# servers (each step runner is /proc/self/exe of its server).
cp "$OUTRIGGER" "$tmp/bin/outrigger"
BIN=$tmp/bin/outrigger
CLIENT=$tmp/bin/client
cflags=(-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror)
say "building bench/engine/client.c, noop.c, chatty.c with $CC"
"$CC" "${cflags[@]}" -o "$CLIENT" "$here/client.c" || die "cannot build bench/engine/client.c"
# The plugins build with nothing but the ABI header, as a third party's would.
for p in noop chatty; do
	"$CC" "${cflags[@]}" -shared -fPIC -I"$root/include" -o "$tmp/plugins/$p.so" "$here/$p.c" ||
		die "cannot build bench/engine/$p.c"
done
# An empty main() linked against the shared libraries outrigger names
# (readelf NEEDED), and the same without libcurl: what starting a process
# with those libraries costs before any of Outrigger's code runs.
printf 'int main(void) { return 0; }\n' >"$tmp/empty.c"
needed=$(readelf -d "$BIN" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -v '^libc\.so' | paste -sd ' ' - || true)
like_libs=()
nocurl_libs=()
jansson_libs=()
for l in $needed; do
	like_libs+=("-l:$l")
	case $l in libcurl*) ;; *) nocurl_libs+=("-l:$l") ;; esac
	case $l in libjansson*) jansson_libs+=("-l:$l") ;; esac
done
have_like=0
if [ -n "$needed" ] && [ "${#jansson_libs[@]}" -gt 0 ] &&
	"$CC" -O2 -o "$tmp/bin/empty-like" "$tmp/empty.c" -Wl,--no-as-needed "${like_libs[@]}" 2>"$tmp/empty.err" &&
	"$CC" -O2 -o "$tmp/bin/empty-nocurl" "$tmp/empty.c" -Wl,--no-as-needed "${nocurl_libs[@]}" 2>>"$tmp/empty.err" &&
	"$CC" -O2 -o "$tmp/bin/empty-jansson" "$tmp/empty.c" -Wl,--no-as-needed "${jansson_libs[@]}" 2>>"$tmp/empty.err"; then
	have_like=1
else
	say "could not link an empty main() like outrigger (readelf missing?); that comparison is left out"
fi

# --- helpers: blueprints -------------------------------------------------------

# graph: STEPS noop steps: s-root; a chain a-001.. after it; a fan-out f-001..
# all after s-root; s-join after every f; a chain b-001.. after s-join.
write_graph() {
	local na=$((STEPS / 4)) nf=$((STEPS / 2 - 1)) nb i sep deps=
	nb=$((STEPS - 2 - na - nf))
	{
		printf '{"name": "graph", "description": "%d no-op steps: chains and a fan-out (bench/engine).",\n' "$STEPS"
		printf ' "params": {}, "outputs": {},\n "steps": [\n'
		printf '  {"name": "s-root", "plugin": "noop"}'
		for i in $(seq 1 "$na"); do
			if [ "$i" = 1 ]; then sep=s-root; else sep=$(printf 'a-%03d' $((i - 1))); fi
			printf ',\n  {"name": "a-%03d", "plugin": "noop", "after": ["%s"]}' "$i" "$sep"
		done
		for i in $(seq 1 "$nf"); do
			printf ',\n  {"name": "f-%03d", "plugin": "noop", "after": ["s-root"]}' "$i"
			deps="$deps${deps:+, }\"$(printf 'f-%03d' "$i")\""
		done
		printf ',\n  {"name": "s-join", "plugin": "noop", "after": [%s]}' "$deps"
		for i in $(seq 1 "$nb"); do
			if [ "$i" = 1 ]; then sep=s-join; else sep=$(printf 'b-%03d' $((i - 1))); fi
			printf ',\n  {"name": "b-%03d", "plugin": "noop", "after": ["%s"]}' "$i" "$sep"
		done
		printf '\n ]\n}\n'
	} >"$tmp/blueprints/graph.json"
}

write_blueprints() {
	write_graph
	cat >"$tmp/blueprints/chatty-exec.json" <<EOF
{"name": "chatty-exec", "description": "One step printing $LINES lines through the exec plugin (bench/engine).",
 "params": {}, "outputs": {},
 "steps": [{"name": "chatty", "plugin": "exec",
            "with": {"command": ["$CLIENT", "lines", "$LINES", "$LINE_BYTES"]}}]}
EOF
	cat >"$tmp/blueprints/chatty-log.json" <<EOF
{"name": "chatty-log", "description": "One step logging $LINES lines through api->log (bench/engine).",
 "params": {}, "outputs": {},
 "steps": [{"name": "chatty", "plugin": "chatty",
            "with": {"mode": "log", "lines": $LINES, "bytes": $LINE_BYTES}}]}
EOF
	cat >"$tmp/blueprints/chatty-print.json" <<EOF
{"name": "chatty-print", "description": "One step printing $LINES lines on the runner's stdout (bench/engine).",
 "params": {}, "outputs": {},
 "steps": [{"name": "chatty", "plugin": "chatty",
            "with": {"mode": "print", "lines": $LINES, "bytes": $LINE_BYTES}}]}
EOF
	cat >"$tmp/blueprints/tick.json" <<EOF
{"name": "tick", "description": "One step logging $TICK_RATE timestamped lines a second for $TICK_SECONDS s once \${params.gate} exists (bench/engine).",
 "params": {"gate": {"type": "string", "required": true, "description": "file to wait for"}},
 "outputs": {},
 "steps": [{"name": "tick", "plugin": "chatty",
            "with": {"mode": "tick", "rate": $TICK_RATE, "seconds": $TICK_SECONDS,
                     "gate": "\${params.gate}", "gate_timeout": 300}}]}
EOF
	cp "$tmp/blueprints/"*.json "$OUT/raw/"
}
write_blueprints

# --- helpers: servers ------------------------------------------------------------

# free_port: a 127.0.0.1 port nothing listens on now, below the kernel's
# ephemeral range when there is room (the clients' own sockets, thousands of
# them here, take ports from that range and can collide with a listener).
eph_lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
	local p i span=40000
	[ "$eph_lo" -gt 21000 ] && span=$((eph_lo - 20000))
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % span))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }
mb() { awk -v k="$1" 'BEGIN { if (k == "" || k < 0) print "?"; else printf "%.1f", k / 1024 }'; }

# start_server LABEL FLAG...: a fresh database TMP/LABEL.db; stderr (no access
# log) to TMP/LABEL.log, copied to OUT/raw/ when the server stops.
start_server() {
	local label=$1 try port pid i
	shift
	rm -f "$tmp/$label.db" "$tmp/$label.db-wal" "$tmp/$label.db-shm"
	for try in 1 2 3; do
		port=$(free_port) || die "found no free port on 127.0.0.1"
		(cd "$root" && exec "$BIN" serve --listen "127.0.0.1:$port" --db "$tmp/$label.db" \
			--plugins "$tmp/plugins" --blueprints "$tmp/blueprints" --no-access-log "$@") \
			>"$tmp/$label.stdout" 2>"$tmp/$label.log" &
		pid=$!
		SRV_PID[$label]=$pid
		SRV_PORT[$label]=$port
		for i in $(seq 1 100); do
			alive "$pid" || break
			[ "$(http_code "http://127.0.0.1:$port/api/v1/health")" = 200 ] && return 0
			sleep 0.1
		done
		stop_pid "$pid" "outrigger ($label)"
		unset "SRV_PID[$label]"
		say "outrigger ($label) did not answer on port $port (try $try); its log:"
		tail -n 5 "$tmp/$label.log" >&2
	done
	die "outrigger would not start: cd $root && $BIN serve --listen 127.0.0.1:$port --db /tmp/x.db --plugins $tmp/plugins --blueprints $tmp/blueprints"
}

stop_server() {
	local label=$1
	[ -n "${SRV_PID[$label]:-}" ] || return 0
	stop_pid "${SRV_PID[$label]}" "outrigger ($label)"
	unset "SRV_PID[$label]"
	cp "$tmp/$label.log" "$OUT/raw/server-$label.log"
	rm -f "$tmp/$label.db" "$tmp/$label.db-wal" "$tmp/$label.db-shm"
}

url() { echo "http://127.0.0.1:${SRV_PORT[$1]}$2"; }

# server_ok LABEL WHAT: record a problem (and stop) when the server died.
server_ok() {
	if ! alive "${SRV_PID[$1]}"; then
		problems+=("$2: outrigger ($1) is no longer running; see raw/server-$1.log")
		say "${problems[-1]}"
		exit 1
	fi
}

# post LABEL PATH BODY: POST JSON, print the body; dies on a non-2xx answer.
post() {
	local code
	code=$(curl -s -o "$tmp/post.out" -w '%{http_code}' --max-time 10 -X POST \
		-H 'Content-Type: application/json' -d "$3" "$(url "$1" "$2")" || true)
	case $code in
	2??) cat "$tmp/post.out" ;;
	*)
		say "POST $2 answered HTTP $code:"
		head -c 2000 "$tmp/post.out" >&2
		echo >&2
		exit 2
		;;
	esac
}

create_env() { # LABEL NAME BLUEPRINT [PARAMS]
	local params=${4:-'{}'}
	post "$1" /api/v1/environments \
		"{\"name\":\"$2\",\"provider\":\"sandbox\",\"blueprint\":\"$3\",\"params\":$params}" >/dev/null
}

# start_run LABEL ENV: POST an apply; print the run id.
start_run() {
	post "$1" "/api/v1/environments/$2/runs" '{"action":"apply"}' |
		sed -n 's/^{"id":\([0-9][0-9]*\),.*/\1/p'
}

# wait_run LABEL ID SECONDS FILE: poll until the run has finished; its JSON
# goes to FILE.  Returns 1 on a timeout.
wait_run() {
	local i n=$(($3 * 10))
	for i in $(seq 1 "$n"); do
		curl -sf --max-time 5 -o "$4" "$(url "$1" "/api/v1/runs/$2")" || true
		if grep -q '^{"id":[0-9]*,"environment":"[^"]*","action":"[^"]*","status":"\(succeeded\|failed\|cancelled\)"' "$4" 2>/dev/null; then
			return 0
		fi
		server_ok "$1" "run $2"
		sleep 0.1
	done
	return 1
}

# wait_step_running LABEL ID: until the run's first step is running (or done).
wait_step_running() {
	local i
	for i in $(seq 1 500); do
		curl -sf --max-time 5 -o "$tmp/run.json" "$(url "$1" "/api/v1/runs/$2")" || true
		grep -q '"steps":\[{"name":"[^"]*","plugin":"[^"]*","status":"\(running\|succeeded\|failed\)"' \
			"$tmp/run.json" 2>/dev/null && return 0
		server_ok "$1" "run $2"
		sleep 0.02
	done
	return 1
}

# run_times FILE: the run's timing from its JSON (ISO times, ms):
# "status wall_ms steps ok in_sum_ms in_median_ms gap_sum_ms gap_median_ms
#  queue_ms step_start_ms step_end_ms" (step_*: epoch ms of the first step).
run_times() {
	awk '
	function dfc(y, m, d,   era, yoe, doy) {
		y -= (m <= 2)
		era = int((y >= 0 ? y : y - 399) / 400)
		yoe = y - era * 400
		doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
		return era * 146097 + yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy - 719468
	}
	function ms(t) {
		if (t == "") return -1
		day = dfc(substr(t, 1, 4) + 0, substr(t, 6, 2) + 0, substr(t, 9, 2) + 0)
		sec = substr(t, 12, 2) * 3600 + substr(t, 15, 2) * 60 + substr(t, 18, 2)
		return (day * 86400 + sec) * 1000 + substr(t, 21, 3)
	}
	function field(s, k) {
		if (match(s, "\"" k "\":\"[^\"]*\""))
			return substr(s, RSTART + length(k) + 4, RLENGTH - length(k) - 5)
		return ""
	}
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		if (n == 0) return "nan"
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{
		i = index($0, "\"steps\":[")
		head = substr($0, 1, i - 1)
		n = split(substr($0, i + 9), part, /\},\{"name":/)
		status = field(head, "status")
		wall = ms(field(head, "finished_at")) - ms(field(head, "started_at"))
		queue = ms(field(head, "started_at")) - ms(field(head, "created_at"))
		ok = 0; m = 0; insum = 0
		for (k = 1; k <= n; k++) {
			if (field(part[k], "status") == "succeeded") ok++
			s = ms(field(part[k], "started_at")); f = ms(field(part[k], "finished_at"))
			if (s < 0 || f < 0) continue
			m++; st[m] = s; fi[m] = f; d[m] = f - s; insum += f - s
			if (m == 1) { s1 = s; f1 = f }
		}
		# Steps in the order they started, gaps between one end and the next start.
		for (a = 2; a <= m; a++) {
			ts = st[a]; tf = fi[a]
			for (b = a - 1; b >= 1 && (st[b] > ts || (st[b] == ts && fi[b] > tf)); b--) { st[b + 1] = st[b]; fi[b + 1] = fi[b] }
			st[b + 1] = ts; fi[b + 1] = tf
		}
		g = 0; gsum = 0
		for (a = 2; a <= m; a++) { g++; gap[g] = st[a] - fi[a - 1]; gsum += gap[g] }
		printf "%s %.0f %d %d %.0f %s %.0f %s %.0f %.0f %.0f\n", status, wall, n, ok, insum,
			median(d, m), gsum, median(gap, g), queue, s1, f1
	}' "$1"
}

median() {
	sort -g | awk '{ a[NR] = $1 }
	END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2
	}'
}
# col FILE COLUMN [KEY_COL KEY_VALUE]...: the median of a TSV column over the
# rows whose key columns match ("nan" and "-" are skipped).
col() {
	local f=$1 k=$2
	shift 2
	awk -F'\t' -v k="$k" -v keys="$*" '
	BEGIN { n = split(keys, kv, " ") }
	NR > 1 {
		for (i = 1; i < n; i += 2) if ($(kv[i]) != kv[i + 1]) next
		if ($k != "nan" && $k != "-" && $k != "") print $k
	}' "$f" | median
}
kv() { # KEY LINE: the value of KEY=... in a client summary line
	printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan" || v == "") print "nan"; else printf f, v }'; }
pass() { # VALUE OP TARGET: PASS or MISS
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "nan" || v == "") { print "MISS"; exit }
		ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 >= t + 0)
		print ok ? "PASS" : "MISS" }'
}
now_ms() { date +%s%3N; }
# cpu_ms PID: "self children" CPU time (user + system) in ms from
# /proc/PID/stat; children counts the step runners the server has reaped
# (and what they reaped: exec's commands).
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{
		sub(/^.*\) /, "")
		printf "%.0f %.0f\n", ($12 + $13) * 1000 / hz, ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

say "$("$BIN" version 2>&1 | head -n 1); $(nproc) cores; ROUNDS=$ROUNDS FIGURES=\"$FIGURES\""

# --- 1. engine overhead per step ------------------------------------------------

f1=$OUT/engine.tsv
f1s=$OUT/spawn.tsv
printf 'round\tparallel\trun\tstatus\tsteps\tok\twall_ms\tper_step_ms\tin_step_sum_ms\tin_step_median_ms\tgap_sum_ms\tgap_median_ms\tqueue_ms\tsteps_per_s\tserver_cpu_ms_per_step\trunner_cpu_ms_per_step\tin_step_ms_per_step\tbetween_ms_per_step\n' >"$f1"
printf 'round\twhat\tmedian_ms\tp10_ms\tp90_ms\tfailures\n' >"$f1s"

figure1() {
	local r order p label id line what c0 c1 k0 k1
	say "figure 1: $STEPS no-op steps, --parallel 1 and 8 side by side, $ROUNDS round(s)"
	start_server p1 --parallel 1
	start_server p8 --parallel 8
	for p in 1 8; do
		for r in $(seq 1 "$ROUNDS"); do create_env "p$p" "graph-$r" graph; done
		create_env "p$p" warm graph
		# One unmeasured run per server: first-use costs (page cache, the
		# plugin's first dlopen, SQLite's first pages) stay out of round 1.
		id=$(start_run "p$p" warm)
		wait_run "p$p" "$id" 120 "$OUT/raw/engine-warmup-p$p.json" || die "warm-up run on p$p did not finish"
	done
	# The job a server would send for one noop step, for the standalone runs.
	printf '{"action":"apply","plugin":"noop","plugins_dir":"%s","inputs":{},"info":{"environment":"bench","provider":"sandbox","step":"s","run":"1","attempt":"1","plugin":"noop"},"state":{},"secrets":{}}\n' \
		"$tmp/plugins" >"$tmp/job.json"
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then order="1 8"; else order="8 1"; fi
		for p in $order; do
			label=p$p
			read -r c0 k0 <<<"$(cpu_ms "${SRV_PID[$label]}")"
			id=$(start_run "$label" "graph-$r")
			[ -n "$id" ] || die "POST of a run on $label gave no id"
			if ! wait_run "$label" "$id" 600 "$OUT/raw/engine-r$r-p$p.json"; then
				problems+=("figure 1 round $r --parallel $p: run $id did not finish within 600 s")
				say "${problems[-1]}"
				exit 1
			fi
			read -r c1 k1 <<<"$(cpu_ms "${SRV_PID[$label]}")"
			read -r st wall n ok insum inmed gsum gmed queue _ _ <<<"$(run_times "$OUT/raw/engine-r$r-p$p.json")"
			if [ "$st" != succeeded ] || [ "$ok" != "$n" ]; then
				problems+=("figure 1 round $r --parallel $p: run $id $st with $ok of $n steps succeeded (raw/engine-r$r-p$p.json)")
				say "${problems[-1]}"
			fi
			awk -v r="$r" -v p="$p" -v id="$id" -v st="$st" -v n="$n" -v ok="$ok" -v w="$wall" \
				-v is="$insum" -v im="$inmed" -v gs="$gsum" -v gm="$gmed" -v q="$queue" \
				-v sc=$((c1 - c0)) -v kc=$((k1 - k0)) 'BEGIN {
				printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.2f\t%.2f\t%.3f\t%.3f\n",
					r, p, id, st, n, ok, w, (ok > 0 ? w / ok : 0), is, im, gs, gm, q,
					(w > 0 ? ok * 1000 / w : 0), (ok > 0 ? sc / ok : 0), (ok > 0 ? kc / ok : 0),
					(ok > 0 ? is / ok : 0), (ok > 0 ? (w - is) / ok : 0) }' >>"$f1"
			say "[1] round $r --parallel $p: $ok steps in $wall ms = $(awk -v w="$wall" -v n="$ok" 'BEGIN { printf "%.2f", (n > 0 ? w / n : 0) }') ms/step (in step: $(awk -v s="$insum" -v n="$ok" 'BEGIN { printf "%.2f", (n > 0 ? s / n : 0) }') ms/step, median $inmed ms)"
		done
		# The raw cost of starting the same binary, measured in the same round.
		for what in version step true like nocurl jansson; do
			case $what in
			version) line=$("$CLIENT" spawn "$SPAWNS" "$BIN" version) || true ;;
			step) line=$("$CLIENT" step "$SPAWNS" "$BIN" "$tmp/job.json") || true ;;
			true) line=$("$CLIENT" spawn "$SPAWNS" /bin/true) || true ;;
			like | nocurl | jansson)
				[ "$have_like" = 1 ] || continue
				line=$("$CLIENT" spawn "$SPAWNS" "$tmp/bin/empty-$what") || true
				;;
			esac
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$what" "$(kv median_ms "$line")" \
				"$(kv p10_ms "$line")" "$(kv p90_ms "$line")" "$(kv failures "$line")" >>"$f1s"
			if [ "$(kv failures "$line")" != 0 ]; then
				problems+=("figure 1 round $r: spawning '$what' failed: $line")
				say "${problems[-1]}"
			fi
		done
		say "[1] round $r spawn+wait: standalone noop step $(col "$f1s" 3 1 "$r" 2 step) ms, outrigger version $(col "$f1s" 3 1 "$r" 2 version) ms, empty main() with its libraries $(col "$f1s" 3 1 "$r" 2 like) ms, without libcurl $(col "$f1s" 3 1 "$r" 2 nocurl) ms, /bin/true $(col "$f1s" 3 1 "$r" 2 true) ms"
		server_ok p1 "figure 1"
		server_ok p8 "figure 1"
	done
	stop_server p1
	stop_server p8
}

# --- 2. log ingestion -------------------------------------------------------------

f2=$OUT/logs.tsv
printf 'round\tmode\trun\tstatus\tlines\tstored\tdistinct\tstep_ms\tlines_per_s\tprobe_done\tprobe_errors\tp50_ms\tp99_ms\tmax_ms\tp99_ratio\toverlap_pct\trss_max_kb\tserver_cpu_ms\trunner_cpu_ms\n' >"$f2"

# count_lines LABEL RUN: "stored distinct" log lines of the run that are ours
# ("L" and 9 digits).
count_lines() {
	local after=0 page n total=0 next
	if [ "$have_sqlite3" = 1 ]; then
		sqlite3 -readonly -separator ' ' "$tmp/$1.db" \
			"SELECT count(*), count(DISTINCT substr(data, 1, 10)) FROM events WHERE run_id = $2 AND kind = 'log' AND data GLOB 'L[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9] *'"
		return
	fi
	# Without sqlite3: page through the API (distinct = stored: seq is unique).
	while :; do
		page=$(curl -sf --max-time 60 "$(url "$1" "/api/v1/runs/$2/logs?limit=5000&after=$after")") || break
		n=$(printf '%s' "$page" | grep -o '"text":"L[0-9]\{9\} ' | wc -l)
		total=$((total + n))
		next=$(printf '%s' "$page" | sed -n 's/.*"next_after":"\([0-9]*\)".*/\1/p')
		[ -n "$next" ] || break
		after=$next
	done
	echo "$total $total"
}

# run_probe LABEL RAW: the paced GET client for PROBE_SECONDS; its summary
# line goes to TMP/probe.out.  In the background, so that a signal reaches
# the trap at once (which then stops the client too).
run_probe() {
	"$CLIENT" probe 127.0.0.1 "${SRV_PORT[$1]}" /api/v1/environments/api-target \
		"$PROBE_RATE" "$PROBE_CONNS" "$PROBE_SECONDS" --pid "${SRV_PID[$1]}" \
		--raw "$2" >"$tmp/probe.out" &
	cli_pid=$!
	wait "$cli_pid" || true
	cli_pid=
}

figure2() {
	local r order m label id line st wall n ok s0 s1 t0 t1 stored distinct dur c0 c1 k0 k1
	local modes rev=()
	read -r -a modes <<<"$LOG_MODES"
	for ((i = ${#modes[@]} - 1; i >= 0; i--)); do rev+=("${modes[$i]}"); done
	say "figure 2: $LINES lines of $LINE_BYTES bytes per step (${modes[*]}), API probe $PROBE_RATE GET/s on $PROBE_CONNS connections for ${PROBE_SECONDS}s, $ROUNDS round(s)"
	for r in $(seq 1 "$ROUNDS"); do
		label=logs-r$r
		# A fresh server and database per round: every round ingests into
		# an empty store, and the gigabytes go away after it.
		start_server "$label" --parallel 8
		create_env "$label" api-target chatty-log
		for m in "${modes[@]}"; do create_env "$label" "logs-$m" "chatty-$m"; done
		# Warm the connections' statement caches and the response cache.
		"$CLIENT" probe 127.0.0.1 "${SRV_PORT[$label]}" /api/v1/environments/api-target \
			"$PROBE_RATE" "$PROBE_CONNS" 1 >/dev/null || true
		if [ $((r % 2)) = 1 ]; then order="base ${modes[*]}"; else order="${rev[*]} base"; fi
		for m in $order; do
			if [ "$m" = base ]; then
				read -r c0 k0 <<<"$(cpu_ms "${SRV_PID[$label]}")"
				run_probe "$label" "$OUT/raw/probe-r$r-base.txt"
				line=$(cat "$tmp/probe.out")
				printf '%s\n' "$line" >"$OUT/raw/probe-r$r-base.summary"
				printf '%s\tbase\t-\t-\t-\t-\t-\t-\t-\t%s\t%s\t%s\t%s\t%s\t1\t-\t%s\t%s\t%s\n' "$r" \
					"$(kv "done" "$line")" "$(kv errors "$line")" "$(kv p50_ms "$line")" \
					"$(kv p99_ms "$line")" "$(kv max_ms "$line")" "$(kv rss_max_kb "$line")" \
					$(($(cpu_ms "${SRV_PID[$label]}" | cut -d' ' -f1) - c0)) - >>"$f2"
				say "[2] round $r no run: API p50 $(kv p50_ms "$line") ms, p99 $(kv p99_ms "$line") ms"
				continue
			fi
			read -r c0 k0 <<<"$(cpu_ms "${SRV_PID[$label]}")"
			id=$(start_run "$label" "logs-$m")
			[ -n "$id" ] || die "POST of a run on logs-$m gave no id"
			wait_step_running "$label" "$id" || die "the chatty step of run $id never started"
			t0=$(now_ms)
			run_probe "$label" "$OUT/raw/probe-r$r-$m.txt"
			t1=$(now_ms)
			line=$(cat "$tmp/probe.out")
			printf '%s\n' "$line" >"$OUT/raw/probe-r$r-$m.summary"
			if ! wait_run "$label" "$id" $((LINES / 2000 + 120)) "$OUT/raw/logs-r$r-$m.json"; then
				problems+=("figure 2 round $r $m: run $id did not finish")
				say "${problems[-1]}"
				exit 1
			fi
			read -r c1 k1 <<<"$(cpu_ms "${SRV_PID[$label]}")"
			read -r st wall n ok _ _ _ _ _ s0 s1 <<<"$(run_times "$OUT/raw/logs-r$r-$m.json")"
			dur=$((s1 - s0))
			read -r stored distinct <<<"$(count_lines "$label" "$id")"
			if [ "$st" != succeeded ]; then
				problems+=("figure 2 round $r $m: run $id $st (raw/logs-r$r-$m.json)")
				say "${problems[-1]}"
			fi
			if [ "$stored" != "$LINES" ] || [ "$distinct" != "$LINES" ]; then
				problems+=("figure 2 round $r $m: $LINES lines written, $stored stored ($distinct distinct) in run $id")
				say "${problems[-1]}"
			fi
			if [ "$(kv errors "$line")" != 0 ] || [ "$(kv non200 "$line")" != 0 ]; then
				problems+=("figure 2 round $r $m: the API probe saw errors: $line")
				say "${problems[-1]}"
			fi
			awk -v r="$r" -v m="$m" -v id="$id" -v st="$st" -v L="$LINES" -v sd="$stored" \
				-v di="$distinct" -v d="$dur" -v pd="$(kv "done" "$line")" -v pe="$(kv errors "$line")" \
				-v p50="$(kv p50_ms "$line")" -v p99="$(kv p99_ms "$line")" -v mx="$(kv max_ms "$line")" \
				-v t0="$t0" -v t1="$t1" -v s1="$s1" -v rss="$(kv rss_max_kb "$line")" \
				-v sc=$((c1 - c0)) -v kc=$((k1 - k0)) 'BEGIN {
				# How much of the probe ran while the step did.
				ov = (t1 > t0) ? ((s1 < t1 ? s1 : t1) - t0) / (t1 - t0) * 100 : 0
				if (ov < 0) ov = 0
				printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\tnan\t%.0f\t%s\t%s\t%s\n",
					r, m, id, st, L, sd, di, d, (d > 0 ? sd * 1000 / d : 0), pd, pe, p50, p99, mx, ov, rss, sc, kc }' >>"$f2"
			say "[2] round $r $m: $stored of $LINES lines stored in $dur ms = $(awk -v s="$stored" -v d="$dur" 'BEGIN { printf "%.0f", (d > 0 ? s * 1000 / d : 0) }') lines/s; API p50 $(kv p50_ms "$line") ms, p99 $(kv p99_ms "$line") ms; server VmRSS max $(mb "$(kv rss_max_kb "$line")") MB"
			server_ok "$label" "figure 2 round $r $m"
		done
		stop_server "$label"
	done
	# p99 ratio of each run to its round's no-run p99.
	awk -F'\t' 'BEGIN { OFS = "\t" }
	NR == FNR { if (FNR > 1 && $2 == "base") b[$1] = $13; next }
	FNR == 1 { print; next }
	{ if ($2 != "base" && b[$1] > 0 && $13 != "" && $13 != "-") $15 = sprintf("%.2f", $13 / b[$1]); print }' \
		"$f2" "$f2" >"$f2.new" && mv "$f2.new" "$f2"
}

# --- 3. SSE delivery ------------------------------------------------------------------

f3=$OUT/sse.tsv
printf 'round\twatchers\trun\tstatus\texpected\tdelivered\tmissing\tdups\tfailed\tp50_ms\tp90_ms\tp99_ms\tp999_ms\tmax_ms\trss_ready_kb\trss_max_kb\tready_after_ms\n' >"$f3"

figure3() {
	local r w label id line gate ready i st ticks=$((TICK_RATE * TICK_SECONDS)) maxc
	say "figure 3: watchers ($WATCHERS) of one run, $TICK_RATE events/s for ${TICK_SECONDS}s, $ROUNDS round(s)"
	for w in $WATCHERS; do
		for r in $(seq 1 "$ROUNDS"); do
			label=sse-$w-r$r
			maxc=$((w + 1000))
			[ "$maxc" -lt 4096 ] && maxc=4096
			# A fresh server each time: RSS after 5 000 watchers says
			# nothing about 1 000 (glibc keeps freed memory).
			start_server "$label" --max-connections "$maxc" --max-connections-per-ip "$maxc"
			gate=$tmp/gate-$label
			ready=$tmp/ready-$label
			create_env "$label" tick tick "{\"gate\":\"$gate\"}"
			id=$(start_run "$label" tick)
			[ -n "$id" ] || die "POST of a run on $label gave no id"
			"$CLIENT" watch 127.0.0.1 "${SRV_PORT[$label]}" "/api/v1/runs/$id/events" "$w" \
				--expect "$ticks" --ready "$ready" --timeout $((TICK_SECONDS + 120)) \
				--pid "${SRV_PID[$label]}" --raw "$OUT/raw/sse-$w-r$r.tsv" >"$tmp/watch.out" &
			cli_pid=$!
			for i in $(seq 1 600); do
				[ -s "$ready" ] && break
				alive "$cli_pid" || break
				sleep 0.1
			done
			[ -s "$ready" ] || say "[3] $w watchers: not all streams open after 60 s; ticking anyway"
			touch "$gate"
			st=0
			wait "$cli_pid" || st=$?
			cli_pid=
			line=$(cat "$tmp/watch.out")
			printf '%s\n' "$line" >"$OUT/raw/sse-$w-r$r.summary"
			wait_run "$label" "$id" 60 "$OUT/raw/sse-$w-r$r.json" || true
			read -r rst _ <<<"$(run_times "$OUT/raw/sse-$w-r$r.json")"
			if [ "$st" != 0 ] || [ "$(kv missing "$line")" != 0 ] || [ "$rst" != succeeded ]; then
				problems+=("figure 3 round $r, $w watchers: run $id $rst; client exit $st: ${line:-no summary}")
				say "${problems[-1]}"
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$id" "$rst" \
				"$(kv expected "$line")" "$(kv delivered "$line")" "$(kv missing "$line")" \
				"$(kv dups "$line")" "$(kv failed "$line")" "$(kv p50_ms "$line")" "$(kv p90_ms "$line")" \
				"$(kv p99_ms "$line")" "$(kv p999_ms "$line")" "$(kv max_ms "$line")" \
				"$(kv rss_ready_kb "$line")" "$(kv rss_max_kb "$line")" "$(kv ready_after_ms "$line")" >>"$f3"
			say "[3] round $r, $w watchers: $(kv delivered "$line")/$(kv expected "$line") delivered, p50 $(kv p50_ms "$line") ms, p99 $(kv p99_ms "$line") ms, max $(kv max_ms "$line") ms; VmRSS max $(mb "$(kv rss_max_kb "$line")") MB"
			server_ok "$label" "figure 3 round $r"
			stop_server "$label"
		done
	done
}

started=$(date +%s)
want 1 && figure1
want 2 && figure2
want 3 && figure3

# --- table ----------------------------------------------------------------------------

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=
if [ -n "$(git -C "$root" status --porcelain -- server plugins include db 2>/dev/null || true)" ]; then
	dirty=" +uncommitted changes"
fi
table=$OUT/table.md
{
	echo "# bench/engine — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "ROUNDS=$ROUNDS FIGURES=\"$FIGURES\"; $(nproc) cores; the binary says \`$("$BIN" version 2>&1 | head -n 1)\`" \
		"(the tree: commit $commit$dirty); $(($(date +%s) - started)) s in all"
	echo
	echo "| figure | median | target | result | notes |"
	echo "| --- | ---: | ---: | --- | --- |"
	if want 1; then
		ps1=$(col "$f1" 8 2 1)
		echo "| engine overhead per step, --parallel 1 ($STEPS no-op steps) | $(fmt "$ps1" '%.2f ms') | ≤ $T_STEP_MS ms | $(pass "$ps1" "<=" "$T_STEP_MS") |" \
			"of which in steps (started_at→finished_at) $(fmt "$(col "$f1" 17 2 1)" '%.2f') ms, between steps $(fmt "$(col "$f1" 18 2 1)" '%.2f') ms; a standalone \`outrigger step\` costs $(fmt "$(col "$f1s" 3 2 step)" '%.2f') ms |"
	fi
	if want 2; then
		for m in $LOG_MODES; do
			ls_=$(col "$f2" 9 2 "$m")
			q=$(col "$f2" 15 2 "$m")
			echo "| log lines ingested, $m | $(fmt "$ls_" '%.0f lines/s') | ≥ $T_LINES_S | $(pass "$ls_" ">=" "$T_LINES_S") |" \
				"$LINES lines of $LINE_BYTES B; server VmRSS max $(mb "$(col "$f2" 17 2 "$m")") MB |"
			echo "| API p99 during $m / without | $(fmt "$q" '%.2f×') | ≤ $T_API_P99× | $(pass "$q" "<=" "$T_API_P99") |" \
				"p99 $(fmt "$(col "$f2" 13 2 "$m")" '%.2f') ms against $(fmt "$(col "$f2" 13 2 base)" '%.2f') ms; $PROBE_RATE GET/s on $PROBE_CONNS conns |"
		done
	fi
	if want 3; then
		for w in $WATCHERS; do
			p99=$(col "$f3" 12 2 "$w")
			rss=$(col "$f3" 16 2 "$w")
			miss=$(awk -F'\t' -v w="$w" 'NR > 1 && $2 == w { s += $7 } END { print s + 0 }' "$f3")
			exp=$(awk -F'\t' -v w="$w" 'NR > 1 && $2 == w { s += $5 } END { print s + 0 }' "$f3")
			all=$([ "$miss" = 0 ] && [ "$exp" -gt 0 ] && echo PASS || echo MISS)
			echo "| SSE $w watchers: delivered | $((exp - miss)) / $exp | all | $all | over $ROUNDS round(s) |"
			if [ "$w" -le 1000 ]; then tp=$T_SSE_1K_P99; else tp=$T_SSE_5K_P99; fi
			echo "| SSE $w watchers: p99 latency | $(fmt "$p99" '%.1f ms') | ≤ $tp ms | $(pass "$p99" "<=" "$tp") |" \
				"p50 $(fmt "$(col "$f3" 10 2 "$w")" '%.1f') ms, max $(fmt "$(col "$f3" 14 2 "$w")" '%.1f') ms |"
			if [ "$w" -le 1000 ]; then
				echo "| SSE $w watchers: server VmRSS | $(mb "$rss") MB | ≤ $T_SSE_1K_RSS MB | $(pass "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "<=" "$T_SSE_1K_RSS") | max sampled every 100 ms; $(mb "$(col "$f3" 15 2 "$w")") MB with all streams open, before the first event |"
			else
				echo "| SSE $w watchers: server VmRSS | $(mb "$rss") MB | — | — | max sampled every 100 ms |"
			fi
		done
	fi
	echo
	echo "Medians over $ROUNDS round(s); PASS/MISS against ../shared/notes/perf-baselines.md. Details:"
	if want 1; then
		echo
		echo "**1. Engine overhead per step.** per step = run wall time (started_at→finished_at) / steps executed."
		echo
		echo "| --parallel | wall ms | per step ms | steps/s | in step ms/step | between steps ms/step | in step, median ms | run queued→started ms | server CPU ms/step | runner CPU ms/step |"
		echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		for p in 1 8; do
			if [ "$p" = 1 ]; then
				ins=$(fmt "$(col "$f1" 17 2 "$p")" '%.2f')
				gap=$(fmt "$(col "$f1" 18 2 "$p")" '%.2f')
			else
				ins="— (overlap)"
				gap="—"
			fi
			echo "| $p | $(col "$f1" 7 2 "$p") | $(fmt "$(col "$f1" 8 2 "$p")" '%.2f') | $(fmt "$(col "$f1" 14 2 "$p")" '%.0f') |" \
				"$ins | $gap | $(col "$f1" 10 2 "$p") | $(col "$f1" 13 2 "$p") |" \
				"$(fmt "$(col "$f1" 15 2 "$p")" '%.2f') | $(fmt "$(col "$f1" 16 2 "$p")" '%.2f') |"
		done
		echo
		echo "Times are the server's own (ms resolution). in step = the steps' started_at→finished_at summed and divided by the steps (the commit of the running state, the spawn, the runner, the reap);" \
			"between steps = the rest of the wall time per step (the commit of the result, the next start). With --parallel 1 the two add up to per step." \
			"CPU: the server's utime+stime and its reaped children's (the step runners), from /proc, 10 ms ticks."
		thr=$(awk -F'\t' 'NR > 1 { t[$1, $2] = $14; r[$1] = 1 } END { for (i in r) if (t[i, 1] > 0) print t[i, 8] / t[i, 1] }' "$f1" | median)
		echo
		echo "--parallel 8 runs the $STEPS steps $(fmt "$thr" '%.2f')× as fast as --parallel 1 (median of per-round ratios; 2 cores)."
		echo
		echo "Starting processes from this script's helper, posix_spawn + waitpid, $SPAWNS times per round (median of the rounds' medians):"
		echo
		echo "| process | spawn + wait, ms |"
		echo "| --- | ---: |"
		echo "| a standalone \`outrigger step\` of the noop plugin (job on stdin, protocol on fd 3, as the server runs it) | $(fmt "$(col "$f1s" 3 2 step)" '%.2f') |"
		echo "| \`outrigger version\` | $(fmt "$(col "$f1s" 3 2 version)" '%.2f') |"
		if [ "$have_like" = 1 ]; then
			echo "| an empty main() linked against the libraries outrigger names ($needed) | $(fmt "$(col "$f1s" 3 2 like)" '%.2f') |"
			echo "| the same without libcurl | $(fmt "$(col "$f1s" 3 2 nocurl)" '%.2f') |"
			echo "| an empty main() linked against libjansson only | $(fmt "$(col "$f1s" 3 2 jansson)" '%.2f') |"
		fi
		echo "| \`/bin/true\` | $(fmt "$(col "$f1s" 3 2 true)" '%.2f') |"
	fi
	if want 2; then
		echo
		echo "**2. Log ingestion.** lines/s = lines stored / (step finished_at − started_at); stored = rows of the run's log whose text is one of ours (counted $([ "$have_sqlite3" = 1 ] && echo "with sqlite3 in the database" || echo "through GET /api/v1/runs/{id}/logs"))." \
			"API: GET /api/v1/environments/api-target (an idle environment) at $PROBE_RATE req/s on $PROBE_CONNS keep-alive connections for ${PROBE_SECONDS}s, latency from each request's due time."
		echo
		echo "| step | lines/s | step s | stored / written | API p50 ms | API p99 ms | p99 ratio | probe overlap | server VmRSS max | server CPU µs/line | runner CPU µs/line |"
		echo "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		echo "| (no run) | | | | $(col "$f2" 12 2 base) | $(col "$f2" 13 2 base) | 1 | | $(mb "$(col "$f2" 17 2 base)") MB |" \
			"$(fmt "$(col "$f2" 18 2 base)" '%.0f') ms for the probe alone | |"
		for m in $LOG_MODES; do
			echo "| $m | $(fmt "$(col "$f2" 9 2 "$m")" '%.0f') | $(awk -v v="$(col "$f2" 8 2 "$m")" 'BEGIN { printf "%.1f", v / 1000 }') |" \
				"$(awk -F'\t' -v m="$m" 'NR > 1 && $2 == m { s += $6; w += $5 } END { print s + 0 " / " w + 0 }' "$f2") |" \
				"$(col "$f2" 12 2 "$m") | $(col "$f2" 13 2 "$m") | $(col "$f2" 15 2 "$m") | $(col "$f2" 16 2 "$m") % | $(mb "$(col "$f2" 17 2 "$m")") MB |" \
				"$(awk -v c="$(col "$f2" 18 2 "$m")" -v n="$LINES" 'BEGIN { printf "%.2f", c * 1000 / n }') |" \
				"$(awk -v c="$(col "$f2" 19 2 "$m")" -v n="$LINES" 'BEGIN { printf "%.2f", c * 1000 / n }') |"
		done
		echo
		echo "probe overlap: the share of the probe's time during which the step was still running." \
			"CPU: from /proc over the whole run (POST to finished), so the server's includes serving the probe (the no-run row shows how much that is);" \
			"the runner's includes what it waited for (exec's command)."
	fi
	if want 3; then
		echo
		echo "**3. SSE delivery.** latency = receive time − the CLOCK_REALTIME the step put in the line just before api->log; $TICK_RATE lines/s for ${TICK_SECONDS}s."
		echo
		echo "| watchers | delivered / expected | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | VmRSS open, idle | VmRSS max | all open after |"
		echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		for w in $WATCHERS; do
			echo "| $w | $(awk -F'\t' -v w="$w" 'NR > 1 && $2 == w { d += $6; e += $5 } END { print d + 0 " / " e + 0 }' "$f3") |" \
				"$(fmt "$(col "$f3" 10 2 "$w")" '%.1f') | $(fmt "$(col "$f3" 11 2 "$w")" '%.1f') | $(fmt "$(col "$f3" 12 2 "$w")" '%.1f') |" \
				"$(fmt "$(col "$f3" 13 2 "$w")" '%.1f') | $(fmt "$(col "$f3" 14 2 "$w")" '%.1f') |" \
				"$(mb "$(col "$f3" 15 2 "$w")") MB | $(mb "$(col "$f3" 16 2 "$w")") MB | $(col "$f3" 17 2 "$w") ms |"
		done
	fi
	if [ "${#problems[@]}" -gt 0 ]; then
		echo
		echo "RUN FAILED — ${#problems[@]} problem(s):"
		for p in "${problems[@]}"; do echo "- $p"; done
	else
		echo
		echo "Every run succeeded; no line or event lost; no API error."
	fi
} >"$table"
echo
cat "$table"
echo
say "table in ${OUT#"$root"/}/table.md; per-round figures in ${OUT#"$root"/}/*.tsv; raw outputs in ${OUT#"$root"/}/raw/"
[ "${#problems[@]}" -eq 0 ] || exit 1
exit 0
