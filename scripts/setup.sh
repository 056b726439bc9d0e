#!/bin/sh
# Installs every build and test dependency of Petrel (Debian 12, as root) and
# the unprivileged `petrel` user the daemon runs as. Idempotent: when all is
# present it only asks dpkg and exits within a second.
set -eu

PACKAGES="
build-essential meson ninja-build pkg-config clang
libevent-dev libssl-dev openssl libsqlite3-dev sqlite3 libsodium-dev
libcrypt-dev libjansson-dev libcmocka-dev
python3 python3-pytest curl swaks libnet-ssleay-perl argon2
isync fetchmail getmail6 offlineimap3 msmtp
libunbound-dev unbound
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages:$missing (run as root to install them)" >&2
		exit 1
	fi
	echo "setup: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Try the package lists we have first; refresh them only if that fails.
	if ! apt-get install -y -q --no-install-recommends $missing; then
		apt-get update -q
		apt-get install -y -q --no-install-recommends $missing
	fi
fi

if ! getent passwd petrel >/dev/null; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: user 'petrel' is missing (run as root to create it)" >&2
		exit 1
	fi
	useradd --system --home-dir /nonexistent --no-create-home \
	    --shell /usr/sbin/nologin petrel
fi
