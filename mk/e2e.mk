# The rollout end to end (tests/e2e/test_rollout.c): both tutorial
# blueprints through the real server against the sandbox.

E2E_SRC := tests/e2e/test_rollout.c tests/api/client.c tests/clients/harness.c
E2E_HDR := tests/api/api_client.h tests/clients/harness.h tests/check.h

build/tests/e2e: $(E2E_SRC) $(E2E_HDR)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -Itests/api -Itests/clients -o $@ $(E2E_SRC) \
	  $(shell pkg-config --libs jansson libcurl sqlite3)

.PHONY: test-e2e
test-e2e: build/outrigger build/outrigger-step $(ROLLOUT_SO) build/tests/e2e
	build/tests/e2e

EXTRA_TESTS += test-e2e
