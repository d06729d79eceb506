#!/bin/sh
# gen-eastwest-gateway.sh, as the Outrigger sandbox ships it: prints the
# IstioOperator of an east-west gateway for `istioctl install -f -` (or the
# sandbox's `istioctl manifest generate -f -`).  Options: --single-cluster,
# --network NAME, --mesh ID, --cluster NAME, --revision REV.
set -eu
NETWORK=
SINGLE=false
REVISION=
while [ $# -gt 0 ]; do
	case "$1" in
	--single-cluster) SINGLE=true; shift ;;
	--network) NETWORK=$2; shift 2 ;;
	--mesh | --cluster) shift 2 ;;
	--revision) REVISION=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 1 ;;
	esac
done
if [ "$SINGLE" = false ] && [ -z "$NETWORK" ]; then
	echo "--network is required unless --single-cluster is given" >&2
	exit 1
fi
cat <<EOT
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: eastwest
spec:
  revision: "$REVISION"
  profile: empty
  components:
    ingressGateways:
      - name: istio-eastwestgateway
        label:
          istio: eastwestgateway
          app: istio-eastwestgateway
        enabled: true
        k8s:
          service:
            ports:
              - name: status-port
                port: 15021
                targetPort: 15021
              - name: tls
                port: 15443
                targetPort: 15443
              - name: tls-istiod
                port: 15012
                targetPort: 15012
              - name: tls-webhook
                port: 15017
                targetPort: 15017
  values:
    gateways:
      istio-ingressgateway:
        injectionTemplate: gateway
    global:
      network: "$NETWORK"
EOT
