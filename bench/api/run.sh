#!/usr/bin/env bash
# bench/api/run.sh - REST throughput of `outrigger serve` against nginx serving
# the identical bytes as static files, in one run, rounds interleaved.
#
# What it does (bench/README.md explains how to read the result):
#   1. starts build/outrigger on a free 127.0.0.1 port with a fresh database,
#      reads its idle RSS 1 s after start, creates env-001..env-100;
#   2. fetches the exact bodies of the three benchmarked URLs from the server
#      and writes them into an nginx root; starts nginx (own config, own PID,
#      non-daemon) on another free 127.0.0.1 port; checks byte identity;
#   3. for each round, endpoint and connection count runs
#      `wrk -t2 -cN -dDs --latency` against both servers back to back, the
#      order swapped every round (A B, B A, ...) so that drift cancels;
#   4. prints medians over rounds, the ratio to nginx and PASS/MISS against the
#      targets of the perf baselines; writes everything to build/bench/api/.
#
# It must never touch anything but loopback, and never stop a process it did
# not start: both servers are stopped by PID from the EXIT trap.
#
# Environment: ROUNDS (5), DURATION seconds per wrk run (10), CONNS ("64 256"),
# THREADS (2), WARMUP seconds per server and endpoint before round 1 (2, 0 =
# none), OUTRIGGER (build/outrigger), NGINX (nginx from PATH or
# /usr/sbin/nginx), NGINX_CACHE=1 (nginx with open_file_cache), OUT
# (build/bench/api), KEEP_TMP=1 keeps the temp dir.
#
# Exit status: 0 when every wrk run was clean (a MISS is reported, not
# failed: this is a benchmark on a noisy machine, not a test); 1 when a run
# saw non-2xx answers, socket errors, a dead server or a body mismatch;
# 2 on a usage or set-up problem.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64 256}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
OUTRIGGER=${OUTRIGGER:-$root/build/outrigger}
OUT=${OUT:-$root/build/bench/api}
NENV=100

# name | URL path (same on both servers) | target ratio to nginx
ENDPOINTS=(
	"health|/api/v1/health|0.9"
	"list|/api/v1/environments?limit=$NENV|0.8"
	"one|/api/v1/environments/env-050|0.7"
)

say() { printf 'bench/api: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
{ is_uint "$ROUNDS" && [ "$ROUNDS" -ge 1 ]; } || die "ROUNDS must be a positive integer (got '$ROUNDS')"
{ is_uint "$DURATION" && [ "$DURATION" -ge 1 ]; } || die "DURATION must be a positive number of seconds (got '$DURATION')"
{ is_uint "$THREADS" && [ "$THREADS" -ge 1 ]; } || die "THREADS must be a positive integer (got '$THREADS')"
is_uint "$WARMUP" || die "WARMUP must be a number of seconds (got '$WARMUP')"
for c in $CONNS; do
	{ is_uint "$c" && [ "$c" -ge "$THREADS" ]; } || die "CONNS must be integers >= THREADS (got '$CONNS')"
done

# --- tools -----------------------------------------------------------------

if [ -z "${NGINX:-}" ]; then
	NGINX=$(command -v nginx || true)
	[ -n "$NGINX" ] || NGINX=/usr/sbin/nginx
fi
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x "$NGINX" ] || missing+=(nginx)
if [ "${#missing[@]}" -gt 0 ]; then
	say "missing tool(s): ${missing[*]}"
	say "install the benchmark packages with:  tools/deps.sh install bench"
	say "(the Debian packages tagged 'bench' in debian-packages.txt: $("$root/tools/deps.sh" list bench 2>/dev/null | paste -sd ' ' - || true))"
	case " ${missing[*]} " in *' curl '*) say "curl is tagged 'test' there: tools/deps.sh install test, or apt-get install curl" ;; esac
	exit 2
fi
if [ ! -x "$OUTRIGGER" ]; then
	die "no server binary at $OUTRIGGER: build it first with 'make' in $root"
fi

# --- state and cleanup -------------------------------------------------------

tmp=
srv_pid=
ngx_pid=
wrk_pid=
srv_port=
ngx_port=
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
	# 143 = ended by our SIGTERM, the normal way out for both servers.
	if [ "$st" -ne 0 ] && [ "$st" -ne 143 ] && [ "$name" != wrk ]; then
		say "$name (pid $pid) exited with status $st"
	fi
}

# shellcheck disable=SC2317
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM HUP
	stop_pid "$wrk_pid" wrk
	stop_pid "$ngx_pid" nginx
	stop_pid "$srv_pid" outrigger
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/outrigger-bench-api.XXXXXX")
# nginx workers run as nobody when started by root: they must be able to walk
# into the temp dir (not list it) and read the web root.
chmod 0711 "$tmp"
www=$tmp/www
mkdir -p "$www" "$tmp/nginx"
chmod 0755 "$www"

rm -rf "$OUT"
mkdir -p "$OUT/raw" "$OUT/headers"

# free_port: a 127.0.0.1 port nothing listens on now (a late collision makes
# the server fail to start, and the caller then tries another port).
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if [ "$p" = "$srv_port" ] || [ "$p" = "$ngx_port" ]; then continue; fi
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# http_code URL: the status of one GET, 000 when nothing answered.
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }

# rss_kb PID: VmRSS in kB (empty when unreadable).
rss_kb() { awk '/^VmRSS:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null || true; }
anon_kb() { awk '/^RssAnon:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null || true; }
mb() { awk -v k="$1" 'BEGIN { if (k == "") print "?"; else printf "%.2f", k / 1024 }'; }

# --- Outrigger ---------------------------------------------------------------

start_server() {
	local try
	for try in 1 2 3; do
		srv_port=$(free_port) || die "found no free port on 127.0.0.1"
		# The access log (one line per request) goes to stderr: drop it, or
		# millions of lines would cost disk I/O during the runs.
		(cd "$root" && exec "$OUTRIGGER" serve --listen "127.0.0.1:$srv_port" \
			--db "$tmp/bench.db" --blueprints tests/blueprints) \
			>"$tmp/server.stdout" 2>/dev/null &
		srv_pid=$!
		sleep 1
		if alive "$srv_pid"; then
			# Idle RSS: 1 s after start, before any request.
			idle_rss=$(rss_kb "$srv_pid")
			idle_anon=$(anon_kb "$srv_pid")
			return 0
		fi
		wait "$srv_pid" 2>/dev/null || true
		srv_pid=
		say "outrigger exited during start-up on port $srv_port (try $try)"
		[ -s "$tmp/server.stdout" ] && sed 's/^/  stdout: /' "$tmp/server.stdout" >&2
	done
	say "outrigger would not start; its stderr is dropped here, so run it by hand to see why:"
	say "  cd $root && $OUTRIGGER serve --listen 127.0.0.1:$srv_port --db /tmp/x.db --blueprints tests/blueprints"
	exit 2
}

wait_ready() { # URL PID NAME
	local i
	for i in $(seq 1 100); do
		[ "$(http_code "$1")" = 200 ] && return 0
		alive "$2" || die "$3 died before answering $1"
		sleep 0.1
	done
	die "$3 did not answer 200 on $1 within 10 s"
}

say "starting $OUTRIGGER"
start_server
srv=http://127.0.0.1:$srv_port
wait_ready "$srv/api/v1/health" "$srv_pid" outrigger
say "outrigger pid $srv_pid on $srv, idle VmRSS $(mb "$idle_rss") MB"

say "creating $NENV environments"
for i in $(seq 1 "$NENV"); do
	name=$(printf 'env-%03d' "$i")
	code=$(curl -s -o "$tmp/create.out" -w '%{http_code}' --max-time 10 -X POST \
		-H 'Content-Type: application/json' \
		-d "{\"name\":\"$name\",\"provider\":\"sandbox\",\"blueprint\":\"demo\",\"params\":{\"owner\":\"bench\"}}" \
		"$srv/api/v1/environments" || true)
	case $code in
	2??) ;;
	*)
		say "creating $name answered HTTP $code:"
		head -c 2000 "$tmp/create.out" >&2
		echo >&2
		exit 2
		;;
	esac
done

# The bodies must be the ones the server gives during the runs. If creating
# an environment starts background work that changes what the list says,
# wait (up to 60 s) until two snapshots a second apart are identical.
list_url="$srv/api/v1/environments?limit=$NENV"
stable=0
curl -sf --max-time 10 -o "$tmp/snap.a" "$list_url" || die "GET $list_url failed"
for i in $(seq 1 60); do
	sleep 1
	curl -sf --max-time 10 -o "$tmp/snap.b" "$list_url" || die "GET $list_url failed"
	if cmp -s "$tmp/snap.a" "$tmp/snap.b"; then
		stable=1
		break
	fi
	mv "$tmp/snap.b" "$tmp/snap.a"
done
if [ "$stable" = 0 ]; then
	problems+=("the list body kept changing for 60 s after the creations: nginx serves one snapshot of it")
	say "${problems[-1]}"
fi

# Fetch each body exactly as served, with its headers for the record.
for ep in "${ENDPOINTS[@]}"; do
	IFS='|' read -r name path _ <<<"$ep"
	code=$(curl -s -D "$OUT/headers/outrigger-$name.txt" -o "$www/$name.json" \
		-w '%{http_code}' --max-time 10 "$srv$path" || true)
	[ "$code" = 200 ] || die "GET $srv$path answered HTTP $code"
	chmod 0644 "$www/$name.json"
done
nseen=$(grep -o '"env-[0-9][0-9][0-9]"' "$www/list.json" | sort -u | wc -l)
if [ "$nseen" -lt "$NENV" ]; then
	problems+=("the list body names only $nseen of $NENV environments: is ?limit=$NENV honoured?")
	say "${problems[-1]}"
fi

# --- nginx -------------------------------------------------------------------

write_nginx_conf() {
	local user_line=
	local cache_line=
	# NGINX_CACHE=1: keep the files open between requests (not the default,
	# nor what perf-baselines.md measured; a stricter nginx for comparison).
	if [ "${NGINX_CACHE:-0}" = 1 ]; then cache_line="    open_file_cache max=16 inactive=600s; open_file_cache_valid 600s;"; fi
	# As root nginx would switch its workers to the compiled-in default user
	# 'nobody' with group 'nobody', which Debian does not have.
	[ "$(id -u)" = 0 ] && user_line='user nobody nogroup;'
	{
		cat <<EOF
# Generated by bench/api/run.sh: nginx serving Outrigger's exact bodies.
$user_line
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 8192;
error_log $tmp/nginx/error.log warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/json;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    # nginx closes a keep-alive connection after 1000 requests by default;
    # Outrigger does not: keep both on pure keep-alive.
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
$cache_line
    server {
        listen 127.0.0.1:$ngx_port;
        root $www;
EOF
		for ep in "${ENDPOINTS[@]}"; do
			IFS='|' read -r name path _ <<<"$ep"
			# Same path as Outrigger; nginx ignores the query string.
			printf '        location = %s { alias %s/%s.json; }\n' "${path%%\?*}" "$www" "$name"
		done
		cat <<EOF
        location / { return 404; }
    }
}
EOF
	} >"$tmp/nginx/nginx.conf"
}

start_nginx() {
	local try
	for try in 1 2 3; do
		ngx_port=$(free_port) || die "found no free port on 127.0.0.1"
		write_nginx_conf
		"$NGINX" -p "$tmp/nginx/" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
			>"$tmp/nginx/stdout" 2>&1 &
		ngx_pid=$!
		sleep 0.3
		alive "$ngx_pid" && return 0
		wait "$ngx_pid" 2>/dev/null || true
		ngx_pid=
		say "nginx exited during start-up on port $ngx_port (try $try):"
		cat "$tmp/nginx/stdout" "$tmp/nginx/error.log" 2>/dev/null | tail -n 5 >&2
	done
	exit 2
}

say "starting $NGINX"
start_nginx
ngx=http://127.0.0.1:$ngx_port
wait_ready "$ngx/api/v1/health" "$ngx_pid" nginx
cp "$tmp/nginx/nginx.conf" "$OUT/nginx.conf"
ngx_rss=0
for p in $ngx_pid $(pgrep -P "$ngx_pid" || true); do
	k=$(rss_kb "$p")
	ngx_rss=$((ngx_rss + ${k:-0}))
done
say "nginx pid $ngx_pid on $ngx, master + workers VmRSS $(mb "$ngx_rss") MB"

for ep in "${ENDPOINTS[@]}"; do
	IFS='|' read -r name path _ <<<"$ep"
	curl -sf --max-time 10 -D "$OUT/headers/nginx-$name.txt" -o "$tmp/check.json" "$ngx$path" ||
		die "nginx did not serve $path"
	cmp -s "$tmp/check.json" "$www/$name.json" || die "nginx body of $path differs from Outrigger's"
	cp "$www/$name.json" "$OUT/body-$name.json"
done

# --- wrk ---------------------------------------------------------------------

base_of() { if [ "$1" = outrigger ]; then echo "$srv"; else echo "$ngx"; fi; }
pid_of() { if [ "$1" = outrigger ]; then echo "$srv_pid"; else echo "$ngx_pid"; fi; }

# run_wrk SERVER PATH CONNS SECONDS FILE: one wrk run, in the background so
# that an interrupt reaches the trap, which then stops wrk too.
run_wrk() {
	local st=0
	wrk -t"$THREADS" -c"$3" -d"$4s" --latency "$(base_of "$1")$2" >"$5" 2>&1 &
	wrk_pid=$!
	wait "$wrk_pid" || st=$?
	wrk_pid=
	return "$st"
}

# parse_wrk FILE: "req/s p99_ms non2xx sockerr requests" (p99 in ms).
parse_wrk() {
	awk '
	function ms(v) {
		if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
		if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
		if (v ~ /m$/) return substr(v, 1, length(v) - 1) * 60000
		if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
		return v + 0
	}
	/^Requests\/sec:/ { rps = $2 }
	$1 == "99%" { p99 = ms($2) }
	/Non-2xx or 3xx responses:/ { non2xx = $NF }
	/Socket errors:/ { gsub(/,/, ""); sockerr = $4 + $6 + $8 + $10 }
	/requests in/ { reqs = $1 }
	END {
		if (rps == "") rps = "nan"
		if (p99 == "") p99 = "nan"
		printf "%s %s %d %d %d\n", rps, p99, non2xx, sockerr, reqs
	}' "$1"
}

results=$OUT/results.tsv
printf 'round\tendpoint\tconns\tserver\treq_s\tp99_ms\tnon2xx\tsocket_errors\trequests\n' >"$results"

# check_run SERVER FILE LABEL: record the problems of one run (in the
# global problems array, so never call it in a subshell); sets parsed.
check_run() {
	local rps non2xx sockerr
	parsed=$(parse_wrk "$2")
	read -r rps _ non2xx sockerr _ <<<"$parsed"
	if [ "$rps" = nan ]; then
		problems+=("$3: wrk printed no result (see $2)")
		say "${problems[-1]}"
	fi
	if [ "$non2xx" -gt 0 ]; then
		problems+=("$3: $non2xx non-2xx/3xx responses")
		say "${problems[-1]}"
	fi
	if [ "$sockerr" -gt 0 ]; then
		problems+=("$3: socket errors: $(grep 'Socket errors' "$2" | sed 's/^ *//')")
		say "${problems[-1]}"
	fi
	if ! alive "$(pid_of "$1")"; then
		problems+=("$3: $1 is no longer running")
		say "${problems[-1]}"
		exit 1
	fi
}

maxc=0
for c in $CONNS; do [ "$c" -gt "$maxc" ] && maxc=$c; done
if [ "$WARMUP" -gt 0 ]; then
	say "warming up (${WARMUP}s per server and endpoint, c$maxc, not counted)"
	for ep in "${ENDPOINTS[@]}"; do
		IFS='|' read -r name path _ <<<"$ep"
		for s in outrigger nginx; do
			f=$OUT/raw/warmup-$name-$s.txt
			run_wrk "$s" "$path" "$maxc" "$WARMUP" "$f" || true
			check_run "$s" "$f" "warm-up $name $s"
		done
	done
fi

nruns=$((ROUNDS * ${#ENDPOINTS[@]} * $(echo "$CONNS" | wc -w) * 2))
say "$nruns wrk runs of ${DURATION}s: about $((nruns * (DURATION + 1) / 60 + 1)) min"
n=0
for r in $(seq 1 "$ROUNDS"); do
	# A B in odd rounds, B A in even ones: each server goes first as often.
	if [ $((r % 2)) = 1 ]; then order="outrigger nginx"; else order="nginx outrigger"; fi
	for ep in "${ENDPOINTS[@]}"; do
		IFS='|' read -r name path _ <<<"$ep"
		for c in $CONNS; do
			for s in $order; do
				n=$((n + 1))
				f=$OUT/raw/r$r-$name-c$c-$s.txt
				run_wrk "$s" "$path" "$c" "$DURATION" "$f" || true
				check_run "$s" "$f" "round $r $name c$c $s"
				read -r rps p99 non2xx sockerr reqs <<<"$parsed"
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
					"$r" "$name" "$c" "$s" "$rps" "$p99" "$non2xx" "$sockerr" "$reqs" >>"$results"
				say "[$n/$nruns] round $r $name c$c $s: $rps req/s, p99 $p99 ms"
			done
		done
	done
done
end_rss=$(rss_kb "$srv_pid")

# --- table -------------------------------------------------------------------

median() {
	sort -g | awk '{ a[NR] = $1 }
	END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2
	}'
}
col() { # ENDPOINT CONNS SERVER COLUMN
	awk -F'\t' -v e="$1" -v c="$2" -v s="$3" -v k="$4" \
		'NR > 1 && $2 == e && $3 == c && $4 == s && $k != "nan" { print $k }' "$results" | median
}
# Per-round ratio of the pair that ran back to back, then its median.
ratio() {
	awk -F'\t' -v e="$1" -v c="$2" '
	NR > 1 && $2 == e && $3 == c { v[$1, $4] = $5; r[$1] = 1 }
	END { for (i in r) if (v[i, "nginx"] > 0 && v[i, "outrigger"] != "nan") print v[i, "outrigger"] / v[i, "nginx"] }' "$results" | median
}

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null || true)" ]; then dirty=" +uncommitted changes"; fi
table=$OUT/table.md
{
	echo "# bench/api — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "ROUNDS=$ROUNDS DURATION=${DURATION}s THREADS=$THREADS CONNS=\"$CONNS\"; $(nproc) cores; commit $commit$dirty;" \
		"$("$NGINX" -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }')"
	echo
	echo "| endpoint | conns | outrigger req/s | nginx req/s | ratio | target | result | outrigger p99 | nginx p99 |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
	misses=0
	for ep in "${ENDPOINTS[@]}"; do
		IFS='|' read -r name path target <<<"$ep"
		for c in $CONNS; do
			o=$(col "$name" "$c" outrigger 5)
			g=$(col "$name" "$c" nginx 5)
			q=$(ratio "$name" "$c")
			op=$(col "$name" "$c" outrigger 6)
			gp=$(col "$name" "$c" nginx 6)
			res=$(awk -v q="$q" -v t="$target" 'BEGIN { print (q != "nan" && q + 0 >= t + 0) ? "PASS" : "MISS" }')
			[ "$res" = PASS ] || misses=$((misses + 1))
			awk -v p="GET $path" -v c="$c" -v o="$o" -v g="$g" -v q="$q" -v t="$target" \
				-v r="$res" -v op="$op" -v gp="$gp" 'BEGIN {
				printf "| %s | %s | %.0f | %.0f | %.2f | ≥ %.1f | %s | %.2f ms | %.2f ms |\n",
					p, c, o, g, q, t, r, op, gp }'
		done
	done
	echo
	echo "Medians over $ROUNDS round(s); ratio = median of the per-round ratios (each pair ran back to back)."
	echo "outrigger VmRSS: idle 1 s after start $(mb "$idle_rss") MB (RssAnon $(mb "$idle_anon") MB; target ≤ 10 MB)," \
		"after the runs $(mb "$end_rss") MB; nginx master + 2 workers at start $(mb "$ngx_rss") MB."
	echo "Bodies: health $(wc -c <"$www/health.json") B, list $(wc -c <"$www/list.json") B ($nseen environments)," \
		"one $(wc -c <"$www/one.json") B; identical bytes on both servers."
	if [ "${#problems[@]}" -gt 0 ]; then
		echo
		echo "RUN FAILED — ${#problems[@]} problem(s):"
		for p in "${problems[@]}"; do echo "- $p"; done
	else
		echo "No non-2xx answers and no socket errors in any run. $misses MISS(es)."
	fi
} >"$table"
echo
cat "$table"
echo
say "raw wrk outputs in ${OUT#"$root"/}/raw/, table in ${OUT#"$root"/}/table.md, per-run figures in ${OUT#"$root"/}/results.tsv"
[ "${#problems[@]}" -eq 0 ] || exit 1
exit 0
