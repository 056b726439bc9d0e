#!/bin/sh
# Install every build and test dependency of Petrel (Debian 12, as root).
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -eu

PACKAGES="
build-essential meson ninja-build pkg-config clang
libevent-dev libssl-dev openssl libsqlite3-dev sqlite3 libsodium-dev
libcrypt-dev libjansson-dev libcmocka-dev
python3 python3-pytest curl swaks
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi

echo "setup: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends $missing; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi

# The unprivileged user the daemon drops to (real installs and tests run as root).
if ! getent passwd petrel >/dev/null; then
	useradd --system --home-dir /nonexistent --no-create-home \
	    --shell /usr/sbin/nologin petrel
fi
