#!/usr/bin/python3
"""Memory cost of authenticated IMAP IDLE connections over TLS.

Starts a fresh Petrel (init in a temporary directory, loopback, port base
30000, one account with a message in INBOX), opens N imaps connections, and
on each one does LOGIN, SELECT INBOX and IDLE (waiting for "+ idling"). It
reports the daemon's resident memory growth per connection (VmRSS before
the first and after the last connection, after warm-up connections and a
pause for the allocator), and checks that the idlers are alive: one more
message is appended and every connection must see "* 2 EXISTS".
Usage: bench/imap_idle.py [N] (default 1000).
"""
import os
import resource
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PETREL = os.environ.get("PETREL_BIN", os.path.join(ROOT, "build", "petrel"))
BASE = 30000
USER = "idle@bench.test"
PASSWORD = "idle bench password"
MESSAGE = (b"From: a@bench.test\r\nTo: idle@bench.test\r\nSubject: idle\r\n"
           b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\nHello.\r\n")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_until(s, tag_or_prefix):
    """Reads lines until one starts with tag_or_prefix; returns it."""
    buf = b""
    while True:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed; got %r" % buf)
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        if line.startswith(tag_or_prefix):
            if buf:
                raise RuntimeError("unexpected data after %r: %r" % (line, buf))
            return line


def idler(ctx, port):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                        server_hostname="localhost")
    read_until(s, b"* OK")
    s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
    line = read_until(s, b"a ")
    if not line.startswith(b"a OK"):
        raise RuntimeError(line)
    s.sendall(b"b SELECT INBOX\r\n")
    read_until(s, b"b OK")
    s.sendall(b"c IDLE\r\n")
    read_until(s, b"+")
    return s


def petrel(conf, *args, input=None):
    return subprocess.run([PETREL, "-c", conf, *args], input=input, text=True,
                          check=True, capture_output=True)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 1000)), hard))
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # the daemon runs as user petrel
        data = os.path.join(tmp, "d")
        subprocess.run([PETREL, "init", data, "--hostname", "localhost",
                        "--bind", "127.0.0.1", "--port-base", str(BASE)],
                       check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(data, "petrel.conf")
        text = open(conf).read()
        text = text.replace("max_connections_per_ip = 50",
                            f"max_connections_per_ip = {n + 100}")
        text = text.replace("log_level = info", "log_level = warn")
        open(conf, "w").write(text)
        petrel(conf, "domain", "add", "bench.test")
        petrel(conf, "account", "add", USER, "--password-stdin", input=PASSWORD + "\n")
        log = open(os.path.join(tmp, "log"), "w+")
        proc = subprocess.Popen([PETREL, "-c", conf, "serve"], stderr=log,
                                preexec_fn=lambda: resource.setrlimit(
                                    resource.RLIMIT_NOFILE, (n + 1000, n + 1000)))
        port = BASE + 993
        try:
            time.sleep(1.0)
            ctx = ssl.create_default_context(cafile=os.path.join(data, "tls", "cert.pem"))
            # A message in INBOX, through IMAP itself.
            s = idler(ctx, port)
            s.sendall(b"DONE\r\n")
            read_until(s, b"c OK")
            s.sendall(b"d APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
            read_until(s, b"d OK")
            s.sendall(b"e LOGOUT\r\n")
            s.close()
            # Warm-up: the allocator, OpenSSL, the account, the auth cache.
            warm = [idler(ctx, port) for _ in range(50)]
            time.sleep(0.5)
            before = rss_kib(proc.pid)
            t0 = time.monotonic()
            conns = [idler(ctx, port) for _ in range(n)]
            setup = time.monotonic() - t0
            time.sleep(1.0)
            after = rss_kib(proc.pid)
            per = (after - before) / n
            # Every idler hears of a new message.
            pusher = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                     server_hostname="localhost")
            read_until(pusher, b"* OK")
            pusher.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
            read_until(pusher, b"a ")
            t0 = time.monotonic()
            pusher.sendall(b"b APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
            read_until(pusher, b"b OK")
            sel = selectors.DefaultSelector()
            for c in conns:
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
            pending = set(conns)
            bufs = {}
            deadline = time.monotonic() + 60
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    c = key.fileobj
                    try:
                        bufs[c] = bufs.get(c, b"") + c.recv(4096)
                    except ssl.SSLWantReadError:
                        continue
                    if b"* 2 EXISTS\r\n" in bufs[c]:
                        pending.discard(c)
                        sel.unregister(c)
            push = time.monotonic() - t0
            print(f"connections={n} rss_before_kib={before} rss_after_kib={after} "
                  f"per_connection_kib={per:.1f} setup_s={setup:.1f} "
                  f"push_all_s={push:.2f} missed={len(pending)}")
            for c in conns + warm + [pusher]:
                c.close()
            if pending:
                sys.exit(1)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
