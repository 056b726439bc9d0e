#!/bin/sh
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each one for
# SECONDS (default 20), starting from the seeds in tests/fuzz/seeds/NAME.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-20}
CC=clang ./scripts/build.sh build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
for f in build-fuzz/tests/fuzz/fuzz_*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	name=$(basename "$f" | sed 's/^fuzz_//')
	corpus=build-fuzz/corpus/$name
	mkdir -p "$corpus"
	if [ -d "tests/fuzz/seeds/$name" ]; then
		cp -n tests/fuzz/seeds/"$name"/* "$corpus"/
	fi
	echo "fuzz $name: ${seconds}s"
	"$f" -max_total_time="$seconds" -max_len=65536 "$corpus" 2>&1 | tail -n 1
done
