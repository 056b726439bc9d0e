#!/usr/bin/python3
"""Memory cost of idle TLS connections to Petrel.

Starts a fresh Petrel (init in a temporary directory, loopback, port base
30000), opens N implicit-TLS connections to one port, reads each greeting,
and reports the daemon's resident memory growth per connection (VmRSS from
/proc, before the first and after the last connection, after letting the
allocator settle). Usage: bench/idle_tls.py [N] [service-port-offset]
(default 2000 connections to submissions, offset 465).
"""
import os
import resource
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


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    offset = int(sys.argv[2]) if len(sys.argv) > 2 else 465
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
                            f"max_connections_per_ip = {n + 10}")
        text = text.replace("log_level = info", "log_level = warn")
        open(conf, "w").write(text)
        log = open(os.path.join(tmp, "log"), "w+")
        proc = subprocess.Popen([PETREL, "-c", conf, "serve"], stderr=log,
                                preexec_fn=lambda: resource.setrlimit(
                                    resource.RLIMIT_NOFILE, (n + 1000, n + 1000)))
        try:
            time.sleep(1.0)
            ctx = ssl.create_default_context(cafile=os.path.join(data, "tls", "cert.pem"))
            warm = []
            for _ in range(50):  # let the allocator and OpenSSL reach steady state
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", BASE + offset)),
                                    server_hostname="localhost")
                s.recv(512)
                warm.append(s)
            time.sleep(0.5)
            before = rss_kib(proc.pid)
            conns = []
            for _ in range(n):
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", BASE + offset)),
                                    server_hostname="localhost")
                s.recv(512)
                conns.append(s)
            time.sleep(1.0)
            after = rss_kib(proc.pid)
            per = (after - before) / n
            print(f"connections={n} port_offset={offset} rss_before_kib={before} "
                  f"rss_after_kib={after} per_connection_kib={per:.1f}")
            for s in conns + warm:
                s.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
