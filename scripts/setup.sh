#!/bin/sh
# Installs every build and test dependency of Petrel (Debian 12, as root) and
# the unprivileged `petrel` user the daemon runs as. Idempotent: when all is
# present it only asks dpkg and exits within a second.
#
# Postfix is installed for the queue tests, which run private instances of
# it (`postfix -c DIR`): it is preseeded with "No configuration" (no
# /etc/postfix/main.cf, so the system instance cannot start), and while
# packages install a policy-rc.d forbids service starts (only if none
# exists: one already there is left as it is).
set -eu

PACKAGES="
build-essential meson ninja-build pkg-config clang
libevent-dev libssl-dev openssl libsqlite3-dev sqlite3 libsodium-dev
libcrypt-dev libjansson-dev libcmocka-dev
python3 python3-pytest curl swaks libnet-ssleay-perl argon2
isync fetchmail getmail6 offlineimap3 msmtp
libunbound-dev unbound postfix
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
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# petrel setup.sh: no service starts while installing\nexit 101\n' \
		    >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT INT TERM
	fi
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
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
