# The Kubernetes client (server/k8s.c, server/ydoc.c): its test runner,
# plain and with AddressSanitizer + UBSan, driving build/outrigger-step
# (or build/asan/outrigger-step) against a sandbox GKE cluster.

K8S_TEST_SRC := tests/clients/test_k8s.c tests/clients/harness.c server/ydoc.c server/or.c server/buf.c
K8S_TEST_HDR := tests/clients/harness.h tests/check.h server/ydoc.h server/or.h server/buf.h
K8S_TEST_LIBS = $(shell pkg-config --libs jansson libcurl yaml-0.1)

build/tests/k8s: $(K8S_TEST_SRC) $(K8S_TEST_HDR)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -Itests/clients -o $@ $(K8S_TEST_SRC) $(K8S_TEST_LIBS)

build/asan/tests/k8s: $(K8S_TEST_SRC) $(K8S_TEST_HDR)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -Itests -Itests/clients -o $@ $(K8S_TEST_SRC) $(K8S_TEST_LIBS)

.PHONY: test-k8s test-k8s-asan
test-k8s: build/outrigger build/outrigger-step build/tests/k8s build/test-plugins/kubeprobe.so
	build/tests/k8s

test-k8s-asan: build/outrigger build/asan/outrigger-step build/asan/tests/k8s build/test-plugins/kubeprobe.so
	ASAN_OPTIONS=detect_leaks=1 OUTRIGGER_STEP=build/asan/outrigger-step build/asan/tests/k8s

EXTRA_TESTS += test-k8s test-k8s-asan
