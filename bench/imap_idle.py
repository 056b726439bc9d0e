#!/usr/bin/python3
"""Memory cost of authenticated IMAP IDLE connections over TLS.

Starts a fresh Petrel (init in a temporary directory, loopback, port base
30000 unless --port-base), opens N imaps connections, and on each one does
LOGIN, SELECT INBOX and IDLE (waiting for "+ idling"). It reports the
daemon's resident memory growth per connection (VmRSS before the first and
after the last connection, after warm-up connections and a pause for the
allocator; also split into anonymous and file-backed memory, and the open
descriptors), and checks that the idlers are alive:

- one account (the default): every connection logs in as the same user;
  one more message is appended and every connection must see "* 2 EXISTS";
- --accounts: every connection has an account of its own (imported with
  {PLAIN} passwords, rehashed at the first login like any import; the
  daemon is restarted after the first message went to every INBOX); then
  --push K of them (spread over the N) get a message by SMTP, one after
  the other, and each one's idler must see "* 2 EXISTS". The time from the
  end of DATA to the idler's EXISTS is reported (median and maximum).

The warm-up (--warm W connections, default 50, on accounts of their own
with --accounts) is not measured: it brings in what the first connections
set up once (OpenSSL, the allocator's per-thread heaps of the worker pool,
which grow with the index opens of logins, caches).

Usage: bench/imap_idle.py [N] [--accounts] [--push K] [--warm W]
       [--port-base B] [--pause S]   (N defaults to 1000)
"""
import argparse
import concurrent.futures
import os
import re
import resource
import selectors
import signal
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PETREL = os.environ.get("PETREL_BIN", os.path.join(ROOT, "build", "petrel"))
DOMAIN = "bench.test"
USER = "idle@bench.test"
PASSWORD = "idle bench password"
WARM = 50
MESSAGE = (b"From: a@bench.test\r\nTo: idle@bench.test\r\nSubject: idle\r\n"
           b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\nHello.\r\n")


def proc_status(pid):
    """VmRSS, RssAnon, RssFile, RssShmem in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(line.split()[1])
    return out


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


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


def login(ctx, port, user):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                        server_hostname="localhost")
    read_until(s, b"* OK")
    s.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), PASSWORD.encode()))
    line = read_until(s, b"a ")
    if not line.startswith(b"a OK"):
        raise RuntimeError(line)
    return s


def idler(ctx, port, user):
    s = login(ctx, port, user)
    s.sendall(b"b SELECT INBOX\r\n")
    read_until(s, b"b OK")
    s.sendall(b"c IDLE\r\n")
    read_until(s, b"+")
    return s


def petrel(conf, *args, input=None):
    return subprocess.run([PETREL, "-c", conf, *args], input=input, text=True,
                          check=True, capture_output=True)


def account(i):
    return f"u{i:05d}@{DOMAIN}"


def wait_exists(socks, want, timeout=60):
    """Waits until every socket has seen the line want; returns those that did not."""
    sel = selectors.DefaultSelector()
    for c in socks:
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
    pending = set(socks)
    bufs = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            c = key.fileobj
            try:
                bufs[c] = bufs.get(c, b"") + c.recv(4096)
            except ssl.SSLWantReadError:
                continue
            if want in bufs[c]:
                pending.discard(c)
                sel.unregister(c)
    sel.close()
    return pending


def open_all(ctx, port, users, threads):
    """Opens one idler per user, threads at a time (logins hash on the server)."""
    if threads <= 1:
        return [idler(ctx, port, u) for u in users]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(lambda u: idler(ctx, port, u), users))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--accounts", action="store_true",
                    help="one account per connection (default: one for all)")
    ap.add_argument("--push", type=int, default=20,
                    help="with --accounts: accounts that get a message")
    ap.add_argument("--port-base", type=int, default=30000)
    ap.add_argument("--threads", type=int, default=8,
                    help="with --accounts: connections opened at once")
    ap.add_argument("--warm", type=int, default=WARM,
                    help="warm-up connections, not measured (default %d)" % WARM)
    ap.add_argument("--pause", type=float, default=0,
                    help="seconds to wait after the warm-up and after the measurement "
                         "(to attach a profiler to the daemon)")
    args = ap.parse_args()
    n = args.n
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 1000)), hard))
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # the daemon runs as user petrel
        data = os.path.join(tmp, "d")
        subprocess.run([PETREL, "init", data, "--hostname", "localhost",
                        "--bind", "127.0.0.1", "--port-base", str(args.port_base)],
                       check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(data, "petrel.conf")
        text = open(conf).read()
        text = re.sub(r"(?m)^max_connections_per_ip = .*$",
                      f"max_connections_per_ip = {n + args.warm + 200}", text)
        text = re.sub(r"(?m)^max_connections = .*$", f"max_connections = {n + args.warm + 200}", text)
        text = text.replace("log_level = info", "log_level = warn")
        open(conf, "w").write(text)
        petrel(conf, "domain", "add", DOMAIN)
        petrel(conf, "account", "add", USER, "--password-stdin", input=PASSWORD + "\n")
        if args.accounts:
            users = [account(i) for i in range(1, args.warm + n + 1)]
            path = os.path.join(tmp, "users.passwd")
            with open(path, "w") as f:
                for u in users:
                    f.write(f"{u}:{{PLAIN}}{PASSWORD}::::::\n")
            os.chmod(path, 0o644)
            petrel(conf, "import", "passwd-file", path)
            warm_users, users = users[:args.warm], users[args.warm:]
        else:
            warm_users, users = [USER] * args.warm, [USER] * n
        log = open(os.path.join(tmp, "log"), "w+")

        def start():
            p = subprocess.Popen([PETREL, "-c", conf, "serve"], stderr=log,
                                 preexec_fn=lambda: resource.setrlimit(
                                     resource.RLIMIT_NOFILE, (hard, hard)))
            time.sleep(1.0)
            return p
        proc = start()
        port = args.port_base + 993
        threads = args.threads if args.accounts else 1
        try:
            ctx = ssl.create_default_context(cafile=os.path.join(data, "tls", "cert.pem"))
            # A message in every INBOX, by SMTP, 50 recipients at a time.
            rcpts = [USER] if not args.accounts else [USER, *warm_users, *users]
            smtp = smtplib.SMTP("127.0.0.1", args.port_base + 25, timeout=60)
            for i in range(0, len(rcpts), 50):
                refused = smtp.sendmail("sender@bench.test", rcpts[i:i + 50], MESSAGE)
                if refused:
                    raise RuntimeError(f"refused: {refused}")
            smtp.quit()
            # A fresh daemon: nothing of the deliveries (the accounts they
            # left open in the store's cache) in its memory.
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            proc = start()
            # Warm-up: the allocator, OpenSSL, the accounts, the auth cache.
            warm = open_all(ctx, port, warm_users, threads)
            time.sleep(0.5)
            if args.pause:
                print(f"daemon pid {proc.pid}: waiting {args.pause} s", flush=True)
                time.sleep(args.pause)
            before, fds0 = proc_status(proc.pid), nfds(proc.pid)
            t0 = time.monotonic()
            conns = open_all(ctx, port, users, threads)
            setup = time.monotonic() - t0
            time.sleep(2.0)
            after, fds1 = proc_status(proc.pid), nfds(proc.pid)
            per = {k: (after[k] - before[k]) / n for k in after}
            print(f"connections={n} accounts={'one each' if args.accounts else 'one'} "
                  f"rss_before_kib={before['VmRSS']} rss_after_kib={after['VmRSS']} "
                  f"per_connection_kib={per['VmRSS']:.1f} "
                  f"(anon {per['RssAnon']:.1f}, file {per['RssFile']:.1f}, "
                  f"shmem {per['RssShmem']:.1f}) "
                  f"fds_per_connection={(fds1 - fds0) / n:.2f} setup_s={setup:.1f}",
                  flush=True)
            if args.pause:
                print(f"measured: waiting {args.pause} s", flush=True)
                time.sleep(args.pause)
            if not args.accounts:
                # Every idler hears of a new message.
                pusher = login(ctx, port, USER)
                t0 = time.monotonic()
                pusher.sendall(b"b APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
                read_until(pusher, b"b OK")
                pending = wait_exists(conns, b"* 2 EXISTS\r\n")
                push = time.monotonic() - t0
                print(f"push_all_s={push:.2f} missed={len(pending)}")
                pusher.close()
            else:
                # Deliveries by SMTP to accounts spread over the N, one
                # after the other: the time from the end of DATA to EXISTS.
                k = max(1, min(args.push, n))
                picks = [int(i * n / k) for i in range(k)]
                times, missed = [], 0
                smtp = smtplib.SMTP("127.0.0.1", args.port_base + 25, timeout=30)
                smtp.ehlo("bench.test")
                for i in picks:
                    smtp.mail("sender@bench.test")
                    code, _ = smtp.rcpt(users[i])
                    if code != 250:
                        raise RuntimeError(f"RCPT {users[i]}: {code}")
                    t0 = time.monotonic()
                    code, _ = smtp.data(MESSAGE)
                    if code != 250:
                        raise RuntimeError(f"DATA: {code}")
                    t250 = time.monotonic()
                    if wait_exists([conns[i]], b"* 2 EXISTS\r\n", timeout=30):
                        missed += 1
                    else:
                        times.append((t250 - t0, time.monotonic() - t0))
                smtp.quit()
                print(f"pushed={k} missed={missed} "
                      f"data_to_250_ms_median={statistics.median(t[0] for t in times) * 1000:.1f} "
                      f"data_to_exists_ms_median="
                      f"{statistics.median(t[1] for t in times) * 1000:.1f} "
                      f"data_to_exists_ms_max={max(t[1] for t in times) * 1000:.1f}")
                pending = missed
            for c in conns + warm:
                c.close()
            if pending:
                sys.exit(1)
        except BaseException:
            log.seek(0)
            sys.stderr.write("daemon log (tail):\n" + "".join(log.readlines()[-20:]))
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
