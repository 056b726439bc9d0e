#!/bin/sh
# Configures (once) and builds a build directory: build.sh DIR [meson options]
set -eu
dir=$1
shift
cd "$(dirname "$0")/.."
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir"
