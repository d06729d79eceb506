#!/bin/sh
# Run a libFuzzer target for a bounded time over its seeds and the corpus
# it has grown; print the runner's closing line.  Exit non-zero on a crash.
#   tests/fuzz/run.sh BINARY SECONDS [NAME]
# NAME "api" (the default) uses tests/fuzz/seeds, any other tests/fuzz/seeds-NAME.
set -u
bin=$1
secs=${2:-20}
name=${3:-api}
if [ "$name" = api ]; then
	corpus=build/fuzz/corpus
	seeds=tests/fuzz/seeds
else
	corpus=build/fuzz/corpus-$name
	seeds=tests/fuzz/seeds-$name
fi
mkdir -p "$corpus" build/fuzz/artifacts
log=build/fuzz/last-run-$name.log
if "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix=build/fuzz/artifacts/ -print_final_stats=1 \
	"$corpus" "$seeds" >"$log" 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz: $name target ran ${runs:-?} inputs in ${secs}s, no crash, leak or bad answer"
	echo "fuzz: 1 passed, 0 failed"
else
	tail -n 40 "$log"
	echo "fuzz: the $name target failed; the input is in build/fuzz/artifacts/"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
