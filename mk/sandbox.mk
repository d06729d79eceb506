# The sandbox's download mirror, simulated istiod, shop and catalog server
# (docs/sandbox.md).

EXTRA_TESTS += test-mesh

# The mesh world judged by real clients: curl, tar, sha256sum, kubectl,
# gcloud, ssh and dpkg inside a VM; then the same under ASan + UBSan.
test-mesh: build/outrigger build/asan/outrigger
	tests/sandbox/mesh.sh
	ASAN_OPTIONS=detect_leaks=1 OUTRIGGER_BIN=build/asan/outrigger tests/sandbox/mesh.sh

.PHONY: test-mesh
