#!/usr/bin/env bash
# The sandbox's outside world for the mesh rollout, judged by real clients:
# downloads from its mirror (curl, sha256sum -c, tar, dpkg-deb), the
# istioctl stand-in's output applied by the real kubectl, a VM that installs
# the sidecar .deb with its real dpkg and runs the catalog through the
# docker stand-in (over ssh), the simulated istiod accepting and refusing
# identities, and the shop at the ingress IP: 503 naming each missing piece,
# then 200 with the products of this test's catalog once the mesh is wired
# by hand, as the tutorial does.
#
# As root the whole test runs in a fresh network namespace with only
# loopback.  Without root (no VMs, no port 80) the parts that need them are
# skipped, saying so.  Prints "mesh: N passed, N failed, N skipped".
# MESH_KEEP=1 keeps the scratch directory (sandbox logs, VM consoles).
set -u
cd "$(dirname "$0")/../.."
BIN=${OUTRIGGER_BIN:-build/outrigger}

if [ "$(id -u)" = 0 ] && [ -z "${OUTRIGGER_IN_NETNS:-}" ] && command -v unshare >/dev/null &&
	unshare --net true 2>/dev/null; then
	exec unshare --net env OUTRIGGER_IN_NETNS=1 bash -c 'ip link set lo up 2>/dev/null; exec "$0" "$@"' "$0" "$@"
fi

passed=0 failed=0 skipped=0
TW=$(mktemp -d /tmp/outrigger-mesh-XXXXXX)
SB_PID=
cleanup() {
	[ -n "$SB_PID" ] && kill "$SB_PID" 2>/dev/null && wait "$SB_PID" 2>/dev/null
	if [ -n "${MESH_KEEP:-}" ]; then echo "mesh: kept $TW"; else rm -rf "$TW"; fi
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "not ok $1"; shift; printf '  %s\n' "$@" >&2; }
skip() { skipped=$((skipped + 1)); echo "skip $1: $2"; }
done_() {
	echo "mesh: $passed passed, $failed failed, $skipped skipped"
	[ "$failed" = 0 ]
	exit $?
}

# check NAME EXPECTED_STATUS PATTERN -- command...
check() {
	local name=$1 want=$2 pattern=$3
	shift 4
	local out st
	out=$("$@" 2>&1)
	st=$?
	if [ "$st" = "$want" ] && { [ -z "$pattern" ] || printf '%s' "$out" | grep -Eq -- "$pattern"; }; then
		ok "$name"
	else
		fail "$name" "exit $st (want $want), output:" "$(printf '%s' "$out" | tail -n 25)"
	fi
}

# eventually NAME SECONDS PATTERN -- command...: retry until the output
# matches (the sandbox's controllers work after simulated delays).
eventually() {
	local name=$1 secs=$2 pattern=$3 out i
	shift 4
	for i in $(seq $((secs * 5))); do
		out=$("$@" 2>&1)
		if printf '%s' "$out" | grep -Eq -- "$pattern"; then
			ok "$name"
			return 0
		fi
		sleep 0.2
	done
	fail "$name" "never matched /$pattern/; last output:" "$(printf '%s' "$out" | tail -n 25)"
	return 1
}

for tool in curl tar sha256sum dpkg-deb openssl; do
	if ! command -v $tool >/dev/null; then
		echo "mesh: SKIP: $tool is not installed"
		echo "mesh: 0 passed, 0 failed, 1 skipped"
		exit 0
	fi
done

DISCOVERY=()
if [ -f ../shared/spec/compute-v1.json ]; then
	DISCOVERY=(--discovery ../shared/spec)
else
	echo "note: ../shared/spec is absent: requests are not checked against Google's discovery documents in this run"
fi

cat >"$TW/catalog.json" <<'EOF'
{"products": [
 {"id": "TST001", "name": "Test Kayak", "description": "for the test", "picture": "/k.jpg",
  "priceUsd": {"currencyCode": "USD", "units": 321, "nanos": 450000000}, "categories": ["water"]},
 {"id": "TST002", "name": "Test Paddle & Oar", "description": "for the test", "picture": "/p.jpg",
  "priceUsd": {"currencyCode": "USD", "units": 12, "nanos": 0}, "categories": []}
]}
EOF

# A bad catalog stops the start, naming the field.
printf '{"products": [{"id": "x", "name": "y", "description": "", "picture": "", "priceUsd": {"currencyCode": "USD", "units": "12"}, "categories": []}]}' >"$TW/bad.json"
check catalog_bad_refused 1 'products\[0\]\.priceUsd\.units must be an integer' -- \
	"$BIN" sandbox --listen 127.0.0.1:0 --dir "$TW/bad" --catalog "$TW/bad.json"
check catalog_missing_refused 1 'cannot open' -- \
	"$BIN" sandbox --listen 127.0.0.1:0 --dir "$TW/bad" --catalog "$TW/none.json"

"$BIN" sandbox --listen 127.0.0.1:0 --dir "$TW/sb" --time-scale 0.01 --seed 3 \
	--catalog "$TW/catalog.json" "${DISCOVERY[@]}" >"$TW/sb.out" 2>"$TW/sb.err" &
SB_PID=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$TW/sb.out" 2>/dev/null && break
	sleep 0.05
done
BASE=$(sed -n 's/.*listening on \(http[^ ]*\)\/ .*/\1/p' "$TW/sb.out")
if [ -z "$BASE" ]; then
	fail sandbox_starts "$(cat "$TW/sb.err")"
	done_
fi
ok sandbox_starts

# ---- the mirror ------------------------------------------------------------------
# mirror REAL_URL: the sandbox's URL for it, by the prefixes of endpoints.json.
mirror() {
	local real mine
	while IFS=$'\t' read -r real mine; do
		case "$1" in "$real"*) echo "$mine${1#"$real"}"; return 0 ;; esac
	done < <(sed -n 's/^ *"\(https:[^"]*\)": "\([^"]*\)",\{0,1\}$/\1\t\2/p' "$TW/sb/endpoints.json")
	echo "no-mirror-for:$1"
}

check endpoints_mirrors 0 '"https://github.com/istio/istio/releases/download/": "http://127' -- \
	cat "$TW/sb/endpoints.json"
mkdir -p "$TW/dl"
get() { (cd "$TW/dl" && curl -sSf -O "$1" && head -c 300 "${1##*/}"); }
for V in 1.6.5 1.24.0; do
	A=istio-$V-linux-amd64.tar.gz
	check "archive_$V" 0 '' -- get "$(mirror "https://github.com/istio/istio/releases/download/$V/$A")"
	check "archive_sha256_$V" 0 "^[0-9a-f]{64}  $A\$" -- \
		get "$(mirror "https://github.com/istio/istio/releases/download/$V/$A.sha256")"
	check "archive_sha256_verifies_$V" 0 "$A: OK" -- sh -c "cd '$TW/dl' && sha256sum -c $A.sha256"
	check "archive_lists_$V" 0 "istio-$V/bin/istioctl" -- tar tzf "$TW/dl/$A"
	tar xzf "$TW/dl/$A" -C "$TW/dl"
	check "istioctl_version_$V" 0 "^$V\$" -- "$TW/dl/istio-$V/bin/istioctl" version --remote=false
done
check archive_current_samples 0 'samples/multicluster/gen-eastwest-gateway.sh' -- tar tzf "$TW/dl/istio-1.24.0-linux-amd64.tar.gz"
check archive_current_expose 0 'samples/multicluster/expose-istiod.yaml' -- tar tzf "$TW/dl/istio-1.24.0-linux-amd64.tar.gz"
check archive_current_kiali 0 'samples/addons/kiali.yaml' -- tar tzf "$TW/dl/istio-1.24.0-linux-amd64.tar.gz"
check archive_legacy_no_samples 1 '' -- sh -c "tar tzf '$TW/dl/istio-1.6.5-linux-amd64.tar.gz' | grep -q samples/"
check archive_unknown_version 0 '^404$' -- curl -s -o /dev/null -w '%{http_code}' \
	"$(mirror https://github.com/istio/istio/releases/download/1.12.0/istio-1.12.0-linux-amd64.tar.gz)"
check archive_bad_name 0 '^404$' -- curl -s -o /dev/null -w '%{http_code}' \
	"$(mirror https://github.com/istio/istio/releases/download/1.24.0/istio-1.24.0-osx.tar.gz)"
check istioctl_refuses_others 1 'does not support' -- "$TW/dl/istio-1.24.0/bin/istioctl" install -y
check istioctl_no_meshexpansion_current 1 'removed in Istio 1.9' -- \
	"$TW/dl/istio-1.24.0/bin/istioctl" manifest generate --set values.global.meshExpansion.enabled=true

DEB_URL=$(mirror https://storage.googleapis.com/istio-release/releases/1.6.5/deb/istio-sidecar.deb)
check deb_download 0 '' -- get "$DEB_URL"
check deb_sha256 0 "^[0-9a-f]{64}  istio-sidecar.deb\$" -- get "$DEB_URL.sha256"
check deb_sha256_verifies 0 'istio-sidecar.deb: OK' -- sh -c "cd '$TW/dl' && sha256sum -c istio-sidecar.deb.sha256"
check deb_control 0 'Package: istio-sidecar' -- dpkg-deb -I "$TW/dl/istio-sidecar.deb"
check deb_contents 0 'lib/systemd/system/istio.service' -- dpkg-deb -c "$TW/dl/istio-sidecar.deb"
check deb_unknown_version 0 '^404$' -- curl -s -o /dev/null -w '%{http_code}' \
	"$(mirror https://storage.googleapis.com/istio-release/releases/1.9.0/deb/istio-sidecar.deb)"

OB=https://raw.githubusercontent.com/GoogleCloudPlatform/microservices-demo
check ob_legacy_istio 0 'name: frontend-gateway' -- curl -sSf "$(mirror $OB/v0.2.0/release/istio-manifests.yaml)"
check ob_legacy_images 0 'gcr.io/google-samples/microservices-demo/frontend:v0.2.0' -- \
	curl -sSf "$(mirror $OB/v0.2.0/release/kubernetes-manifests.yaml)"
check ob_current_istio 0 'name: frontend-route' -- curl -sSf "$(mirror $OB/v0.10.6/release/istio-manifests.yaml)"
check ob_unknown_tag 0 '^404$' -- curl -s -o /dev/null -w '%{http_code}' "$(mirror $OB/v9.9/release/istio-manifests.yaml)"
GWAPI=$(mirror https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml)
check gwapi_crds 0 'name: httproutes.gateway.networking.k8s.io' -- curl -sSf "$GWAPI"

if ! command -v gcloud >/dev/null || ! command -v kubectl >/dev/null; then
	skip cluster "gcloud or kubectl is not installed"
	done_
fi

# ---- a cluster, and the istioctl stand-in's output applied by kubectl ---------------
export HOME=$TW/home CLOUDSDK_CONFIG=$TW/gcloud KUBECONFIG=$TW/kubeconfig
export CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=$TW/sb/access-token
export CLOUDSDK_CORE_PROJECT=mesh-project CLOUDSDK_CORE_DISABLE_PROMPTS=1
export CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true
export GCE_METADATA_ROOT=127.0.0.1:9
export CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=$BASE/compute/v1/
export CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER=$BASE/
export CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE=$BASE/
mkdir -p "$HOME"

check cluster_create 0 'west' -- gcloud container clusters create west --zone us-west2-a \
	--machine-type n1-standard-2 --num-nodes 5 --enable-ip-alias
check get_credentials 0 '' -- gcloud container clusters get-credentials west --zone us-west2-a
PODCIDR=$(gcloud container clusters describe west --zone us-west2-a --format 'value(clusterIpv4Cidr)')
SVCCIDR=$(gcloud container clusters describe west --zone us-west2-a --format 'value(servicesIpv4Cidr)')

# The mesh CA, as Istio's tools/certs would make it (openssl).
C=$TW/certs
mkdir -p "$C"
mkcert() { # NAME SUBJ EXT [CA]: NAME-key.pem NAME.pem
	local n=$1 subj=$2 ext=$3 ca=${4:-}
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$C/$n-key.pem" \
		-out "$C/$n.csr" -subj "$subj" 2>/dev/null
	printf '%b' "$ext" >"$C/$n.ext"
	if [ -z "$ca" ]; then
		openssl x509 -req -in "$C/$n.csr" -signkey "$C/$n-key.pem" -out "$C/$n.pem" -days 30 \
			-extfile "$C/$n.ext" 2>/dev/null
	else
		openssl x509 -req -in "$C/$n.csr" -CA "$C/$ca.pem" -CAkey "$C/$ca-key.pem" -CAcreateserial \
			-out "$C/$n.pem" -days 30 -extfile "$C/$n.ext" 2>/dev/null
	fi
}
CAEXT='basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n'
mkcert root "/O=Istio/CN=Root CA" "$CAEXT"
mkcert ca "/O=Istio/CN=Intermediate CA" "${CAEXT}subjectAltName=DNS:istiod.istio-system.svc\n" root
mkcert other "/O=Elsewhere/CN=Root CA" "$CAEXT"
WLEXT='basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n'
mkcert vm "/O=Istio/CN=Workload" "${WLEXT}subjectAltName=URI:spiffe://cluster.local/ns/default/sa/default\n" ca
mkcert typo "/O=Juju org" "${WLEXT}subjectAltName=DNS:spiffee://cluster.local/vm/vmname\n" ca
mkcert self "/CN=self" "${WLEXT}subjectAltName=URI:spiffe://cluster.local/ns/default/sa/default\n"
cat "$C/ca.pem" "$C/root.pem" >"$C/cert-chain.pem"

check kubectl_ns 0 'created' -- kubectl create namespace istio-system
check kubectl_cacerts 0 'secret/cacerts created' -- kubectl create secret generic cacerts -n istio-system \
	--from-file=ca-cert.pem="$C/ca.pem" --from-file=ca-key.pem="$C/ca-key.pem" \
	--from-file=root-cert.pem="$C/root.pem" --from-file=cert-chain.pem="$C/cert-chain.pem"
I6=$TW/dl/istio-1.6.5/bin/istioctl
check istioctl_generate_legacy 0 'kind: CustomResourceDefinition' -- sh -c \
	"'$I6' manifest generate --set profile=demo --set values.global.meshExpansion.enabled=true > '$TW/istio.yaml' && cat '$TW/istio.yaml'"
# CRDs first, then the rest: kubectl finds kinds through discovery.
kubectl apply --server-side -f "$TW/istio.yaml" >/dev/null 2>&1
check istio_apply 0 'deployment.apps/istiod serverside-applied' -- kubectl apply --server-side -f "$TW/istio.yaml"
check istio_client_parse 0 '' -- kubectl apply --dry-run=client -f "$TW/istio.yaml"
eventually istiod_available 30 'istiod +1/1' -- kubectl get deploy -n istio-system istiod
eventually kiali_pod 30 'kiali-.*Running' -- kubectl get pods -n istio-system -l app=kiali
eventually ingress_ip 30 '^127\.30\.' -- kubectl get svc -n istio-system istio-ingressgateway \
	-o 'jsonpath={.status.loadBalancer.ingress[0].ip}'
GWIP=$(kubectl get svc -n istio-system istio-ingressgateway -o 'jsonpath={.status.loadBalancer.ingress[0].ip}')
check ingress_exposes_15012 0 '15012' -- kubectl get svc -n istio-system istio-ingressgateway -o 'jsonpath={.spec.ports[*].port}'
eventually root_published 30 'BEGIN CERTIFICATE' -- kubectl get cm -n default istio-ca-root-cert \
	-o 'jsonpath={.data.root-cert\.pem}'

# Online Boutique (the sandbox's own v0.2.0 manifests), with injection.
check label_default 0 'labeled' -- kubectl label namespace default istio-injection=enabled
check ob_apply 0 'deployment.apps/frontend created' -- kubectl apply -f "$(mirror $OB/v0.2.0/release/kubernetes-manifests.yaml)"
check ob_istio_apply 0 'gateway.networking.istio.io/frontend-gateway created' -- \
	kubectl apply -f "$(mirror $OB/v0.2.0/release/istio-manifests.yaml)"
eventually frontend_available 30 'frontend +1/1' -- kubectl get deploy frontend
eventually sidecar_injected 30 'istio-proxy' -- kubectl get pods -l app=frontend -o 'jsonpath={.items[*].spec.containers[*].name}'

if [ "$(id -u)" != 0 ]; then
	skip shop "the shop listens on port 80 and VMs need root"
	done_
fi

shop() { # PATH: status line, headers and body of GET http://GWIP/PATH
	curl -sS -m 10 -D - "http://$GWIP/${1:-}" 2>&1 | tr -d '\r'
}
eventually shop_catalog_endpoint 20 'x-sandbox-check: catalog-endpoint' -- shop
check shop_503_body 0 'upstream connect error or disconnect/reset before headers. reset reason: connection failure' -- shop
check shop_503_status 0 '^HTTP/1.1 503' -- shop
check shop_healthz 0 '^ok$' -- shop _healthz

# The VM: the tutorial's way (gcloud, ssh).
ssh-keygen -q -t ed25519 -N '' -C tester -f "$TW/key" </dev/null
printf 'tester:%s\n' "$(cat "$TW/key.pub")" >"$TW/ssh-keys"
check vm_create 0 'istio-gce' -- gcloud compute instances create istio-gce --zone us-west2-a \
	--machine-type n1-standard-2 --image-family ubuntu-2204-lts --image-project ubuntu-os-cloud \
	--tags istio-gce --metadata-from-file ssh-keys="$TW/ssh-keys"
VMIP=$(gcloud compute instances describe istio-gce --zone us-west2-a --format 'value(networkInterfaces[0].networkIP)')
SSHO=(-F /dev/null -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes
	-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -i "$TW/key")
vm() { ssh "${SSHO[@]}" "tester@$VMIP" "$@"; }
eventually vm_ssh 30 '^tester$' -- vm whoami
[ -n "${MESH_STOP_VM:-}" ] && done_

# add-to-mesh, by hand: the Service and ServiceEntry of Istio 1.6's istioctl.
kubectl delete deployment productcatalogservice >/dev/null 2>&1
kubectl delete service productcatalogservice >/dev/null 2>&1
cat >"$TW/add-to-mesh.yaml" <<EOF
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
check add_to_mesh 0 'serviceentry.networking.istio.io/mesh-expansion-productcatalogservice created' -- \
	kubectl apply -f "$TW/add-to-mesh.yaml"
eventually shop_firewall 20 'x-sandbox-check: firewall' -- shop
check firewall_wrong_port 0 '' -- gcloud compute firewall-rules create k8s-to-other \
	--source-ranges "$PODCIDR" --target-tags istio-gce --action ALLOW --rules tcp:80
check shop_still_firewall 0 'x-sandbox-check: firewall' -- shop
check firewall_create 0 '' -- gcloud compute firewall-rules create k8s-to-istio-gce \
	--source-ranges "$PODCIDR" --target-tags istio-gce --action ALLOW --rules tcp:3550
eventually shop_sidecar 20 'x-sandbox-check: sidecar' -- shop

# The VM joins the mesh: the legacy bootstrap, by hand.
printf 'ISTIO_SERVICE_CIDR=%s\nISTIO_INBOUND_PORTS=3550\nISTIO_CP_AUTH=MUTUAL_TLS\n' "$SVCCIDR" >"$TW/cluster.env"
cp "$C/root.pem" "$TW/root-cert.pem"
cat "$C/vm.pem" "$C/ca.pem" "$C/root.pem" >"$TW/cert-chain.pem"
cp "$C/vm-key.pem" "$TW/key.pem"
check vm_scp 0 '' -- scp "${SSHO[@]}" "$TW/cluster.env" "$TW/root-cert.pem" "$TW/cert-chain.pem" \
	"$TW/key.pem" "$C/other.pem" "$C/typo.pem" "$C/typo-key.pem" "$C/self.pem" "$C/self-key.pem" \
	"$C/ca.pem" "$C/root.pem" "tester@$VMIP:"
check vm_dpkg 0 'Setting up istio-sidecar' -- vm "curl -sSfLO '$DEB_URL' && sudo dpkg -i istio-sidecar.deb"
check vm_deb_user 0 'istio-proxy' -- vm 'getent passwd istio-proxy'
check vm_deb_files 0 'istio.service' -- vm 'ls /lib/systemd/system/istio.service /var/lib/istio/envoy/envoy_bootstrap_tmpl.json /var/lib/istio/envoy/sidecar.env /usr/local/bin/istio-start.sh'
check host_untouched 1 '' -- test -e /usr/local/bin/istio-start.sh
check vm_bootstrap 0 '' -- vm "sudo mkdir -p /etc/certs && sudo cp root-cert.pem cert-chain.pem key.pem /etc/certs/ &&
	sudo cp cluster.env /var/lib/istio/envoy/cluster.env &&
	echo '$GWIP istiod.istio-system.svc' | sudo tee -a /etc/hosts >/dev/null &&
	sudo chown -R istio-proxy /etc/certs /var/lib/istio/envoy && sudo systemctl restart istio"
eventually sidecar_connected 20 'connected' -- vm 'sudo journalctl -u istio'
eventually shop_catalog 20 'x-sandbox-check: catalog$' -- shop

check docker_needs_root 1 'permission denied' -- vm 'docker ps'
check docker_other_image 125 'runs only productcatalogservice' -- vm 'sudo docker run -d -p 80:80 nginx'
check docker_run 0 '^[0-9a-f]{64}$' -- vm 'sudo docker run -d --name productcatalogservice --restart=always -p 3550:3550 gcr.io/google-samples/microservices-demo/productcatalogservice:v0.2.0'
check docker_ps 0 'productcatalogservice' -- vm 'sudo docker ps'
check docker_conflict 125 'already in use' -- vm 'sudo docker run -d --name productcatalogservice -p 3551:3550 x/productcatalogservice:v1'
check catalog_over_ssh 0 'Test Kayak' -- vm "curl -sSf http://$VMIP:3550/products"

check shop_200 0 '^HTTP/1.1 200' -- shop
check shop_products 0 'Test Kayak</div><div class="hot-product-card-price">\$321\.45<' -- shop
check shop_escapes 0 'Test Paddle &amp; Oar' -- shop

# Each missing piece, once more, from the wired state.
check docker_rm 0 'productcatalogservice' -- vm 'sudo docker rm -f productcatalogservice'
eventually shop_catalog_down 10 'x-sandbox-check: catalog$' -- shop
vm 'sudo docker run -d --name productcatalogservice -p 3550:3550 gcr.io/google-samples/microservices-demo/productcatalogservice:v0.2.0' >/dev/null
eventually shop_back 10 '^HTTP/1.1 200' -- shop
check firewall_delete 0 '' -- gcloud compute firewall-rules delete k8s-to-istio-gce
eventually shop_firewall_again 20 'x-sandbox-check: firewall' -- shop
gcloud compute firewall-rules create k8s-to-istio-gce --source-ranges "$PODCIDR" \
	--target-tags istio-gce --action ALLOW --rules tcp:3550 >/dev/null 2>&1
eventually shop_back_again 20 '^HTTP/1.1 200' -- shop

# istiod refuses: a wrong root, the tutorial's spiffee DNS SAN, a
# self-signed certificate, a wrong services range.
restart_istio() { vm "sudo systemctl restart istio" >/dev/null 2>&1; }
vm "sudo cp other.pem /etc/certs/root-cert.pem" >/dev/null
restart_istio
eventually refused_wrong_root 20 'x-sandbox-reason: .*root-cert.pem is not the mesh root' -- shop
check wrong_root_logged 0 'does not verify with /etc/certs/root-cert.pem' -- vm 'sudo journalctl -u istio'
vm "sudo cp root-cert.pem /etc/certs/root-cert.pem && cat typo.pem ca.pem root.pem > typo-chain.pem &&
	sudo cp typo-chain.pem /etc/certs/cert-chain.pem && sudo cp typo-key.pem /etc/certs/key.pem" >/dev/null
restart_istio
eventually refused_spiffee 20 'x-sandbox-reason: .*no URI SAN spiffe://cluster.local/ns/.*DNS SAN spiffee://cluster.local/vm/vmname' -- shop
check spiffee_logged 0 'refused this proxy \(403\)' -- vm 'sudo journalctl -u istio'
vm "sudo cp self.pem /etc/certs/cert-chain.pem && sudo cp self-key.pem /etc/certs/key.pem" >/dev/null
restart_istio
eventually refused_self_signed 20 'x-sandbox-reason: .*does not verify against the mesh root' -- shop
vm "sudo cp cert-chain.pem key.pem /etc/certs/" >/dev/null
printf 'ISTIO_SERVICE_CIDR=10.99.0.0/20\nISTIO_INBOUND_PORTS=3550\n' >"$TW/bad.env"
scp "${SSHO[@]}" "$TW/bad.env" "tester@$VMIP:" >/dev/null 2>&1
vm "sudo cp bad.env /var/lib/istio/envoy/cluster.env" >/dev/null
restart_istio
eventually shop_wrong_cidr 20 'x-sandbox-reason: .*ISTIO_SERVICE_CIDR=10.99.0.0/20' -- shop
vm "sudo cp cluster.env /var/lib/istio/envoy/cluster.env" >/dev/null
restart_istio
eventually shop_rewired 20 '^HTTP/1.1 200' -- shop

# The token flow, straight at istiod (what the current sidecar sends).
kubectl create serviceaccount vm-sa >/dev/null 2>&1
istiod() { # EXTRA CURL ARGS: istiod's answer to a Connect from the VM's address
	curl -sS -m 10 --interface "$VMIP" --cacert "$C/root.pem" \
		--resolve "istiod.istio-system.svc:15012:$GWIP" -H "X-Outrigger-Vm-Ip: $VMIP" \
		--data-binary @"$TW/cluster.env" "$@" \
		https://istiod.istio-system.svc:15012/outrigger.sandbox.v1/Connect
}
TOKEN=$(kubectl create token vm-sa --audience istio-ca)
check istiod_token_ok 0 '"status":"connected".*spiffe://cluster.local/ns/default/sa/vm-sa' -- \
	istiod -H "Authorization: Bearer $TOKEN"
check istiod_token_audience 0 'audience is not istio-ca' -- \
	istiod -H "Authorization: Bearer $(kubectl create token vm-sa)"
check istiod_token_forged 0 'not issued by this cluster' -- \
	istiod -H "Authorization: Bearer ${TOKEN%.*}.AAAA"
check istiod_no_credentials 0 'no credentials' -- istiod
check istiod_spoofed_ip 0 'connects from' -- curl -sS -m 10 --cacert "$C/root.pem" \
	--resolve "istiod.istio-system.svc:15012:$GWIP" -H "X-Outrigger-Vm-Ip: $VMIP" \
	-H "Authorization: Bearer $TOKEN" --data-binary @"$TW/cluster.env" \
	https://istiod.istio-system.svc:15012/outrigger.sandbox.v1/Connect
check istiod_wrong_root 60 '' -- curl -sS -m 10 --cacert "$C/other.pem" \
	--resolve "istiod.istio-system.svc:15012:$GWIP" https://istiod.istio-system.svc:15012/
kubectl delete serviceaccount vm-sa >/dev/null 2>&1
check istiod_token_sa_gone 0 'no longer exists' -- istiod -H "Authorization: Bearer $TOKEN"
# Put the VM's own (certificate) connection back.
restart_istio
eventually shop_after_tokens 20 '^HTTP/1.1 200' -- shop

# ---- the current flow: Gateway API, the <gateway>-istio Service ---------------------
check gwapi_apply 0 'customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io' -- \
	kubectl apply -f "$GWAPI"
check ob_current_gateway 0 'gateway.gateway.networking.k8s.io/istio-gateway created' -- \
	kubectl apply -f "$(mirror $OB/v0.10.6/release/istio-manifests.yaml)"
eventually gateway_service 30 '^127\.30\.' -- kubectl get svc istio-gateway-istio \
	-o 'jsonpath={.status.loadBalancer.ingress[0].ip}'
eventually gateway_programmed 30 'True' -- kubectl get gateway.gateway.networking.k8s.io istio-gateway \
	-o 'jsonpath={.status.conditions[?(@.type=="Programmed")].status}'
GW2=$(kubectl get svc istio-gateway-istio -o 'jsonpath={.status.loadBalancer.ingress[0].ip}')
eventually shop_via_gateway_api 20 'Test Kayak' -- curl -sS -m 10 "http://$GW2/"
kubectl delete gateway.gateway.networking.k8s.io istio-gateway >/dev/null 2>&1
eventually gateway_children_gone 30 'NotFound' -- kubectl get svc istio-gateway-istio
eventually gateway_listener_closed 30 'Failed to connect|Connection refused|Couldn.t connect' -- \
	curl -sS -m 3 "http://$GW2/"

# The east-west gateway of the current flow renders, applies and reaches istiod.
I24=$TW/dl/istio-1.24.0/bin/istioctl
check eastwest_generate 0 'name: istio-eastwestgateway' -- sh -c \
	"'$TW/dl/istio-1.24.0/samples/multicluster/gen-eastwest-gateway.sh' --single-cluster | '$I24' manifest generate -f - > '$TW/ew.yaml' && cat '$TW/ew.yaml'"
check eastwest_apply 0 'service/istio-eastwestgateway serverside-applied' -- kubectl apply --server-side -f "$TW/ew.yaml"
eventually eastwest_ip 30 '^127\.30\.' -- kubectl get svc -n istio-system istio-eastwestgateway \
	-o 'jsonpath={.status.loadBalancer.ingress[0].ip}'
EWIP=$(kubectl get svc -n istio-system istio-eastwestgateway -o 'jsonpath={.status.loadBalancer.ingress[0].ip}')
TOKEN=$(kubectl create token default --audience istio-ca)
ew() {
	curl -sS -m 10 --interface "$VMIP" --cacert "$C/root.pem" \
		--resolve "istiod.istio-system.svc:15012:$EWIP" -H "X-Outrigger-Vm-Ip: $VMIP" \
		-H "Authorization: Bearer $TOKEN" --data-binary @"$TW/cluster.env" \
		https://istiod.istio-system.svc:15012/outrigger.sandbox.v1/Connect
}
eventually eastwest_without_expose 20 'curl: \(35\)|curl: \(56\)|reset|closed' -- ew
check eastwest_refusal_recorded 0 'x-sandbox-reason: .*no Istio Gateway selecting istio-system/istio-eastwestgateway' -- shop
check expose_istiod 0 'gateway.networking.istio.io/istiod-gateway created' -- \
	kubectl apply -n istio-system -f "$TW/dl/istio-1.24.0/samples/multicluster/expose-istiod.yaml"
check kiali_sample 0 'service/kiali' -- kubectl apply --dry-run=client -f "$TW/dl/istio-1.24.0/samples/addons/kiali.yaml"
eventually istiod_via_eastwest 20 '"status":"connected"' -- ew

# ---- the VM and cluster go, and so do their listeners --------------------------------
check vm_delete 0 '' -- gcloud compute instances delete istio-gce --zone us-west2-a
check cluster_delete 0 '' -- gcloud container clusters delete west --zone us-west2-a
eventually shop_closed 30 'Failed to connect|Connection refused|Couldn.t connect' -- curl -sS -m 3 "http://$GWIP/"
check secrets_not_logged 1 '' -- grep -F "$TOKEN" "$TW/sb.err"

kill "$SB_PID" && wait "$SB_PID"
st=$?
SB_PID=
if [ "$st" = 0 ]; then ok sandbox_stops_cleanly; else fail sandbox_stops_cleanly "exit $st" "$(tail -n 20 "$TW/sb.err")"; fi
done_
