#!/bin/sh
# Installs what the benchmark needs from Debian (as root) without starting any
# system-wide daemon: a policy-rc.d that forbids service starts is in place for
# the duration of the install (only if none exists already), and Postfix is
# preseeded with "No configuration" so that /etc/postfix/main.cf is not written.
# Idempotent: when everything is present it only asks dpkg.
set -eu

PACKAGES="postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd gnuplot-nox"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi

policy=/usr/sbin/policy-rc.d
ours=no
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# bench/run: no service starts during package installs\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	ours=yes
fi
cleanup() { if [ "$ours" = yes ]; then rm -f "$policy"; fi; }
trap cleanup EXIT INT TERM

echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
echo "bench: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends $missing; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi
