#!/usr/bin/python3
"""bench/run's idle scenario against Petrel alone, with probes: where the
memory of idle IMAP connections goes.

Does what `bench/run imap-idle-*` does to Petrel (same setup through
bench/lib/servers.py, same load generator): N implicit-TLS connections,
10 per account (users 1..N/10), each LOGIN, SELECT INBOX, IDLE; a fresh
daemon, 20 warm-up logins, then the growth of the daemon's PSS (and RSS)
from /proc/PID/smaps_rollup between before the first connection and 7 s
after the last, divided by the connections held. Unlike bench/run it runs
no Dovecot, can give the opening more time, and can:

- --setup: make the work directory (accounts, --mail M: 20 messages for
  each of users 1..M over SMTP; one login per idle user, as bench/run's
  warm-up does); without it an existing one is used again;
- --dump DIR: save /proc/PID/smaps, status and smaps_rollup and glibc's
  malloc_info(3) (through gdb) before and after, for per-mapping and
  per-heap comparisons;
- --trim: after the reading, call malloc_trim(0) in the daemon (gdb) and
  read again: what the allocator held free;
- --warm-first U: warm up with users U..U+19 instead of 1..20 (users
  outside the idle set: does the warm-up's overlap change the figure?);
- --pre/--post CMD: run CMD ({pid} replaced) before the baseline reading
  (e.g. `heaptrack -p {pid}`) or after the last reading.

Usage: bench/idle_probe.py PETREL_BIN N [--work DIR] [--port-base B]
       [--setup [--mail M]] [--open-time S] [--dump DIR] [--trim]
       [--warm-first U] [--pre CMD] [--post CMD] [--loadgen BIN]
Run as root (the daemon drops to its own user); --work must be reachable
by that user.
"""
import argparse
import json
import os
import shutil
import smtplib
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "lib"))
import measure  # noqa: E402
import servers  # noqa: E402
from servers import PASSWORD, user  # noqa: E402

SETTLE = 7.0        # as bench/run's IDLE_SETTLE
WARM_LOGINS = 20    # as bench/run's run_idle


def loadgen_cmd(a, port, scenario, clients, extra):
    return [a.loadgen, "--proto", "imap", "--scenario", scenario, "--port", str(port),
            "--tls", "--clients", str(clients), "--password", PASSWORD,
            "--user", "u%05d@bench.test", *extra]


def warm(a, port, first, count):
    """One login per user, as bench/run's warm_up."""
    clients = min(10, count)
    r = subprocess.run(loadgen_cmd(a, port, "login", clients,
                                   ["--duration", "600", "--max-sessions",
                                    str(-(-count // clients)), "--users", str(count),
                                    "--user-first", str(first)]),
                       capture_output=True, text=True, timeout=700)
    if r.returncode != 0:
        sys.exit("warm-up failed: " + r.stderr.strip())


def load_mail(p, users):
    def body(u, k):
        head = (f"From: Loader <loader@sender.test>\r\nTo: {user(u)}\r\n"
                f"Subject: probe message {k}\r\nMessage-ID: <probe-{u}-{k}@sender.test>\r\n"
                "Date: Sat, 21 Nov 2026 00:00:00 +0000\r\n\r\n")
        return head + "The quick brown fox jumps over the lazy dog, line.\r\n" * 60

    def worker(us):
        with smtplib.SMTP("127.0.0.1", p.ports["smtp"], timeout=60) as s:
            for u in us:
                for k in range(20):
                    s.sendmail("loader@sender.test", [user(u)], body(u, k).encode())

    threads = [threading.Thread(target=worker, args=(users[i::5],)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def gdb_call(pid, expr):
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "set unwindonsignal on",
                    "-ex", f"call {expr}", "-ex", "call (int)fflush(0)"],
                   capture_output=True)


def dump(a, pid, tag):
    if not a.dump:
        return
    os.makedirs(a.dump, exist_ok=True)
    os.chmod(a.dump, 0o777)   # the daemon writes malloc_info as its own user
    for f in ("smaps", "status", "smaps_rollup"):
        with open(f"/proc/{pid}/{f}") as src, open(f"{a.dump}/{tag}.{f}", "w") as dst:
            dst.write(src.read())
    gdb_call(pid, f'(int)malloc_info(0, (void*)fopen("{a.dump}/{tag}.malloc", "w"))')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("petrel")
    ap.add_argument("n", type=int)
    ap.add_argument("--work", default="/tmp/petrel-idle-probe")
    ap.add_argument("--port-base", type=int, default=27000)
    ap.add_argument("--setup", action="store_true")
    ap.add_argument("--mail", type=int, default=0)
    ap.add_argument("--open-time", type=int, default=75)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--dump")
    ap.add_argument("--trim", action="store_true")
    ap.add_argument("--warm-first", type=int, default=1)
    ap.add_argument("--pre")
    ap.add_argument("--post")
    ap.add_argument("--loadgen", default=os.path.join(ROOT, "build-bench", "bench",
                                                      "bench-loadgen"))
    a = ap.parse_args()

    p = servers.Petrel(a.work, a.petrel, a.port_base)
    port = p.ports["imaps"]
    users = max(1, a.n // 10)
    if a.setup:
        shutil.rmtree(a.work, ignore_errors=True)
        os.makedirs(a.work)
        os.chmod(a.work, 0o755)
        p.setup(servers.write_accounts(a.work))
        p.start()
        try:
            if a.mail:
                load_mail(p, list(range(1, a.mail + 1)))
            warm(a, port, 1, users)
        finally:
            p.stop()
    p.start()
    try:
        warm(a, port, a.warm_first, WARM_LOGINS)
        time.sleep(2)
        pid = p.proc.pid
        if a.pre:
            subprocess.Popen(a.pre.format(pid=pid), shell=True)
            time.sleep(10)
        pss0, rss0 = measure.memory_kib([pid])
        dump(a, pid, "before")
        t0 = time.monotonic()
        gen = subprocess.Popen(
            loadgen_cmd(a, port, "idle", a.clients,
                        ["--connections", str(a.n), "--users", str(users), "--user-first", "1",
                         "--duration", "600", "--liveness-only",
                         "--open-time", str(a.open_time)]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = gen.stdout.readline().split()
        opened = time.monotonic() - t0
        if len(first) != 2 or first[0] != "ready":
            sys.exit("load generator: " + " ".join(first) + gen.stderr.read())
        held = int(first[1])
        time.sleep(SETTLE)
        pss1, rss1 = measure.memory_kib([pid])
        dump(a, pid, "after")
        out = {"connections": held, "requested": a.n, "open_s": round(opened, 1),
               "pss_kib_per_conn": round((pss1 - pss0) / held, 2),
               "rss_kib_per_conn": round((rss1 - rss0) / held, 2),
               "pss_before_kib": pss0, "pss_after_kib": pss1,
               "fds": len(os.listdir(f"/proc/{pid}/fd"))}
        if a.trim:
            gdb_call(pid, "(int)malloc_trim(0)")
            time.sleep(1)
            pss2, _ = measure.memory_kib([pid])
            out["pss_kib_per_conn_after_malloc_trim"] = round((pss2 - pss0) / held, 2)
        if a.post:
            subprocess.run(a.post.format(pid=pid), shell=True)
        res, _ = gen.communicate("")
        res = json.loads(res)
        out["loadgen_errors"] = res["errors"]
        print(json.dumps(out))
        return 1 if res["errors"] and not a.post else 0
    finally:
        p.stop()


if __name__ == "__main__":
    sys.exit(main())
