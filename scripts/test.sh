#!/bin/sh
# Sets up the machine, builds Petrel twice (normal with -Werror, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole test suite
# against both: unit tests (cmocka) and end-to-end tests (pytest, real daemon,
# real clients).
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh

./scripts/build.sh build -Dwerror=true
meson test -C build --print-errorlogs
/usr/bin/python3 -m pytest -q tests/e2e

./scripts/build.sh build-asan -Dwerror=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
meson test -C build-asan --print-errorlogs
PETREL_BIN="$PWD/build-asan/petrel" /usr/bin/python3 -m pytest -q tests/e2e
echo "all tests passed"
