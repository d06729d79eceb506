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

passed=0 failed=0 skipped=0
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
# regular expression the output must match ("" checks the status only).
check() {
	local name=$1 want=$2 pattern=$3
	shift 4
	local out st
	out=$("$@" 2>&1)
	st=$?
	if [ "$st" = "$want" ] && { [ -z "$pattern" ] || printf '%s' "$out" | grep -Eq -- "$pattern"; }; then
		ok "$name"
	else
		fail "$name" "exit $st (want $want), output:" "$out"
	fi
}

# Every request is checked against Google's discovery documents when they
# are here (../shared/spec; a user's clone has none).
DISCOVERY=()
for d in ../shared/spec; do
	[ -f "$d/compute-v1.json" ] && DISCOVERY=(--discovery "$d") && break
done

start_sandbox() {
	"$BIN" sandbox --listen 127.0.0.1:0 --dir "$TW/sb" --time-scale 0.02 --seed 7 \
		"${DISCOVERY[@]}" >"$TW/sb.out" 2>>"$TW/sb.err" &
	SB_PID=$!
	for _ in $(seq 100); do
		grep -q 'listening on' "$TW/sb.out" 2>/dev/null && break
		sleep 0.05
	done
	BASE=$(sed -n 's/.*listening on \(http[^ ]*\)\/ .*/\1/p' "$TW/sb.out")
	export CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=$BASE/compute/v1/
	export CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER=$BASE/
	export CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE=$BASE/
}

stop_sandbox() {
	kill "$SB_PID" && wait "$SB_PID"
	local st=$?
	SB_PID=
	return $st
}

export HOME=$TW/home CLOUDSDK_CONFIG=$TW/gcloud KUBECONFIG=$TW/kubeconfig
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
if [ ${#DISCOVERY[@]} -gt 0 ]; then
	check discovery_on 0 'checked against [0-9]+ methods' -- cat "$TW/sb.err"
	# A field Google does not know is refused, naming it.
	check discovery_refuses 0 '"code": ?400.*Unknown name \\"canIpFrward\\"' -- \
		curl -sS -X POST -H "Authorization: Bearer $(cat "$TW/sb/access-token")" \
		-H 'Content-Type: application/json' -d '{"name":"x","machineType":"zones/us-west2-a/machineTypes/n1-standard-2","canIpFrward":true}' \
		"$BASE/compute/v1/projects/tutorial-project/zones/us-west2-a/instances"
else
	echo "skip discovery: ../shared/spec (Google's discovery documents) is not here"
	skipped=$((skipped + 1))
fi

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

# The VM is real: an sshd on the instance's address, accepting the users
# and keys of its ssh-keys metadata, with passwordless sudo, in a view of
# the system of its own.
if grep -q 'instances will have no VM' "$TW/sb.err"; then
	echo "skip vm_ssh: $(grep -o 'instances will have no VM.*' "$TW/sb.err" | head -n 1)"
	skipped=$((skipped + 1))
else
	ssh-keygen -q -t ed25519 -N '' -C alice -f "$TW/alice" </dev/null
	printf 'alice:%s\n' "$(cat "$TW/alice.pub")" >"$TW/ssh-keys"
	check vm_create 0 'vm-ssh .*RUNNING' -- \
		gcloud compute instances create vm-ssh --zone us-west2-a --machine-type n1-standard-2 \
		--image-family ubuntu-2204-lts --image-project ubuntu-os-cloud \
		--metadata-from-file ssh-keys="$TW/ssh-keys"
	VMIP=$(gcloud compute instances describe vm-ssh --zone us-west2-a \
		--format 'value(networkInterfaces[0].networkIP)' 2>/dev/null)
	SSH="ssh -F /dev/null -o UserKnownHostsFile=$TW/known_hosts -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=5 -i $TW/alice"
	for _ in $(seq 50); do
		$SSH "alice@$VMIP" true 2>/dev/null && break
		sleep 0.1
	done
	check vm_ssh 0 '^alice
vm-ssh
0$' -- $SSH "alice@$VMIP" 'id -un; hostname; sudo -n id -u'
	printf 'hosts-before\n' >"$TW/marker"
	check vm_scp 0 '' -- scp -F /dev/null -o UserKnownHostsFile="$TW/known_hosts" -o IdentitiesOnly=yes \
		-o BatchMode=yes -i "$TW/alice" "$TW/marker" "alice@$VMIP:/tmp/marker"
	check vm_scp_read_back 0 '^hosts-before$' -- $SSH "alice@$VMIP" 'cat /tmp/marker'
	host_hosts=$(md5sum </etc/hosts)
	check vm_own_etc 0 '' -- $SSH "alice@$VMIP" \
		'echo "10.0.0.1 istiod.istio-system.svc" | sudo tee -a /etc/hosts >/dev/null && sudo mkdir -p /etc/certs'
	check vm_host_unchanged 0 'unchanged' -- \
		sh -c "[ \"\$(md5sum </etc/hosts)\" = '$host_hosts' ] && [ ! -e /etc/certs ] && echo unchanged"
	check vm_other_key_refused 255 '' -- ssh -F /dev/null -o UserKnownHostsFile="$TW/known_hosts" \
		-o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=5 -i "$TW/alice" "bob@$VMIP" true
	check vm_delete 0 'Deleted' -- gcloud compute instances delete vm-ssh --zone us-west2-a
	check vm_gone 255 '' -- $SSH "alice@$VMIP" true
fi

# GKE: the tutorial's cluster, then kubectl through the kubeconfig gcloud
# writes (TLS with the cluster's CA, the token from gke-gcloud-auth-plugin).
check cluster_create 0 'west +us-west2-a +1\.[0-9.]+-gke\.[0-9]+ +127\.20\.[0-9]+\.1(:[0-9]+)? +n1-standard-2 .* 5 +RUNNING' -- \
	gcloud container clusters create west --zone us-west2-a --machine-type n1-standard-2 \
	--num-nodes 5 --disk-size 100 --network default --enable-ip-alias
check cluster_describe 0 '^RUNNING	10\.[0-9]+\.0\.0/14	10\.[0-9]+\.0\.0/20	127\.20\.' -- \
	gcloud container clusters describe west --zone us-west2-a \
	--format 'value(status,clusterIpv4Cidr,servicesIpv4Cidr,endpoint)'
check cluster_image_cos_refused 1 'Setting image type COS is not supported' -- \
	gcloud container clusters create east --zone us-west2-a --image-type COS
check cluster_version_refused 1 'Master version "1.5" is unsupported' -- \
	gcloud container clusters create east --zone us-west2-a --cluster-version 1.5
check cluster_list 0 'west' -- gcloud container clusters list
check get_credentials 0 'kubeconfig entry generated for west' -- \
	gcloud container clusters get-credentials west --zone us-west2-a
check kubectl_get_ns 0 'kube-system +Active' -- kubectl get ns
check kubectl_create_ns 0 'namespace/istio-system created' -- kubectl create namespace istio-system
printf 'root-cert' >"$TW/root-cert.pem"
check kubectl_secret 0 'secret/cacerts created' -- \
	kubectl create secret generic cacerts -n istio-system --from-file="$TW/root-cert.pem"
check kubectl_label 0 'namespace/default labeled' -- kubectl label namespace default istio-injection=enabled
FIX=""
for d in ../shared/fixtures/online-boutique; do
	[ -d "$d" ] && FIX=$d && break
done
if [ -n "$FIX" ]; then
	for v in v0.2.0 v0.10.6; do
		check "kubectl_apply_$v" 0 'deployment.apps/frontend (created|configured)' -- \
			kubectl apply -f "$FIX/$v/kubernetes-manifests.yaml"
	done
	check kubectl_apply_unchanged 0 'deployment.apps/frontend unchanged' -- \
		kubectl apply -f "$FIX/v0.10.6/kubernetes-manifests.yaml"
	check kubectl_apply_server_side 0 'deployment.apps/frontend serverside-applied' -- \
		kubectl apply --server-side -f "$FIX/v0.10.6/kubernetes-manifests.yaml"
	check kubectl_wait 0 'condition met' -- \
		kubectl wait --for=condition=Available deployment/frontend --timeout=60s
	check kubectl_get_pods 0 'frontend-[a-z0-9-]+ +1/1 +Running' -- kubectl get pods
	lbip=""
	for _ in $(seq 100); do
		lbip=$(kubectl get svc frontend-external -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null)
		[ -n "$lbip" ] && break
		sleep 0.1
	done
	check kubectl_lb_ip 0 '^127\.30\.[0-9]+\.[0-9]+$' -- echo "$lbip"
	check kubectl_delete 0 'deployment.apps "frontend" deleted' -- \
		kubectl delete -f "$FIX/v0.10.6/kubernetes-manifests.yaml"
else
	echo "skip kubectl_apply: ../shared/fixtures (the upstream Online Boutique manifests) is not here"
	skipped=$((skipped + 1))
fi
check kubectl_bad_token 1 'Unauthorized' -- kubectl get ns --token not-a-token

check instance_delete 0 'Deleted' -- gcloud compute instances delete istio-gce --zone us-west2-a
check instance_gone 1 'was not found' -- gcloud compute instances describe istio-gce --zone us-west2-a
check firewall_delete 0 'Deleted' -- gcloud compute firewall-rules delete k8s-to-istio-gce
check firewall_gone 1 'was not found' -- gcloud compute firewall-rules describe k8s-to-istio-gce

# A restart keeps the cluster, and its Kubernetes API comes back.
if stop_sandbox; then ok sandbox_stops_with_cluster; else fail sandbox_stops_with_cluster "non-zero exit"; fi
start_sandbox
gcloud container clusters get-credentials west --zone us-west2-a >/dev/null 2>&1
check cluster_api_after_restart 0 'istio-system +Active' -- kubectl get ns
check cluster_delete 0 'Deleted' -- gcloud container clusters delete west --zone us-west2-a
check cluster_gone 1 'No cluster named|Not found' -- gcloud container clusters describe west --zone us-west2-a

if [ "$skipped" -gt 0 ]; then
	echo "gcloud: $passed passed, $failed failed, $skipped skipped"
else
	echo "gcloud: $passed passed, $failed failed"
fi
[ "$failed" = 0 ]
