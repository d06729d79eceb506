# The SSH client (server/ssh.c) and the vm-bootstrap plugin, tested against
# real sshd VMs of the sandbox through the real step runner.  Needs root
# for the VMs; without it the tests skip, saying why.

SSH_TEST_SRC := tests/clients/test_ssh.c tests/clients/harness.c
SSH_TEST_HDR := tests/clients/harness.h tests/check.h
# The test makes its keys with pki_ssh_keypair; it needs nothing else of
# the server (the sandbox and the runner are separate programs).
SSH_TEST_OBJ := pki.o buf.o or.o log.o

build/tests/ssh: $(SSH_TEST_SRC) $(SSH_TEST_HDR) $(SSH_TEST_OBJ:%=build/obj/%)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(CFLAGS) $(PKG_CFLAGS) -Itests -Itests/clients -o $@ $(SSH_TEST_SRC) \
	  $(SSH_TEST_OBJ:%=build/obj/%) $(LIBS)

build/asan/tests/ssh: $(SSH_TEST_SRC) $(SSH_TEST_HDR) $(SSH_TEST_OBJ:%=build/asan/obj/%)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) $(BASE) $(SAN) $(PKG_CFLAGS) -Itests -Itests/clients -o $@ $(SSH_TEST_SRC) \
	  $(SSH_TEST_OBJ:%=build/asan/obj/%) $(LIBS)

.PHONY: test-ssh test-ssh-asan

test-ssh: build/outrigger build/outrigger-step build/tests/ssh build/test-plugins/sshprobe.so \
          plugins/vm-bootstrap.so
	build/tests/ssh

# The runner (and with it ssh.c) under AddressSanitizer + UBSan; the test
# itself too.
test-ssh-asan: build/outrigger build/asan/outrigger-step build/asan/tests/ssh \
               build/test-plugins/sshprobe.so plugins/vm-bootstrap.so
	ASAN_OPTIONS=detect_leaks=1 SSH_TEST_RUNNER=build/asan/outrigger-step build/asan/tests/ssh

EXTRA_TESTS += test-ssh test-ssh-asan
