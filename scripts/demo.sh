#!/bin/sh
# Sets up the machine, builds Petrel and starts it in the foreground with a
# demo: data directory ./demo, self-signed certificate, domain example.test,
# account demo@example.test, ports 10000 + the standard ones on 127.0.0.1.
# Stop it with Ctrl-C. Running it again reuses ./demo.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh build -Dbuildtype=release >/dev/null
petrel="./build/petrel -c demo/petrel.conf"

if [ ! -f demo/petrel.conf ]; then
	./build/petrel init demo --hostname localhost --bind 127.0.0.1 --port-base 10000 >/dev/null
	$petrel domain add example.test >/dev/null
	password=$(openssl rand -base64 12 | tr -d '/+=')
	printf '%s\n' "$password" | $petrel account add demo@example.test --password-stdin >/dev/null
	umask 077
	printf '%s\n' "$password" > demo/demo-password
fi
password=$(cat demo/demo-password)

cat <<INFO
Petrel demo
  server       localhost (127.0.0.1), certificate demo/tls/cert.pem (self-signed)
  user         demo@example.test
  password     $password
  SMTP         10025 (MX), 10587 and 12525 (submission, STARTTLS), 10465 (implicit TLS)
  IMAP         10143 (STARTTLS), 10993 (implicit TLS)
  POP3         10110 (STLS), 10995 (implicit TLS)
  send         swaks --server 127.0.0.1 --port 10025 --to demo@example.test --from someone@example.org
  read         curl --cacert demo/tls/cert.pem --ssl-reqd -u demo@example.test:$password 'imap://localhost:10143/INBOX;UID=1'
  admin        $petrel account list
INFO
exec $petrel serve
