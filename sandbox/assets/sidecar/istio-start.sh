#!/bin/sh
# istio-start.sh, as the Outrigger sandbox's istio-sidecar.deb ships it.
#
# A stand-in for Istio's sidecar (pilot-agent + Envoy), not Istio.  Like the
# real script it reads /var/lib/istio/envoy/sidecar.env and cluster.env,
# finds istiod at istiod.istio-system.svc:15012 (mesh config's
# discoveryAddress, PILOT_ADDRESS or CA_ADDR when set) through /etc/hosts,
# and authenticates to it: with the token in
# /var/run/secrets/tokens/istio-token when there is one, else with the
# certificate chain and key in /etc/certs.  It checks istiod's certificate
# against /etc/certs/root-cert.pem, as pilot-agent does.  What it cannot do:
# Envoy, iptables, xDS.  It tells the sandbox's istiod who it is (over
# HTTPS, not gRPC: docs/sandbox.md) and stays up while accepted; refused, it
# logs why and exits non-zero, so `systemctl status istio` shows it failed.
set -u

LOG_DIR=/var/log/istio
mkdir -p "$LOG_DIR" 2>/dev/null
log() { echo "$(date -u '+%Y-%m-%dT%H:%M:%S.000000Z')	$*"; }
fail() {
	log "error	$*" >&2
	exit 1
}

if [ "${1:-}" = clean ]; then
	exit 0
fi

ENVOY_DIR=/var/lib/istio/envoy
set -a
[ -r "$ENVOY_DIR/sidecar.env" ] && . "$ENVOY_DIR/sidecar.env"
[ -r "$ENVOY_DIR/cluster.env" ] && . "$ENVOY_DIR/cluster.env"
set +a
[ -r "$ENVOY_DIR/cluster.env" ] || fail "missing $ENVOY_DIR/cluster.env"

ISTIO_SYSTEM_NAMESPACE=${ISTIO_SYSTEM_NAMESPACE:-istio-system}
ISTIO_PILOT_PORT=${ISTIO_PILOT_PORT:-15012}
ADDR=
if [ -r /etc/istio/config/mesh ]; then
	ADDR=$(sed -n 's/^ *discoveryAddress: *"*\([^" ]*\)"*.*/\1/p' /etc/istio/config/mesh | head -n 1)
fi
ADDR=${CA_ADDR:-${PILOT_ADDRESS:-${ADDR:-istiod.$ISTIO_SYSTEM_NAMESPACE.svc:$ISTIO_PILOT_PORT}}}
HOST=${ADDR%:*}
PORT=${ADDR##*:}

# The VM's own address: ISTIO_SVC_IP, else what its hostname resolves to
# (a sandbox VM shares this machine's interfaces, so `hostname -I` would not do).
VM_IP=${ISTIO_SVC_IP:-$(getent hosts "$(hostname)" | awk '{ print $1; exit }')}
[ -n "$VM_IP" ] || fail "cannot find this VM's address (set ISTIO_SVC_IP)"

IP=$(getent hosts "$HOST" | awk '{ print $1; exit }')
[ -n "$IP" ] || fail "dial tcp: lookup $HOST: no such host"

TOKEN_FILE=/var/run/secrets/tokens/istio-token
CERTS=${PROV_CERT:-/etc/certs}
ROOT=$CERTS/root-cert.pem
[ -r "$ROOT" ] || fail "failed to read the root certificate $ROOT"
set --
if [ -s "$TOKEN_FILE" ]; then
	log "info	using the JWT in $TOKEN_FILE to authenticate with the control plane"
	# The header from a file: a token on curl's command line would show in ps.
	HDR=/run/istio-sidecar/authorization
	(umask 077 && mkdir -p /run/istio-sidecar &&
		printf 'Authorization: Bearer %s\n' "$(cat "$TOKEN_FILE")" >"$HDR") ||
		fail "cannot write $HDR"
	set -- -H "@$HDR"
elif [ -r "$CERTS/key.pem" ] && [ -r "$CERTS/cert-chain.pem" ]; then
	log "info	using existing certificate $CERTS"
	set -- --cert "$CERTS/cert-chain.pem" --key "$CERTS/key.pem"
else
	fail "Missing JWT, can't authenticate with control plane"
fi

connect() {
	curl -sS --max-time 20 --interface "$VM_IP" --cacert "$ROOT" \
		--resolve "$HOST:$PORT:$IP" -H 'Content-Type: text/plain' \
		-H "X-Outrigger-Vm-Ip: $VM_IP" "$@" --data-binary "@$ENVOY_DIR/cluster.env" \
		-w '\n%{http_code}' "https://$HOST:$PORT/outrigger.sandbox.v1/Connect" 2>&1
}

log "info	connecting to $HOST:$PORT ($IP) from $VM_IP"
OUT=$(connect "$@")
RC=$?
CODE=$(printf '%s\n' "$OUT" | tail -n 1)
BODY=$(printf '%s\n' "$OUT" | sed '$d')
case "$RC:$CODE" in
0:200) log "info	$BODY" ;;
60:* | 35:*) fail "connection to $HOST:$PORT failed: istiod's certificate does not verify with $ROOT: $OUT" ;;
0:*) fail "istiod refused this proxy ($CODE): $BODY" ;;
*) fail "dial tcp $IP:$PORT: connection failed: $OUT" ;;
esac

# Connected: stay up like pilot-agent does, checking in now and then.
while :; do
	sleep 30
	OUT=$(connect "$@")
	RC=$?
	CODE=$(printf '%s\n' "$OUT" | tail -n 1)
	BODY=$(printf '%s\n' "$OUT" | sed '$d')
	case "$RC:$CODE" in
	0:200) ;;
	0:*) fail "istiod refused this proxy ($CODE): $BODY" ;;
	*) log "warn	istiod unreachable, retrying: $OUT" ;;
	esac
done
