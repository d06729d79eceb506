#!/usr/bin/env bash
# The sandbox judged by a client nobody here wrote: the real gcloud CLI runs
# the tutorial's Compute Engine commands against `outrigger sandbox`.
#
# As root, the whole test runs in a fresh network namespace with only
# loopback, so neither gcloud nor the sandbox can reach anything else.
# Prints "gcloud: N passed, N failed" (and skipped); exits non-zero on a
# failure.
set -u
cd "$(dirname "$0")/../.."
BIN=${OUTRIGGER_BIN:-build/outrigger}

if ! command -v gcloud >/dev/null 2>&1; then
	echo "gcloud: SKIP: the gcloud CLI is not installed on this machine"
	echo "gcloud: 0 passed, 0 failed, 1 skipped"
	exit 0
fi
if [ "$(id -u)" = 0 ] && [ -z "${OUTRIGGER_IN_NETNS:-}" ] && command -v unshare >/dev/null &&
	unshare --net true 2>/dev/null; then
	exec unshare --net env OUTRIGGER_IN_NETNS=1 bash -c 'ip link set lo up 2>/dev/null; exec "$0" "$@"' "$0" "$@"
fi

passed=0 failed=0
TW=$(mktemp -d /tmp/outrigger-gcloud-XXXXXX)
SB_PID=
cleanup() {
	[ -n "$SB_PID" ] && kill "$SB_PID" 2>/dev/null && wait "$SB_PID" 2>/dev/null
	rm -rf "$TW"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "not ok $1"; shift; printf '  %s\n' "$@" >&2; }

# check NAME EXPECTED_STATUS PATTERN -- command...: the exit status and a
# regular expression the output must match.
check() {
	local name=$1 want=$2 pattern=$3
	shift 4
	local out st
	out=$("$@" 2>&1)
	st=$?
	if [ "$st" = "$want" ] && printf '%s' "$out" | grep -Eq -- "$pattern"; then
		ok "$name"
	else
		fail "$name" "exit $st (want $want), output:" "$out"
	fi
}

start_sandbox() {
	"$BIN" sandbox --listen 127.0.0.1:0 --dir "$TW/sb" --time-scale 0.02 --seed 7 \
		>"$TW/sb.out" 2>>"$TW/sb.err" &
	SB_PID=$!
	for _ in $(seq 100); do
		grep -q 'listening on' "$TW/sb.out" 2>/dev/null && break
		sleep 0.05
	done
	BASE=$(sed -n 's/.*listening on \(http[^ ]*\)\/ .*/\1/p' "$TW/sb.out")
	export CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=$BASE/compute/v1/
}

stop_sandbox() {
	kill "$SB_PID" && wait "$SB_PID"
	local st=$?
	SB_PID=
	return $st
}

export HOME=$TW/home CLOUDSDK_CONFIG=$TW/gcloud
export CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=$TW/sb/access-token
export CLOUDSDK_CORE_PROJECT=tutorial-project CLOUDSDK_CORE_DISABLE_PROMPTS=1
export CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true
# gcloud looks for a metadata server to detect Compute Engine: point it at a
# closed loopback port (testworld.md 1.1).
export GCE_METADATA_ROOT=127.0.0.1:9
mkdir -p "$HOME"

start_sandbox
if [ -z "$BASE" ]; then
	fail sandbox_starts "$(cat "$TW/sb.err")"
	echo "gcloud: $passed passed, $failed failed"
	exit 1
fi
ok sandbox_starts

check endpoints_file 0 '"compute": "http://127.0.0.1:[0-9]+/compute/v1/"' -- cat "$TW/sb/endpoints.json"

# The tutorial's VM (image family changed: 16.04 is gone; see the blueprint).
check instance_create 0 'istio-gce +us-west2-a +n1-standard-2 .*127\.10\.[0-9]+\.[0-9]+ +127\.10\.[0-9]+\.[0-9]+ +RUNNING' -- \
	gcloud compute instances create istio-gce --zone us-west2-a --machine-type n1-standard-2 \
	--image-family ubuntu-2204-lts --image-project ubuntu-os-cloud --tags istio-gce \
	--metadata enable-oslogin=FALSE
check instance_describe 0 '^RUNNING	127\.10\.' -- \
	gcloud compute instances describe istio-gce --zone us-west2-a \
	--format 'value(status,networkInterfaces[0].networkIP)'
check instance_duplicate 1 "already exists" -- \
	gcloud compute instances create istio-gce --zone us-west2-a --machine-type n1-standard-2 \
	--image-family ubuntu-2204-lts --image-project ubuntu-os-cloud
check instance_bad_image 1 "was not found" -- \
	gcloud compute instances create vm2 --zone us-west2-a --machine-type n1-standard-2 \
	--image-family no-such-family --image-project ubuntu-os-cloud
check instance_list 0 'istio-gce' -- gcloud compute instances list --zones us-west2-a
check metadata_set 0 '' -- \
	gcloud compute instances add-metadata istio-gce --zone us-west2-a --metadata team=mesh
check metadata_seen 0 'team' -- \
	gcloud compute instances describe istio-gce --zone us-west2-a --format 'value(metadata.items[].key)'

check firewall_create 0 'k8s-to-istio-gce +default +INGRESS +1000 +tcp:3550' -- \
	gcloud compute firewall-rules create k8s-to-istio-gce --source-ranges 10.8.0.0/14 \
	--target-tags istio-gce --action ALLOW --rules tcp:3550
check firewall_describe 0 '^k8s-to-istio-gce	10\.8\.0\.0/14	istio-gce' -- \
	gcloud compute firewall-rules describe k8s-to-istio-gce --format 'value(name,sourceRanges,targetTags)'
check firewall_duplicate 1 "already exists" -- \
	gcloud compute firewall-rules create k8s-to-istio-gce --source-ranges 10.8.0.0/14 \
	--target-tags istio-gce --action ALLOW --rules tcp:3550

# State survives a restart of the sandbox.
if stop_sandbox; then ok sandbox_stops_cleanly; else fail sandbox_stops_cleanly "non-zero exit"; fi
start_sandbox
check state_survives_restart 0 '^RUNNING' -- \
	gcloud compute instances describe istio-gce --zone us-west2-a --format 'value(status)'

# Injected faults come back in Google's shape, as many times as asked.
check fault_inject 0 '"faults": ?1' -- \
	curl -sS -X POST -H 'Content-Type: application/json' \
	-d '{"match":"^GET /compute/v1/projects/[^/]+/global/firewalls/","status":503,"rate":1,"count":1}' \
	"$BASE/admin/faults"
check fault_answered 1 'Injected by the sandbox' -- \
	gcloud compute firewall-rules describe k8s-to-istio-gce --format 'value(name)'
check fault_used_up 0 'k8s-to-istio-gce' -- \
	gcloud compute firewall-rules describe k8s-to-istio-gce --format 'value(name)'
check fault_logged 0 '"status": ?503' -- curl -sS "$BASE/admin/requests"
check fault_quota 0 '"faults": ?2' -- \
	curl -sS -X POST -H 'Content-Type: application/json' \
	-d '{"match":"^POST /compute/v1/projects/[^/]+/zones/[^/]+/instances$","status":403,"reason":"quotaExceeded","message":"Quota '"'"'CPUS'"'"' exceeded. Limit: 8.0 in region us-west2.","count":1}' \
	"$BASE/admin/faults"
check quota_message 1 "Quota 'CPUS' exceeded. Limit: 8.0 in region us-west2." -- \
	gcloud compute instances create vm3 --zone us-west2-a --machine-type n1-standard-2 \
	--image-family ubuntu-2204-lts --image-project ubuntu-os-cloud
check faults_cleared 0 '"faults": ?0' -- curl -sS -X DELETE "$BASE/admin/faults"

printf 'not-a-token' >"$TW/bad-token"
check bad_token 1 'invalid authentication credentials' -- \
	env CLOUDSDK_AUTH_ACCESS_TOKEN_FILE="$TW/bad-token" \
	gcloud compute instances describe istio-gce --zone us-west2-a

check instance_delete 0 'Deleted' -- gcloud compute instances delete istio-gce --zone us-west2-a
check instance_gone 1 'was not found' -- gcloud compute instances describe istio-gce --zone us-west2-a
check firewall_delete 0 'Deleted' -- gcloud compute firewall-rules delete k8s-to-istio-gce
check firewall_gone 1 'was not found' -- gcloud compute firewall-rules describe k8s-to-istio-gce

echo "gcloud: $passed passed, $failed failed"
[ "$failed" = 0 ]
