"""A quick throughput measurement in the manner of Postfix's smtp-source:
N concurrent clients send 4 KiB messages to one local mailbox over the MX
port; each 250 means the message is durable in the mailbox. Skipped unless
PETREL_BENCH=1 (numbers are printed; bench/ holds the comparison suite).

    PETREL_BENCH=1 /usr/bin/python3 -m pytest tests/e2e/test_smtp_bench.py -s
"""
import multiprocessing
import os
import socket
import time

import pytest

from conftest import DEMO_USER

BODY = b"From: bench@remote.test\r\nTo: demo@example.test\r\nSubject: bench\r\n\r\n" + \
    (b"x" * 76 + b"\r\n") * 52          # ~4 KiB
MESSAGES = int(os.environ.get("PETREL_BENCH_MESSAGES", "2000"))

pytestmark = pytest.mark.skipif(os.environ.get("PETREL_BENCH") != "1",
                                reason="set PETREL_BENCH=1 to run the benchmark")


def _reply(f):
    while True:
        line = f.readline()
        if not line:
            raise EOFError
        if line[3:4] != b"-":
            return int(line[:3])


def _client(port, count, reuse, out):
    sock = f = None
    done = 0
    for i in range(count):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port))
            f = sock.makefile("rb")
            assert _reply(f) == 220
            sock.sendall(b"EHLO bench.test\r\n")
            assert _reply(f) == 250
        # PIPELINING, as smtp-source does.
        sock.sendall(b"MAIL FROM:<bench@remote.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" %
                     DEMO_USER.encode())
        assert _reply(f) == 250 and _reply(f) == 250 and _reply(f) == 354
        sock.sendall(BODY + b".\r\n")
        assert _reply(f) == 250
        done += 1
        if not reuse:
            sock.sendall(b"QUIT\r\n")
            _reply(f)
            f.close()
            sock.close()
            sock = None
    if sock is not None:
        sock.sendall(b"QUIT\r\n")
        sock.close()
    out.put(done)


def _run(port, clients, total, reuse):
    q = multiprocessing.Queue()
    per = total // clients
    procs = [multiprocessing.Process(target=_client, args=(port, per, reuse, q))
             for _ in range(clients)]
    cpu0 = os.times()
    t0 = time.monotonic()
    for p in procs:
        p.start()
    done = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    return done, time.monotonic() - t0


def _server_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("clients", [1, 20])
@pytest.mark.parametrize("reuse", [False, True], ids=["conn-per-msg", "one-conn"])
def test_throughput(petrel_factory, clients, reuse):
    p = petrel_factory()
    port = p.ports["mx"]
    # Pass the MX pregreet wait once, as a returning client would have.
    _run(port, 1, 1, True)
    cpu0 = _server_cpu(p.pid)
    done, secs = _run(port, clients, MESSAGES, reuse)
    cpu = _server_cpu(p.pid) - cpu0
    print("\nSMTP bench: clients=%d %s messages=%d seconds=%.2f rate=%.0f msg/s "
          "server_cpu=%.0f us/msg" % (clients, "one-conn" if reuse else "conn-per-msg",
                                      done, secs, done / secs, cpu / done * 1e6))
    assert done == MESSAGES // clients * clients
