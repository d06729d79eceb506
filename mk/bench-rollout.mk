# bench/rollout: a whole rollout against the sandbox, timed against the
# critical path of its own step graph and against the tutorial's commands
# run one after another with the real gcloud and kubectl (bench/README.md).
# A benchmark, not a test: it is not in EXTRA_TESTS.  Needs root (the
# sandbox's VMs are sshd processes in namespaces).

.PHONY: bench-rollout

bench-rollout: build/outrigger build/outrigger-step $(ROLLOUT_SO)
	bench/rollout/run.sh
