#!/bin/sh
# Run the libFuzzer target for a bounded time over the seeds and the corpus
# it has grown; print the runner's closing line.  Exit non-zero on a crash.
#   tests/fuzz/run.sh BINARY SECONDS
set -u
bin=$1
secs=${2:-20}
corpus=build/fuzz/corpus
mkdir -p "$corpus" build/fuzz/artifacts
log=build/fuzz/last-run.log
if "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix=build/fuzz/artifacts/ -print_final_stats=1 \
	"$corpus" tests/fuzz/seeds >"$log" 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz: api target ran ${runs:-?} inputs in ${secs}s, no crash, leak or bad answer"
	echo "fuzz: 1 passed, 0 failed"
else
	tail -n 40 "$log"
	echo "fuzz: the api target failed; the input is in build/fuzz/artifacts/"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
