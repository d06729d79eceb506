# Outrigger.  `make run` and `make test` are all a newcomer needs; both
# install missing Debian packages first (see debian-packages.txt).

CC       ?= cc
PKGS     := libmicrohttpd sqlite3 jansson libcurl libssh2 openssl yaml-0.1
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wvla -Wpointer-arith
BASE     := -std=c11 -D_GNU_SOURCE -Iserver -Isandbox -Iinclude -Iplugins -Ibuild/gen $(WARN)
CFLAGS   ?= -O2 -g
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LIBS      = $(PKG_LIBS) -lpthread
SAN      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

LISTEN   ?= 127.0.0.1:8080
DB       ?= var/outrigger.db

# The sandbox: every file of sandbox/, in the same binary.
SANDBOX_SRC := $(wildcard sandbox/*.c)
# The mirror's own files (Istio stand-ins, the sidecar package, Online
# Boutique manifests, the default catalog), compiled into the binary.
SANDBOX_ASSETS := $(sort $(wildcard sandbox/assets/*/*))

# Library sources: everything but the entry point, and the built-in
# plugins (plugins/exec.c, plugins/wait.c), compiled into the binary.
BUILTIN  := plugins/exec.c plugins/wait.c
# The sandbox (sandbox/*.c) is part of the same binary: `outrigger sandbox`.
SRC      := $(filter-out server/main.c server/step_main.c,$(wildcard server/*.c)) $(SANDBOX_SRC)
# The step runner program: the runner and what it needs, nothing else.
STEP_SRC := step lcurl buf or log plugin runner gcp k8s ydoc ssh fetch step_pki pki
STEP_LIBS = $(shell pkg-config --libs jansson libssh2 openssl yaml-0.1) -ldl
# The rollout's plugins: one file a step, each its own plugins/NAME.so,
# built like a third party's (include/outrigger/plugin.h only).
ROLLOUT  := $(filter-out $(BUILTIN),$(wildcard plugins/*.c))
ROLLOUT_SO := $(ROLLOUT:%.c=%.so)
STEP_OBJ := $(STEP_SRC:%=build/obj/%.o) $(BUILTIN:plugins/%.c=build/obj/plugin_%.o)
SAN_STEP_OBJ := $(STEP_SRC:%=build/asan/obj/%.o) $(BUILTIN:plugins/%.c=build/asan/obj/plugin_%.o)
HDR      := $(wildcard server/*.h sandbox/*.h include/outrigger/*.h plugins/*.h)
EMBED    := $(sort $(wildcard db/migrations/*.sql)) server/openapi.json $(SANDBOX_ASSETS)
GEN      := build/gen/embedded.c

OBJ      := $(patsubst sandbox/%.c,build/obj/sandbox_%.o,$(SRC:server/%.c=build/obj/%.o)) $(BUILTIN:plugins/%.c=build/obj/plugin_%.o) \
            build/obj/embedded.o
SAN_OBJ  := $(patsubst sandbox/%.c,build/asan/obj/sandbox_%.o,$(SRC:server/%.c=build/asan/obj/%.o)) \
            $(BUILTIN:plugins/%.c=build/asan/obj/plugin_%.o) build/asan/obj/embedded.o

UNIT_SRC := $(wildcard tests/unit/*.c)
# Plugins the tests load through the real loader: each builds with only
# include/outrigger/plugin.h, as a third party's would.
TEST_PLUGINS := $(patsubst tests/plugins/%.c,build/test-plugins/%.so,$(wildcard tests/plugins/*.c))
API_SRC  := $(wildcard tests/api/*.c)

.PHONY: FORCE all deps deps-test run test test-unit test-api test-sandbox test-asan test-fuzz \
        bench-api bench-engine clean check

all: build/outrigger build/outrigger-step $(ROLLOUT_SO)

deps:
	@tools/deps.sh install build

deps-test:
	@tools/deps.sh install build test

# The version string, rewritten only when it changes (so main.o rebuilds
# after a commit, and nothing else does).
build/gen/version.h: FORCE
	@mkdir -p $(@D)
	@echo '#define OUTRIGGER_VERSION "$(VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@
	@rm -f $@.tmp

build/obj/main.o build/asan/obj/main.o: build/gen/version.h

$(GEN): tools/embed.sh $(EMBED)
	@mkdir -p $(@D)
	@echo "  EMBED   $@"
	@tools/embed.sh $@ $(EMBED)

build/obj/%.o: server/%.c $(HDR)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

build/obj/sandbox_%.o: sandbox/%.c $(HDR)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

build/obj/plugin_%.o: plugins/%.c $(HDR)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

build/obj/embedded.o: $(GEN) server/embed.h
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(CFLAGS) -c $< -o $@

build/outrigger: build/obj/main.o $(OBJ) build/outrigger-step
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ build/obj/main.o $(OBJ) $(LIBS)

build/outrigger-step: build/obj/step_main.o $(STEP_OBJ)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(STEP_LIBS)

# The same program and tests built with AddressSanitizer + UBSan.
build/asan/obj/%.o: server/%.c $(HDR)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -c $< -o $@

build/asan/obj/sandbox_%.o: sandbox/%.c $(HDR)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -c $< -o $@

build/asan/obj/plugin_%.o: plugins/%.c $(HDR)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -c $< -o $@

build/asan/obj/embedded.o: $(GEN) server/embed.h
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASE) $(SAN) -c $< -o $@

build/asan/outrigger: build/asan/obj/main.o $(SAN_OBJ) build/asan/outrigger-step
	@echo "  LINK    $@"
	@$(CC) $(SAN) -o $@ build/asan/obj/main.o $(SAN_OBJ) $(LIBS)

build/asan/outrigger-step: build/asan/obj/step_main.o $(SAN_STEP_OBJ)
	@echo "  LINK    $@"
	@$(CC) $(SAN) -o $@ $^ $(STEP_LIBS)

build/tests/unit: $(UNIT_SRC) tests/check.h $(OBJ)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -o $@ $(UNIT_SRC) $(OBJ) $(LIBS)

build/asan/tests/unit: $(UNIT_SRC) tests/check.h $(SAN_OBJ)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -Itests -o $@ $(UNIT_SRC) $(SAN_OBJ) $(LIBS)

build/tests/api: $(API_SRC) tests/check.h tests/api/api_client.h
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -o $@ $(API_SRC) $(LIBS)

# A rollout plugin: its file, the public header, plugins/rollout.h (small
# helpers every rollout step shares) and jansson, nothing of the server.
plugins/%.so: plugins/%.c plugins/rollout.h include/outrigger/plugin.h
	@echo "  PLUGIN  $@"
	@$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -shared -fPIC $(WARN) \
	  -Iinclude -Iplugins $(shell pkg-config --cflags jansson) -o $@ $< $(shell pkg-config --libs jansson)

build/test-plugins/%.so: tests/plugins/%.c include/outrigger/plugin.h
	@mkdir -p $(@D)
	@echo "  PLUGIN  $@"
	@$(CC) -std=c11 -D_GNU_SOURCE -shared -fPIC -Wall -Wextra -Werror -Iinclude -o $@ $<

# libFuzzer target for the request and JSON path (clang only).
build/fuzz/api: tests/fuzz/fuzz_api.c $(SRC) $(BUILTIN) $(GEN) $(HDR)
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	@clang $(BASE) -O1 -g -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) \
	  -o $@ tests/fuzz/fuzz_api.c $(filter-out server/http.c,$(SRC)) $(BUILTIN) $(GEN) $(LIBS)

# The YAML reader the rollout feeds downloaded manifests to.
build/fuzz/yaml: tests/fuzz/fuzz_yaml.c server/ydoc.c server/or.c server/buf.c $(HDR)
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	@clang $(BASE) -O1 -g -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) \
	  -o $@ tests/fuzz/fuzz_yaml.c server/ydoc.c server/or.c server/buf.c \
	  $(shell pkg-config --libs jansson yaml-0.1)

run: deps build/outrigger $(ROLLOUT_SO)
	@mkdir -p $(dir $(DB))
	@echo "Outrigger on http://$(LISTEN)/ (Ctrl-C stops it)"
	build/outrigger serve --sandbox --listen $(LISTEN) --db $(DB)

test: deps-test
	@$(MAKE) -k --no-print-directory all test-unit test-api test-sandbox test-asan test-fuzz $(EXTRA_TESTS)

test-unit: build/tests/unit
	build/tests/unit

test-api: build/outrigger build/tests/api $(TEST_PLUGINS) $(ROLLOUT_SO)
	OUTRIGGER_BIN=build/outrigger build/tests/api

build/tests/oauth: tests/sandbox/test_oauth.c tests/check.h $(OBJ)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -o $@ tests/sandbox/test_oauth.c $(OBJ) $(LIBS)

build/asan/tests/oauth: tests/sandbox/test_oauth.c tests/check.h $(SAN_OBJ)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -Itests -o $@ tests/sandbox/test_oauth.c $(SAN_OBJ) $(LIBS)

DISC_TEST_SRC := tests/sandbox/test_disc.c sandbox/disc.c server/or.c server/buf.c server/log.c

build/tests/disc: $(DISC_TEST_SRC) $(HDR) tests/check.h
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -o $@ $(DISC_TEST_SRC) $(LIBS)

build/asan/tests/disc: $(DISC_TEST_SRC) $(HDR) tests/check.h
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -Itests -o $@ $(DISC_TEST_SRC) $(LIBS)

VM_TEST_SRC := tests/sandbox/test_vm.c sandbox/vm.c server/or.c server/buf.c server/log.c

build/tests/vm: $(VM_TEST_SRC) $(HDR) tests/check.h
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) -Itests -o $@ $(VM_TEST_SRC) -lpthread

build/asan/tests/vm: $(VM_TEST_SRC) $(HDR) tests/check.h
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(SAN) -Itests -o $@ $(VM_TEST_SRC) -lpthread

build/tests/kube: tests/sandbox/test_kube.c tests/check.h $(OBJ)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -o $@ tests/sandbox/test_kube.c $(OBJ) $(LIBS)

build/asan/tests/kube: tests/sandbox/test_kube.c tests/check.h $(SAN_OBJ)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -Itests -o $@ tests/sandbox/test_kube.c $(SAN_OBJ) $(LIBS)

# The sandbox judged by real clients: its token endpoint driven from C, its
# Kubernetes API by kubectl, the whole by gcloud and kubectl together.
test-sandbox: build/outrigger build/tests/disc build/tests/oauth build/tests/kube build/tests/vm
	build/tests/disc
	build/tests/oauth
	build/tests/kube
	build/tests/vm
	tests/sandbox/gcloud.sh

test-asan: build/asan/outrigger build/asan/tests/unit build/asan/tests/oauth build/asan/tests/kube \
           build/asan/tests/vm build/asan/tests/disc \
           build/tests/api $(TEST_PLUGINS)
	ASAN_OPTIONS=detect_leaks=1 build/asan/tests/unit
	ASAN_OPTIONS=detect_leaks=1 OUTRIGGER_BIN=build/asan/outrigger build/tests/api
	ASAN_OPTIONS=detect_leaks=1 OUTRIGGER_BIN=build/asan/outrigger build/asan/tests/oauth
	ASAN_OPTIONS=detect_leaks=1 build/asan/tests/kube
	ASAN_OPTIONS=detect_leaks=1 build/asan/tests/vm
	ASAN_OPTIONS=detect_leaks=1 build/asan/tests/disc
	ASAN_OPTIONS=detect_leaks=1 OUTRIGGER_BIN=build/asan/outrigger tests/sandbox/gcloud.sh

FUZZ_SECONDS ?= 20
test-fuzz: build/fuzz/api build/fuzz/yaml
	@mkdir -p build/fuzz/corpus
	tests/fuzz/run.sh build/fuzz/api $(FUZZ_SECONDS)
	tests/fuzz/run.sh build/fuzz/yaml $(FUZZ_SECONDS) yaml

bench-api: build/outrigger
	bench/api/run.sh

bench-engine: build/outrigger
	bench/engine/run.sh

check: test

clean:
	rm -rf build

# Rules of one subsystem each (its tests, its plugins), kept beside the
# main ones so that this file stays readable.
-include $(sort $(wildcard mk/*.mk))
