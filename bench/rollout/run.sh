#!/usr/bin/env bash
# bench/rollout/run.sh - how long a whole rollout takes against the sandbox,
# set against two yardsticks (bench/README.md explains how to read it):
#
#   (a) the floor: the critical path of the run's own step graph -- the
#       longest chain of steps (by each step's `after`) weighted by the
#       durations the server recorded for them.  wall / critical path says
#       what the engine adds on top of the steps themselves;
#   (b) the tutorial's way: the same rollout typed as the tutorial's
#       commands, one after another, with the real gcloud, kubectl, ssh and
#       scp against the same sandbox (same time scale, same mirror, the same
#       corrections Outrigger makes, so both end at the same working shop).
#       Outrigger / sequential says what running the steps as a graph, with
#       one client, buys.
#
# Per round and flow (legacy: mesh-expansion-legacy, Istio 1.6.5; current:
# mesh-expansion, Istio 1.29.0): one fresh sandbox (--time-scale, --seed,
# --catalog of this script's own), in which both halves run in projects of
# their own, in alternating order; then the Outrigger environment is
# destroyed (timed too).  Each half ends when the shop at the ingress IP
# answers 200 listing this script's products, served by the VM.
#
# It must never touch anything but loopback (as root it runs in a network
# namespace of its own with only lo) and never stop a process it did not
# start: the sandbox and the server are stopped by PID from the EXIT trap.
#
# Environment: ROUNDS (3), FLOWS ("legacy current"), HALVES ("outrigger
# tutorial"), TIME_SCALE (0.01), SEED (1), POLL (0.2 s: the tutorial side's
# wait loops), RUN_TIMEOUT (900 s per rollout), DESTROY (1), OUTRIGGER
# (build/outrigger), CC (cc), OUT (build/bench/rollout), KEEP_TMP=1 keeps the
# scratch directory.
#
# Exit status: 0 when every rollout reached the shop; 1 when one failed or
# a process died; 2 on a usage or set-up problem.

# SC2317: the tutorial's functions are called by name ("tutorial_$flow"),
# which shellcheck cannot follow.
# shellcheck disable=SC2317
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

ROUNDS=${ROUNDS:-3}
FLOWS=${FLOWS:-legacy current}
HALVES=${HALVES:-outrigger tutorial}
TIME_SCALE=${TIME_SCALE:-0.01}
SEED=${SEED:-1}
POLL=${POLL:-0.2}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
DESTROY=${DESTROY:-1}
OUTRIGGER=${OUTRIGGER:-$root/build/outrigger}
CC=${CC:-cc}
OUT=${OUT:-$root/build/bench/rollout}

ZONE=us-west2-a
LEGACY_ISTIO=1.6.5
CURRENT_ISTIO=1.29.0
LEGACY_OB=v0.2.0
CURRENT_OB=v0.10.6

say() { printf 'bench/rollout: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
if ! is_uint "$ROUNDS" || [ "$ROUNDS" -lt 1 ]; then die "ROUNDS must be a positive integer (got '$ROUNDS')"; fi
if ! is_uint "$RUN_TIMEOUT" || [ "$RUN_TIMEOUT" -lt 10 ]; then die "RUN_TIMEOUT must be at least 10 (got '$RUN_TIMEOUT')"; fi
for f in $FLOWS; do case $f in legacy | current) ;; *) die "FLOWS are legacy and current (got '$FLOWS')" ;; esac; done
for h in $HALVES; do case $h in outrigger | tutorial) ;; *) die "HALVES are outrigger and tutorial (got '$HALVES')" ;; esac; done
want() { case " $HALVES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
awk -v s="$TIME_SCALE" 'BEGIN { exit !(s + 0 > 0 && s + 0 <= 1) }' || die "TIME_SCALE must be in (0, 1] (got '$TIME_SCALE')"

# --- root and a network of our own ------------------------------------------

# The sandbox's VMs are sshd processes in namespaces, on port 22 of
# 127.10.x.y: without root there is no VM, and no rollout can finish.
if [ "$(id -u)" != 0 ]; then
	die "needs root: the sandbox's VMs are real sshd processes in namespaces (docs/sandbox.md); nothing was measured"
fi
# As root, everything runs in a new network namespace with only loopback,
# so neither the tools nor the sandbox can reach anything else.
if [ -z "${OUTRIGGER_IN_NETNS:-}" ] && command -v unshare >/dev/null 2>&1 && unshare --net true 2>/dev/null; then
	# shellcheck disable=SC2016 # $0 and $@ are the inner shell's
	exec unshare --net env OUTRIGGER_IN_NETNS=1 bash -c 'ip link set lo up 2>/dev/null; exec "$0" "$@"' "$0" "$@"
fi

# --- tools ---------------------------------------------------------------------

missing=()
for t in curl tar sha256sum "$CC" pkg-config; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
if want tutorial; then
	for t in gcloud kubectl ssh scp ssh-keygen openssl; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
fi
if [ "${#missing[@]}" -gt 0 ]; then
	say "missing tool(s): ${missing[*]}"
	say "install them with:  tools/deps.sh install build test bench  (gcloud and kubectl: see tests/sandbox/gcloud.sh)"
	exit 2
fi
[ -x "$OUTRIGGER" ] || die "no server binary at $OUTRIGGER: build it first with 'make' in $root"
[ -x "$(dirname "$OUTRIGGER")/outrigger-step" ] || die "no step runner beside $OUTRIGGER: build it first with 'make'"
for p in preflight gke-cluster gce-instance mesh-ca cluster-admin-binding gce-firewall istio-install \
	vm-files boutique-deploy kiali-link mesh-register vm-bootstrap ingress-ip; do
	[ -f "$root/plugins/$p.so" ] || die "no plugins/$p.so: build the rollout's plugins first with 'make'"
done

# --- state and cleanup ------------------------------------------------------------

tmp=
SB_PID=
SRV_PID=

alive() {
	local st
	[ -n "$1" ] && [ -r "/proc/$1/status" ] || return 1
	st=$(awk '/^State:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# shellcheck disable=SC2317 # stop_pid and cleanup run from the traps
# stop_pid PID NAME: SIGTERM, up to 10 s for a clean exit (the sandbox stops
# its VMs first), then SIGKILL; reap.  Only ever a child of this script.
stop_pid() {
	local pid=$1 name=$2 st=0
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			say "$name (pid $pid) did not stop within 10 s of SIGTERM: sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || st=$?
	if [ "$st" -ne 0 ] && [ "$st" -ne 143 ]; then
		say "$name (pid $pid) exited with status $st"
	fi
}

# shellcheck disable=SC2317
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM HUP
	stop_pid "$SRV_PID" outrigger
	stop_pid "$SB_PID" sandbox
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
	fi
	if [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "${OUT:?}/bin"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/outrigger-bench-rollout.XXXXXX")
rm -rf "$OUT"
mkdir -p "$OUT/raw" "$OUT/bin/plugins/blueprints"
: >"$tmp/problems"

problem() {
	printf '%s\n' "$*" >>"$tmp/problems"
	say "PROBLEM: $*"
}

# A copy of the programs: a rebuild during the run cannot swap them under the
# servers.  It lives under OUT, not in the temp dir: a sandbox VM mounts the
# sandbox's own binary (its docker stand-in runs the catalog with it) after
# the VM's /tmp has become its own, so the binary must not be under /tmp.
cp "$OUTRIGGER" "$OUT/bin/outrigger"
cp "$(dirname "$OUTRIGGER")/outrigger-step" "$OUT/bin/outrigger-step"
cp "$root"/plugins/*.so "$OUT/bin/plugins/"
cp "$root"/plugins/blueprints/*.json "$OUT/bin/plugins/blueprints/"
BIN=$OUT/bin/outrigger
case $BIN in /tmp/* | /run/* | /dev/*) say "warning: $BIN is under a directory a VM replaces: the VMs will have no catalog server" ;; esac
RUNSTAT=$tmp/runstat
say "building bench/rollout/runstat.c with $CC"
# shellcheck disable=SC2046 # pkg-config's words are meant to split
"$CC" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$RUNSTAT" "$here/runstat.c" \
	$(pkg-config --cflags --libs jansson) || die "cannot build bench/rollout/runstat.c"

# The catalog the VM serves: the shop must list exactly these.
cat >"$tmp/catalog.json" <<'EOF'
{"products": [
 {"id": "BENCH00001", "name": "Bench Outrigger Canoe", "description": "bench/rollout",
  "picture": "/static/img/products/canoe.jpg",
  "priceUsd": {"currencyCode": "USD", "units": 1899, "nanos": 0}, "categories": ["boats"]},
 {"id": "BENCH00002", "name": "Bench Ama Float", "description": "bench/rollout",
  "picture": "/static/img/products/float.jpg",
  "priceUsd": {"currencyCode": "USD", "units": 45, "nanos": 500000000}, "categories": ["boats"]}
]}
EOF
PRODUCT="Bench Outrigger Canoe"

# --- helpers ------------------------------------------------------------------------

now_ms() { date +%s%3N; }
median() {
	sort -g | awk '{ a[NR] = $1 }
	END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2
	}'
}
# col FILE COLUMN [KEY_COL KEY_VALUE]...: the median of a TSV column over the
# rows whose key columns match ("nan", "-" and "" are skipped).
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
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan" || v == "") print "—"; else printf f, v }'; }
secs() { awk -v v="$1" 'BEGIN { if (v == "nan" || v == "" || v < 0) print "—"; else printf "%.2f", v / 1000 }'; }

# start_sandbox DIR: a fresh simulated cloud; sets SB_PID, SB_BASE.
start_sandbox() {
	local dir=$1
	mkdir -p "$dir"
	"$BIN" sandbox --listen 127.0.0.1:0 --dir "$dir/sb" --time-scale "$TIME_SCALE" --seed "$SEED" \
		--catalog "$tmp/catalog.json" >"$dir/sandbox.out" 2>"$dir/sandbox.log" &
	SB_PID=$!
	for _ in $(seq 1 200); do
		grep -q 'listening on' "$dir/sandbox.out" 2>/dev/null && break
		alive "$SB_PID" || break
		sleep 0.05
	done
	SB_BASE=$(sed -n 's/.*listening on \(http[^ ]*\)\/ .*/\1/p' "$dir/sandbox.out")
	[ -n "$SB_BASE" ] || { tail -n 20 "$dir/sandbox.log" >&2; die "the sandbox did not start"; }
	if grep -q 'instances will have no VM' "$dir/sandbox.log"; then
		grep -o 'instances will have no VM.*' "$dir/sandbox.log" | head -n 1 >&2
		die "the sandbox cannot run VMs here, so no rollout can finish"
	fi
}

# start_server DIR: outrigger serve on the sandbox's endpoints; sets SRV_PID, SRV.
start_server() {
	local dir=$1
	(cd "$root" && exec "$BIN" serve --listen 127.0.0.1:0 --db "$dir/outrigger.db" \
		--plugins "$OUT/bin/plugins" --sandbox-endpoints "$dir/sb/endpoints.json" \
		--no-access-log) >"$dir/server.out" 2>"$dir/server.log" &
	SRV_PID=$!
	SRV=
	for _ in $(seq 1 200); do
		SRV=$(sed -n 's/.*listening on \(http:[^ ]*[0-9]\)\/.*/\1/p' "$dir/server.out" 2>/dev/null)
		[ -n "$SRV" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$SRV/api/v1/health")" = 200 ] && return 0
		alive "$SRV_PID" || break
		sleep 0.05
	done
	tail -n 20 "$dir/server.log" >&2
	die "outrigger serve did not start"
}

# api METHOD PATH [BODY]: the answer's body on stdout; 1 on a non-2xx answer.
api() {
	local code
	code=$(curl -s -o "$tmp/api.out" -w '%{http_code}' --max-time 20 -X "$1" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "$SRV$2" || true)
	cat "$tmp/api.out"
	case $code in 2??) return 0 ;; *) say "$1 $2 answered HTTP $code" && return 1 ;; esac
}

# wait_run ID SECONDS FILE: until the run has finished; its JSON in FILE.
wait_run() {
	local n st
	n=$(awk -v s="$2" 'BEGIN { printf "%d", s * 10 }')
	for _ in $(seq 1 "$n"); do
		curl -sf --max-time 10 -o "$3" "$SRV/api/v1/runs/$1" || true
		st=$("$RUNSTAT" get "$3" status 2>/dev/null || true)
		case $st in succeeded | failed | cancelled) return 0 ;; esac
		alive "$SRV_PID" || { problem "outrigger serve died during run $1"; return 1; }
		sleep 0.1
	done
	return 1
}

# shop_ok IP: the shop at IP answers 200 listing our products.
shop_ok() {
	curl -s -m 5 -o "$tmp/shop.html" -w '%{http_code}' "http://$1/" 2>/dev/null | grep -q '^200$' &&
		grep -qF "$PRODUCT" "$tmp/shop.html"
}

# mirror REAL_URL: the sandbox's URL for it (endpoints.json "mirrors").
# shellcheck disable=SC2317 # called from the tutorial's functions
mirror() {
	local real mine
	while IFS=$'\t' read -r real mine; do
		case "$1" in "$real"*) echo "$mine${1#"$real"}" && return 0 ;; esac
	done < <(sed -n 's/^ *"\(https:[^"]*\)": "\([^"]*\)",\{0,1\}$/\1\t\2/p' "$SBDIR/endpoints.json")
	echo "no-mirror-for:$1"
	return 1
}

# --- (a) Outrigger ------------------------------------------------------------------

f_run=$OUT/rollout.tsv
f_steps=$OUT/steps.tsv
f_tut=$OUT/tutorial.tsv
f_cmd=$OUT/commands.tsv
printf 'round\tflow\taction\tstatus\twall_ms\tclient_ms\tcritical_ms\tsum_ms\tsteps\tsucceeded\tattempts\twall_over_critical\tshop\tresources\tcritical_path\n' >"$f_run"
printf 'round\tflow\taction\tstep\tstatus\tattempts\tstart_ms\tduration_ms\tcritical\tafter\n' >"$f_steps"
printf 'round\tflow\tstatus\twall_ms\tcommands\tfailed_at\n' >"$f_tut"
printf 'round\tflow\tseq\tcommand\tduration_ms\texit\n' >"$f_cmd"

blueprint_of() { if [ "$1" = legacy ]; then echo mesh-expansion-legacy; else echo mesh-expansion; fi; }

# record_run ROUND FLOW ACTION FILE CLIENT_MS SHOP RESOURCES
record_run() {
	local r=$1 fl=$2 act=$3 file=$4 cms=$5 shop=$6 res=$7 st wall crit sum n ok att path
	read -r st wall crit sum n ok att path <<<"$("$RUNSTAT" run "$file")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$fl" "$act" "$st" "$wall" "$cms" \
		"$crit" "$sum" "$n" "$ok" "$att" \
		"$(awk -v w="$wall" -v c="$crit" 'BEGIN { if (c > 0) printf "%.3f", w / c; else print "nan" }')" \
		"$shop" "$res" "$path" >>"$f_run"
	"$RUNSTAT" steps "$file" | sed "s/^/$r\t$fl\t$act\t/" >>"$f_steps"
	say "[$fl r$r] outrigger $act: $st; wall $(secs "$wall") s, critical path $(secs "$crit") s ($path), steps summed $(secs "$sum") s"
	[ "$st" = succeeded ]
}

outrigger_half() {
	local r=$1 fl=$2 dir=$3 env id t0 t1 shop ip res
	env=bench-$fl-r$r
	api POST /api/v1/environments "{\"name\":\"$env\",\"provider\":\"sandbox\",\"blueprint\":\"$(blueprint_of "$fl")\",\"params\":{\"project\":\"bench-outrigger-$r\"}}" \
		>"$OUT/raw/env-$fl-r$r-created.json" || { problem "[$fl r$r] creating environment $env failed: $(cat "$tmp/api.out")"; return 1; }
	t0=$(now_ms)
	api POST "/api/v1/environments/$env/runs" '{"action":"apply"}' >"$tmp/run.out" ||
		{ problem "[$fl r$r] starting the apply failed: $(cat "$tmp/api.out")"; return 1; }
	id=$("$RUNSTAT" get "$tmp/run.out" id)
	if ! wait_run "$id" "$RUN_TIMEOUT" "$OUT/raw/outrigger-$fl-r$r-apply.json"; then
		problem "[$fl r$r] the Outrigger apply (run $id) did not finish within $RUN_TIMEOUT s"
		return 1
	fi
	t1=$(now_ms)
	api GET "/api/v1/environments/$env" >"$OUT/raw/env-$fl-r$r-ready.json" || true
	ip=$("$RUNSTAT" get "$OUT/raw/env-$fl-r$r-ready.json" outputs.ingress_ip 2>/dev/null || true)
	shop=no
	[ -n "$ip" ] && shop_ok "$ip" && shop=yes
	res=$(awk '{ c += gsub(/"self_link"/, "") } END { print c + 0 }' "$OUT/raw/env-$fl-r$r-ready.json")
	if ! record_run "$r" "$fl" apply "$OUT/raw/outrigger-$fl-r$r-apply.json" $((t1 - t0)) "$shop" "$res"; then
		problem "[$fl r$r] the Outrigger apply (run $id) did not succeed: $("$RUNSTAT" get "$OUT/raw/outrigger-$fl-r$r-apply.json" error || true)"
		return 1
	fi
	[ "$shop" = yes ] || { problem "[$fl r$r] the apply succeeded but the shop at '$ip' does not list the catalog"; return 1; }
	OR_ENV=$env
}

outrigger_destroy() {
	local r=$1 fl=$2 env=$3 id t0 t1 res st
	t0=$(now_ms)
	api POST "/api/v1/environments/$env/runs" '{"action":"destroy"}' >"$tmp/run.out" ||
		{ problem "[$fl r$r] starting the destroy failed: $(cat "$tmp/api.out")"; return 1; }
	id=$("$RUNSTAT" get "$tmp/run.out" id)
	if ! wait_run "$id" "$RUN_TIMEOUT" "$OUT/raw/outrigger-$fl-r$r-destroy.json"; then
		problem "[$fl r$r] the destroy (run $id) did not finish within $RUN_TIMEOUT s"
		return 1
	fi
	t1=$(now_ms)
	api GET "/api/v1/environments/$env" >"$OUT/raw/env-$fl-r$r-destroyed.json" || true
	res=$(awk '{ c += gsub(/"self_link"/, "") } END { print c + 0 }' "$OUT/raw/env-$fl-r$r-destroyed.json")
	st=$("$RUNSTAT" get "$OUT/raw/env-$fl-r$r-destroyed.json" status || true)
	record_run "$r" "$fl" destroy "$OUT/raw/outrigger-$fl-r$r-destroy.json" $((t1 - t0)) - "$res" ||
		problem "[$fl r$r] the destroy (run $id) did not succeed: $("$RUNSTAT" get "$OUT/raw/outrigger-$fl-r$r-destroy.json" error || true)"
	if [ "$st" != destroyed ] || [ "$res" != 0 ]; then
		problem "[$fl r$r] after destroy the environment is '$st' with $res resource(s) recorded"
	fi
}

# --- (b) the tutorial, one command after another --------------------------------------

# tcmd NAME CMD...: one timed command of the tutorial; stops the half at the
# first failure (TUT_OK=0).  Output to the half's log.
tcmd() {
	local name=$1 t0 t1 st=0
	shift
	[ "$TUT_OK" = 1 ] || return 1
	TUT_N=$((TUT_N + 1))
	printf '$ %s\n' "$*" >>"$TUT_LOG"
	t0=$(now_ms)
	"$@" >>"$TUT_LOG" 2>&1 || st=$?
	t1=$(now_ms)
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$TUT_R" "$TUT_FLOW" "$TUT_N" "$name" $((t1 - t0)) "$st" >>"$f_cmd"
	if [ "$st" != 0 ]; then
		TUT_OK=0
		TUT_FAILED=$name
		printf '(exit %s)\n' "$st" >>"$TUT_LOG"
		return 1
	fi
}

# until_ok SECONDS CMD...: retry every POLL s (what a person re-typing a
# `kubectl get` does, only faster).
until_ok() {
	local end=$(($(date +%s) + $1))
	shift
	while ! "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep "$POLL"
	done
}

lb_ip() { # NAMESPACE SERVICE: its LoadBalancer IP, or nothing
	kubectl get svc -n "$1" "$2" -o 'jsonpath={.status.loadBalancer.ingress[0].ip}' 2>/dev/null
}
has_lb_ip() { [ -n "$(lb_ip "$1" "$2")" ]; }
ssh_ready() { ssh "${SSHO[@]}" "bench@$VMIP" true 2>/dev/null; }
# shellcheck disable=SC2029 # the command is meant for the VM's shell
vm() { ssh "${SSHO[@]}" "bench@$VMIP" "$@"; }

# apply_twice FILE: kubectl finds a kind through discovery, so the custom
# resources of a file that also defines their CRDs need a second apply once
# the CRDs are established (istioctl install orders them itself).
apply_twice() {
	kubectl apply --server-side --force-conflicts -f "$1" && return 0
	kubectl wait --for condition=established --timeout=60s crd --all &&
		kubectl apply --server-side --force-conflicts -f "$1"
}

# The mesh CA as istio's tools/certs makes it (the tutorial used the public
# samples/certs instead; Outrigger makes a root per environment), and the
# VM's workload certificate signed by it (the tutorial's was self-signed
# with a spiffee:// DNS SAN, which istiod refuses).
make_ca() {
	local c=$TUT_DIR/certs ext
	mkdir -p "$c"
	ext='basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n'
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$c/root-key.pem" \
		-out "$c/root.csr" -subj "/O=Bench/CN=Root CA" &&
		printf '%b' "$ext" >"$c/root.ext" &&
		openssl x509 -req -in "$c/root.csr" -signkey "$c/root-key.pem" -out "$c/root-cert.pem" -days 30 \
			-extfile "$c/root.ext" &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$c/ca-key.pem" \
			-out "$c/ca.csr" -subj "/O=Bench/CN=Intermediate CA" &&
		printf '%bsubjectAltName=DNS:istiod.istio-system.svc\n' "$ext" >"$c/ca.ext" &&
		openssl x509 -req -in "$c/ca.csr" -CA "$c/root-cert.pem" -CAkey "$c/root-key.pem" -CAcreateserial \
			-out "$c/ca-cert.pem" -days 30 -extfile "$c/ca.ext" &&
		cat "$c/ca-cert.pem" "$c/root-cert.pem" >"$c/cert-chain.pem"
}
make_vm_cert() {
	local c=$TUT_DIR/certs
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TUT_DIR/key.pem" \
		-out "$c/vm.csr" -subj "/O=Bench/CN=istio-gce" &&
		printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://cluster.local/ns/default/sa/default\n' >"$c/vm.ext" &&
		openssl x509 -req -in "$c/vm.csr" -CA "$c/ca-cert.pem" -CAkey "$c/ca-key.pem" -CAcreateserial \
			-out "$c/vm.pem" -days 365 -extfile "$c/vm.ext" &&
		cat "$c/vm.pem" "$c/ca-cert.pem" "$c/root-cert.pem" >"$TUT_DIR/cert-chain.pem" &&
		cp "$c/root-cert.pem" "$TUT_DIR/root-cert.pem"
}

# download_istio V: the release archive through the mirror, checked, unpacked.
download_istio() {
	local a=istio-$1-linux-amd64.tar.gz u
	u=$(mirror "https://github.com/istio/istio/releases/download/$1/$a") &&
		(cd "$TUT_DIR" && curl -sSfL -o "$a" "$u" && curl -sSfL -o "$a.sha256" "$u.sha256" &&
			sha256sum -c "$a.sha256" && tar xzf "$a")
}

# The VM script (the tutorial's gce-script.sh, corrected as Outrigger's
# vm-bootstrap is: istiod's name in /etc/hosts, no istio-auth-node-agent).
write_gce_script() {
	local deb flow=$1
	deb=$(mirror "https://storage.googleapis.com/istio-release/releases/$2/deb/istio-sidecar.deb") || return 1
	{
		echo 'set -eu'
		echo "curl -sSfLO '$deb' && curl -sSfLO '$deb.sha256' && sha256sum -c istio-sidecar.deb.sha256"
		echo 'sudo dpkg -i istio-sidecar.deb'
		if [ "$flow" = legacy ]; then
			echo 'sudo mkdir -p /etc/certs && sudo cp root-cert.pem cert-chain.pem key.pem /etc/certs/'
			echo 'sudo cp cluster.env /var/lib/istio/envoy/cluster.env'
			echo 'cat hosts | sudo tee -a /etc/hosts >/dev/null'
			echo 'sudo chown -R istio-proxy /etc/certs /var/lib/istio/envoy'
		else
			echo 'sudo mkdir -p /etc/certs /var/run/secrets/tokens /etc/istio/config /etc/istio/proxy'
			echo 'sudo cp root-cert.pem /etc/certs/root-cert.pem'
			echo 'sudo cp istio-token /var/run/secrets/tokens/istio-token'
			echo 'sudo cp cluster.env /var/lib/istio/envoy/cluster.env'
			echo 'sudo cp mesh.yaml /etc/istio/config/mesh'
			echo 'cat hosts | sudo tee -a /etc/hosts >/dev/null'
			echo 'sudo chown -R istio-proxy /var/lib/istio /etc/certs /etc/istio/proxy /etc/istio/config /var/run/secrets'
		fi
		echo 'sudo systemctl restart istio'
		echo "sudo docker run -d --name productcatalogservice --restart=always -p 3550:3550 gcr.io/google-samples/microservices-demo/productcatalogservice:$3"
	} >"$TUT_DIR/gce-script.sh"
}

tut_prepare() { # the parts before the clock starts: a person's configured workstation
	export HOME=$TUT_DIR/home CLOUDSDK_CONFIG=$TUT_DIR/gcloud KUBECONFIG=$TUT_DIR/kubeconfig
	export CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=$SBDIR/access-token
	export CLOUDSDK_CORE_PROJECT=bench-tutorial-$TUT_R CLOUDSDK_CORE_DISABLE_PROMPTS=1
	export CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true
	export GCE_METADATA_ROOT=127.0.0.1:9
	export CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=$SB_BASE/compute/v1/
	export CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER=$SB_BASE/
	export CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE=$SB_BASE/
	mkdir -p "$HOME"
	gcloud config list >/dev/null 2>&1 || true
	ACCOUNT=$("$RUNSTAT" get "$SBDIR/service-account.json" client_email)
	SSHO=(-F /dev/null -o UserKnownHostsFile="$TUT_DIR/known_hosts" -o StrictHostKeyChecking=accept-new
		-o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -i "$TUT_DIR/id_ed25519")
}

tut_common_start() { # V_ISTIO
	tcmd ssh_keygen ssh-keygen -q -t ed25519 -N '' -C bench -f "$TUT_DIR/id_ed25519"
	tcmd ssh_keys_file sh -c "printf 'bench:%s\n' \"\$(cat '$TUT_DIR/id_ed25519.pub')\" >'$TUT_DIR/ssh-keys'"
	tcmd cluster_create gcloud container clusters create west --zone "$ZONE" --machine-type n1-standard-2 \
		--num-nodes 5 --disk-size 100 --image-type COS_CONTAINERD --enable-ip-alias
	tcmd get_credentials gcloud container clusters get-credentials west --zone "$ZONE"
	tcmd admin_binding kubectl create clusterrolebinding cluster-admin-binding \
		--clusterrole=cluster-admin --user="$ACCOUNT"
	tcmd istio_download download_istio "$1"
	tcmd mesh_ca make_ca
	tcmd istio_namespace kubectl create namespace istio-system
	tcmd cacerts kubectl create secret generic cacerts -n istio-system \
		--from-file="$TUT_DIR/certs/ca-cert.pem" --from-file="$TUT_DIR/certs/ca-key.pem" \
		--from-file="$TUT_DIR/certs/root-cert.pem" --from-file="$TUT_DIR/certs/cert-chain.pem"
}

tut_vm() { # the VM, its firewall rule, its address
	tcmd vm_create gcloud compute instances create istio-gce --zone "$ZONE" --machine-type n1-standard-2 \
		--image-family ubuntu-2204-lts --image-project ubuntu-os-cloud --tags istio-gce \
		--metadata-from-file ssh-keys="$TUT_DIR/ssh-keys"
	tcmd cluster_describe sh -c "gcloud container clusters describe west --zone '$ZONE' \
		--format 'value(clusterIpv4Cidr,servicesIpv4Cidr)' >'$TUT_DIR/cidrs'"
	tcmd firewall_create sh -c "gcloud compute firewall-rules create k8s-to-istio-gce \
		--description 'Allow k8s pods IP range to GCE instance' \
		--source-ranges \"\$(cut -f1 '$TUT_DIR/cidrs')\" --target-tags istio-gce --action ALLOW --rules tcp:3550"
	tcmd vm_describe sh -c "gcloud compute instances describe istio-gce --zone '$ZONE' \
		--format 'value(networkInterfaces[0].networkIP)' >'$TUT_DIR/vmip'"
	VMIP=$(cat "$TUT_DIR/vmip" 2>/dev/null || true)
}

tut_vm_join() { # copy the files, run the script
	tcmd ssh_wait until_ok 300 ssh_ready
	# shellcheck disable=SC2086 # the file list is ours
	tcmd vm_scp scp "${SSHO[@]}" $1 "$TUT_DIR/gce-script.sh" "bench@$VMIP:"
	tcmd vm_bootstrap vm 'sh gce-script.sh'
}

tutorial_legacy() {
	local ob k8s istio
	ob=https://raw.githubusercontent.com/GoogleCloudPlatform/microservices-demo/$LEGACY_OB/release
	tut_common_start "$LEGACY_ISTIO"
	tcmd istio_render sh -c "'$TUT_DIR/istio-$LEGACY_ISTIO/bin/istioctl' manifest generate --set profile=demo \
		--set values.global.meshExpansion.enabled=true >'$TUT_DIR/istio.yaml'"
	tcmd istio_apply apply_twice "$TUT_DIR/istio.yaml"
	tcmd istio_wait kubectl wait --for=condition=Available --timeout=300s -n istio-system deployment --all
	k8s=$(mirror "$ob/kubernetes-manifests.yaml" || true)
	istio=$(mirror "$ob/istio-manifests.yaml" || true)
	tcmd label_namespace kubectl label namespace default istio-injection=enabled
	tcmd boutique_apply kubectl apply -f "$k8s"
	tcmd boutique_istio_apply kubectl apply -f "$istio"
	tut_vm
	tcmd cluster_env sh -c "printf 'ISTIO_SERVICE_CIDR=%s\nISTIO_INBOUND_PORTS=3550\nISTIO_CP_AUTH=MUTUAL_TLS\n' \
		\"\$(cut -f2 '$TUT_DIR/cidrs')\" >'$TUT_DIR/cluster.env'"
	tcmd vm_certificate make_vm_cert
	tcmd ingress_ip until_ok 300 has_lb_ip istio-system istio-ingressgateway
	GWIP=$(lb_ip istio-system istio-ingressgateway)
	tcmd hosts_file sh -c "echo '$GWIP istiod.istio-system.svc' >'$TUT_DIR/hosts'"
	tcmd gce_script write_gce_script legacy "$LEGACY_ISTIO" "$LEGACY_OB"
	tut_vm_join "$TUT_DIR/cluster.env $TUT_DIR/root-cert.pem $TUT_DIR/cert-chain.pem $TUT_DIR/key.pem $TUT_DIR/hosts"
	tcmd delete_deployment kubectl delete deployment productcatalogservice
	tcmd delete_service kubectl delete service productcatalogservice
	cat >"$TUT_DIR/add-to-mesh.yaml" <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: mesh-expansion-productcatalogservice, namespace: default}
spec:
  hosts: [productcatalogservice.default.svc.cluster.local]
  ports: [{number: 3550, protocol: GRPC, name: grpc-3550}]
  endpoints: [{address: $VMIP}]
  resolution: STATIC
  location: MESH_INTERNAL
---
apiVersion: v1
kind: Service
metadata:
  name: productcatalogservice
  namespace: default
  annotations: {kubernetes.io/service-account.name: default}
spec:
  ports: [{name: grpc-3550, port: 3550}]
EOF
	tcmd add_to_mesh kubectl apply -f "$TUT_DIR/add-to-mesh.yaml"
	tcmd vm_restart_istio vm 'sudo systemctl stop istio; sudo systemctl start istio'
	tcmd shop until_ok 300 shop_ok "$GWIP"
}

tutorial_current() {
	local ob k8s istio gwapi d=$TUT_DIR/istio-$CURRENT_ISTIO tok
	ob=https://raw.githubusercontent.com/GoogleCloudPlatform/microservices-demo/$CURRENT_OB/release
	tut_common_start "$CURRENT_ISTIO"
	tcmd istio_render sh -c "'$d/bin/istioctl' manifest generate --set profile=demo \
		--set values.global.meshID=mesh1 --set values.global.multiCluster.clusterName=west \
		--set values.global.network= >'$TUT_DIR/istio.yaml'"
	tcmd istio_apply apply_twice "$TUT_DIR/istio.yaml"
	tcmd eastwest_render sh -c "'$d/samples/multicluster/gen-eastwest-gateway.sh' --single-cluster |
		'$d/bin/istioctl' manifest generate -f - >'$TUT_DIR/eastwest.yaml'"
	tcmd eastwest_apply kubectl apply --server-side -f "$TUT_DIR/eastwest.yaml"
	tcmd expose_istiod kubectl apply -n istio-system -f "$d/samples/multicluster/expose-istiod.yaml"
	gwapi=$(mirror https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml) || true
	tcmd gateway_api_crds kubectl apply -f "$gwapi"
	tcmd kiali_addon kubectl apply -f "$d/samples/addons/kiali.yaml"
	tcmd istio_wait kubectl wait --for=condition=Available --timeout=300s -n istio-system deployment --all
	k8s=$(mirror "$ob/kubernetes-manifests.yaml" || true)
	istio=$(mirror "$ob/istio-manifests.yaml" || true)
	tcmd label_namespace kubectl label namespace default istio-injection=enabled
	tcmd boutique_apply kubectl apply -f "$k8s"
	tcmd gateway_api_established kubectl wait --for condition=established --timeout=60s \
		crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io
	tcmd boutique_istio_apply kubectl apply -f "$istio"
	tcmd delete_deployment kubectl delete deployment productcatalogservice
	tut_vm
	cat >"$TUT_DIR/workloadgroup.yaml" <<EOF
apiVersion: networking.istio.io/v1beta1
kind: WorkloadGroup
metadata: {name: productcatalogservice, namespace: default}
spec:
  metadata:
    labels: {app: productcatalogservice}
  template:
    serviceAccount: productcatalogservice
    network: ""
    ports: {grpc: 3550}
EOF
	tcmd workloadgroup_apply kubectl apply -f "$TUT_DIR/workloadgroup.yaml"
	tcmd eastwest_ip until_ok 300 has_lb_ip istio-system istio-eastwestgateway
	EWIP=$(lb_ip istio-system istio-eastwestgateway)
	# What `istioctl x workload entry configure` writes (the stand-in
	# istioctl does not do it; the tutorial's modern form would).
	tcmd token sh -c "kubectl create token productcatalogservice -n default --audience istio-ca \
		--duration 3600s >'$TUT_DIR/istio-token'"
	tcmd root_cert sh -c "cp '$TUT_DIR/certs/root-cert.pem' '$TUT_DIR/root-cert.pem'"
	tok='{"app":"productcatalogservice"}'
	cat >"$TUT_DIR/cluster.env" <<EOF
CANONICAL_REVISION='latest'
CANONICAL_SERVICE='productcatalogservice'
ISTIO_INBOUND_PORTS='3550'
ISTIO_LOCAL_EXCLUDE_PORTS='22,15090,15021,15020'
ISTIO_METAJSON_LABELS='$tok'
ISTIO_META_CLUSTER_ID='west'
ISTIO_META_DNS_CAPTURE='true'
ISTIO_META_MESH_ID='mesh1'
ISTIO_META_NETWORK=''
ISTIO_META_WORKLOAD_NAME='productcatalogservice'
ISTIO_NAMESPACE='default'
ISTIO_SERVICE='productcatalogservice.default'
ISTIO_SERVICE_CIDR='*'
POD_NAMESPACE='default'
SERVICE_ACCOUNT='productcatalogservice'
TRUST_DOMAIN='cluster.local'
EOF
	cat >"$TUT_DIR/mesh.yaml" <<EOF
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
  meshId: mesh1
  proxyMetadata:
    CANONICAL_REVISION: latest
    CANONICAL_SERVICE: productcatalogservice
    ISTIO_META_CLUSTER_ID: west
    ISTIO_META_MESH_ID: mesh1
    ISTIO_META_NETWORK: ""
    ISTIO_META_WORKLOAD_NAME: productcatalogservice
    POD_NAMESPACE: default
    SERVICE_ACCOUNT: productcatalogservice
    TRUST_DOMAIN: cluster.local
EOF
	tcmd hosts_file sh -c "echo '$EWIP istiod.istio-system.svc' >'$TUT_DIR/hosts'"
	cat >"$TUT_DIR/workloadentry.yaml" <<EOF
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: productcatalogservice-vm, namespace: default}
spec:
  address: $VMIP
  labels: {app: productcatalogservice}
  serviceAccount: productcatalogservice
  ports: {grpc: 3550}
EOF
	tcmd workloadentry_apply kubectl apply -f "$TUT_DIR/workloadentry.yaml"
	tcmd gce_script write_gce_script current "$CURRENT_ISTIO" "$CURRENT_OB"
	tut_vm_join "$TUT_DIR/cluster.env $TUT_DIR/mesh.yaml $TUT_DIR/root-cert.pem $TUT_DIR/istio-token $TUT_DIR/hosts"
	tcmd gateway_ip until_ok 300 has_lb_ip default istio-gateway-istio
	GWIP=$(lb_ip default istio-gateway-istio)
	tcmd shop until_ok 300 shop_ok "$GWIP"
}

# tutorial_half ROUND FLOW DIR: in a subshell, so its exports stay there.
tutorial_half() {
	local r=$1 fl=$2 dir=$3 t0 t1 st
	mkdir -p "$dir/tutorial"
	(
		TUT_R=$r TUT_FLOW=$fl TUT_DIR=$dir/tutorial TUT_LOG=$OUT/raw/tutorial-$fl-r$r.log
		TUT_OK=1 TUT_N=0 TUT_FAILED=-
		: >"$TUT_LOG"
		tut_prepare
		t0=$(now_ms)
		"tutorial_$fl" || true
		t1=$(now_ms)
		if [ "$TUT_OK" = 1 ]; then st=succeeded; else st=failed; fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$fl" "$st" $((t1 - t0)) "$TUT_N" "$TUT_FAILED" >>"$f_tut"
		if [ "$st" = succeeded ]; then
			say "[$fl r$r] tutorial, sequential: $TUT_N commands in $(secs $((t1 - t0))) s"
		else
			problem "[$fl r$r] the tutorial's sequence failed at '$TUT_FAILED' (raw/tutorial-$fl-r$r.log: $(tail -n 3 "$TUT_LOG" | tr '\n' ' ' | cut -c1-300))"
		fi
	)
}

# --- the rounds ------------------------------------------------------------------------

started=$(date +%s)
say "$("$BIN" version 2>&1 | head -n 1); $(nproc) cores; ROUNDS=$ROUNDS FLOWS=\"$FLOWS\" HALVES=\"$HALVES\" TIME_SCALE=$TIME_SCALE"
for r in $(seq 1 "$ROUNDS"); do
	for fl in $FLOWS; do
		dir=$tmp/r$r-$fl
		start_sandbox "$dir"
		SBDIR=$dir/sb
		OR_ENV=
		if want outrigger; then start_server "$dir"; fi
		# Alternate which half goes first, so drift and warm caches cancel.
		if [ $((r % 2)) = 1 ]; then order="outrigger tutorial"; else order="tutorial outrigger"; fi
		for h in $order; do
			want "$h" || continue
			if [ "$h" = outrigger ]; then
				outrigger_half "$r" "$fl" "$dir" || true
			else
				tutorial_half "$r" "$fl" "$dir"
			fi
		done
		if [ -n "$OR_ENV" ] && [ "$DESTROY" = 1 ]; then outrigger_destroy "$r" "$fl" "$OR_ENV" || true; fi
		alive "$SB_PID" || problem "[$fl r$r] the sandbox died (see raw/sandbox-$fl-r$r.log)"
		stop_pid "$SRV_PID" outrigger
		SRV_PID=
		stop_pid "$SB_PID" sandbox
		SB_PID=
		cp "$dir/sandbox.log" "$OUT/raw/sandbox-$fl-r$r.log" 2>/dev/null || true
		cp "$dir/server.log" "$OUT/raw/server-$fl-r$r.log" 2>/dev/null || true
		[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$dir"
	done
done

# --- table -------------------------------------------------------------------------------

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=
if [ -n "$(git -C "$root" status --porcelain -- server plugins include sandbox 2>/dev/null || true)" ]; then
	dirty=" +uncommitted changes"
fi
# ratio_of FLOW: median over the rounds of Outrigger wall / tutorial wall,
# each round's pair taken from the same sandbox.
ratio_seq() {
	awk -F'\t' -v fl="$1" '
	FILENAME == ARGV[1] && FNR > 1 && $2 == fl && $3 == "apply" && $4 == "succeeded" { o[$1] = $5 }
	FILENAME == ARGV[2] && FNR > 1 && $2 == fl && $3 == "succeeded" { t[$1] = $4 }
	END { for (r in o) if (r in t && t[r] > 0) printf "%.3f\n", o[r] / t[r] }' "$f_run" "$f_tut" | median
}
ok_apply() { awk -F'\t' -v fl="$1" -v a="$2" 'NR > 1 && $2 == fl && $3 == a && $4 == "succeeded"' "$f_run" | wc -l; }
ok_tut() { awk -F'\t' -v fl="$1" 'NR > 1 && $2 == fl && $3 == "succeeded"' "$f_tut" | wc -l; }

table=$OUT/table.md
{
	echo "# bench/rollout — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "ROUNDS=$ROUNDS FLOWS=\"$FLOWS\" HALVES=\"$HALVES\" TIME_SCALE=$TIME_SCALE SEED=$SEED; $(nproc) cores;" \
		"\`$("$BIN" version 2>&1 | head -n 1)\` (the tree: commit $commit$dirty); $(($(date +%s) - started)) s in all"
	echo
	echo "| flow | Outrigger wall s | critical path s | wall ÷ critical path | steps summed s | tutorial sequential s | Outrigger ÷ sequential | destroy wall s | runs ok |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
	for fl in $FLOWS; do
		echo "| $fl ($(blueprint_of "$fl")) | $(secs "$(col "$f_run" 5 2 "$fl" 3 apply 4 succeeded)") |" \
			"$(secs "$(col "$f_run" 7 2 "$fl" 3 apply 4 succeeded)") |" \
			"$(fmt "$(col "$f_run" 12 2 "$fl" 3 apply 4 succeeded)" '%.3f')× |" \
			"$(secs "$(col "$f_run" 8 2 "$fl" 3 apply 4 succeeded)") |" \
			"$(secs "$(col "$f_tut" 4 2 "$fl" 3 succeeded)") |" \
			"$(fmt "$(ratio_seq "$fl")" '%.3f')× |" \
			"$(secs "$(col "$f_run" 5 2 "$fl" 3 destroy 4 succeeded)") |" \
			"apply $(ok_apply "$fl" apply)/$ROUNDS, tutorial $(ok_tut "$fl")/$ROUNDS, destroy $(ok_apply "$fl" destroy)/$ROUNDS |"
	done
	echo
	echo "Medians over the rounds; each ratio is the median of the per-round ratios (the two halves of a round share one sandbox)." \
		"wall = the run's started_at→finished_at (the server's clock); critical path = the longest chain of the run's step graph" \
		"(\`after\`), weighted by each step's started_at→finished_at; steps summed = every step's duration added up." \
		"Tutorial sequential = first command to the shop answering 200 with the catalog, each command waiting for the one before."
	for fl in $FLOWS; do
		[ "$(ok_apply "$fl" apply)" -gt 0 ] || continue
		echo
		echo "**$fl: the critical path** (last round): \`$(awk -F'\t' -v fl="$fl" 'NR > 1 && $2 == fl && $3 == "apply" && $4 == "succeeded" { p = $15 } END { print p }' "$f_run")\`"
		echo
		echo "| step | median duration s | median start s | on the critical path |"
		echo "| --- | ---: | ---: | ---: |"
		awk -F'\t' -v fl="$fl" 'NR > 1 && $2 == fl && $3 == "apply" && !seen[$4]++ { print $4 }' "$f_steps" | while read -r s; do
			echo "| $s | $(secs "$(col "$f_steps" 8 2 "$fl" 3 apply 4 "$s")") | $(secs "$(col "$f_steps" 7 2 "$fl" 3 apply 4 "$s")") |" \
				"$(awk -F'\t' -v fl="$fl" -v s="$s" 'NR > 1 && $2 == fl && $3 == "apply" && $4 == s { n++; c += $9 } END { printf "%d of %d rounds", c, n }' "$f_steps") |"
		done
	done
	for fl in $FLOWS; do
		[ "$(awk -F'\t' -v fl="$fl" 'NR > 1 && $2 == fl' "$f_cmd" | wc -l)" -gt 0 ] || continue
		echo
		echo "**$fl: the tutorial's commands, one after another** (median ms over the rounds that ran them):"
		echo
		echo "| # | command | median ms |"
		echo "| ---: | --- | ---: |"
		awk -F'\t' -v fl="$fl" 'NR > 1 && $2 == fl && !seen[$4]++ { print $3 "\t" $4 }' "$f_cmd" | while IFS=$'\t' read -r n c; do
			echo "| $n | $c | $(fmt "$(col "$f_cmd" 5 2 "$fl" 4 "$c")" '%.0f') |"
		done
	done
	if [ -s "$tmp/problems" ]; then
		echo
		echo "RUN FAILED — $(wc -l <"$tmp/problems") problem(s):"
		sed 's/^/- /' "$tmp/problems"
	else
		echo
		echo "Every rollout reached the shop (products from the VM); every destroy left nothing recorded."
	fi
} >"$table"
echo
cat "$table"
echo
say "table in ${OUT#"$root"/}/table.md; per-round figures in ${OUT#"$root"/}/*.tsv; run JSON, logs and the tutorial's transcripts in ${OUT#"$root"/}/raw/"
[ -s "$tmp/problems" ] && exit 1
exit 0
