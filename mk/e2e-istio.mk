# tests/e2e/test_istio.c: the istio-install and vm-files plugins run by the
# real step runner against the sandbox, judged by kubectl and openssl.
E2E_ISTIO_SRC := tests/e2e/test_istio.c tests/clients/harness.c

build/tests/e2e-istio: $(E2E_ISTIO_SRC) tests/clients/harness.h tests/check.h
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -o $@ $(E2E_ISTIO_SRC) $(LIBS)

.PHONY: test-e2e-istio
test-e2e-istio: build/outrigger build/outrigger-step plugins/istio-install.so plugins/vm-files.so \
                build/tests/e2e-istio
	build/tests/e2e-istio

# The same with the step runner and the two plugins built with ASan/UBSan
# (the plugins' own rule builds them plain).
E2E_ISTIO_PLUGINS := istio-install vm-files

build/asan/plugins/%.so: plugins/%.c plugins/rollout.h include/outrigger/plugin.h
	@mkdir -p $(@D)
	@echo "  PLUGIN  $@ (asan)"
	@$(CC) -std=c11 -D_GNU_SOURCE $(SAN) -shared -fPIC $(WARN) \
	  -Iinclude -Iplugins $(shell pkg-config --cflags jansson) -o $@ $< $(shell pkg-config --libs jansson)

.PHONY: test-e2e-istio-asan
test-e2e-istio-asan: build/outrigger build/asan/outrigger-step build/tests/e2e-istio \
                     $(E2E_ISTIO_PLUGINS:%=build/asan/plugins/%.so)
	ASAN_OPTIONS=detect_leaks=1 OUTRIGGER_STEP_BIN=build/asan/outrigger-step \
	  OUTRIGGER_PLUGINS_DIR=build/asan/plugins build/tests/e2e-istio

EXTRA_TESTS += test-e2e-istio test-e2e-istio-asan
