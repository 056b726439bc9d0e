"""SIGKILL during SMTP delivery: several clients send to the MX port and keep
a ledger of the messages that got a 250; the server is killed at random
moments and restarted, a few times. Afterwards every message in the ledger
is in each of its recipients' INBOX exactly once and intact, and nothing in
any mailbox is partial or unknown. A message whose 250 was lost with the
server may be in some of its mailboxes or none (the store commits each
account on its own), but each copy is whole."""
import hashlib
import json
import random
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import DEMO_USER, LineClient, PETREL_BIN

ACCOUNTS = [DEMO_USER, "crash1@example.test", "crash2@example.test"]
CLIENTS = 4
ROUNDS = 4


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = {}     # subject -> (recipients, message bytes)
        self.acked = set()      # subjects that got 250
        self.refused = 0        # transient failures seen (4xx, lost connections)

    def attempt(self, subject, rcpts, data):
        with self.lock:
            self.attempted[subject] = (rcpts, data)

    def ack(self, subject):
        with self.lock:
            self.acked.add(subject)


def make_message(rng, subject):
    lines = ["%s line %d %s" % (subject, i, rng.getrandbits(64)) for i in
             range(rng.randint(1, 400))]
    body = "\r\n".join(lines) + "\r\n"
    head = ("From: crash@remote.test\r\nTo: crash@example.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@crash.test>\r\nX-Body-SHA256: %s\r\n\r\n"
            % (subject, subject, hashlib.sha256(body.encode()).hexdigest()))
    return (head + body).encode()


def client(port, idx, ledger, stop):
    rng = random.Random(idx * 7919 + int(time.time()))
    seq = 0
    while not stop.is_set():
        c = None
        try:
            c = LineClient(port, timeout=5)
            if c.smtp_reply()[0] != 220:
                raise EOFError("no greeting")
            c.ehlo("crash%d.test" % idx)
            for _ in range(rng.randint(1, 6)):
                if stop.is_set():
                    break
                seq += 1
                subject = "crash-c%d-%d" % (idx, seq)
                rcpts = rng.sample(ACCOUNTS, rng.choice((1, 1, 2)))
                data = make_message(rng, subject)
                ledger.attempt(subject, rcpts, data)
                if c.smtp("MAIL FROM:<crash@remote.test>")[0] != 250:
                    raise EOFError("MAIL refused")
                for r in rcpts:
                    if c.smtp("RCPT TO:<%s>" % r)[0] != 250:
                        raise EOFError("RCPT refused")
                if c.smtp("DATA")[0] != 354:
                    raise EOFError("DATA refused")
                c.send(data + b".\r\n")
                code, _ = c.smtp_reply()
                if code == 250:
                    ledger.ack(subject)
                else:
                    with ledger.lock:
                        ledger.refused += 1
                time.sleep(rng.uniform(0, 0.02))
            c.smtp("QUIT")
        except (OSError, EOFError, AssertionError):
            with ledger.lock:
                ledger.refused += 1
            time.sleep(0.05)
        finally:
            if c is not None:
                c.close()


def show(p, account, uid):
    r = subprocess.run([PETREL_BIN, "-c", str(p.conf), "message", "show", account, str(uid)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_sigkill_loses_no_acknowledged_message(petrel_factory):
    p = petrel_factory(config={"smtp_pregreet_delay": "0"}, start=False)
    for a in ACCOUNTS[1:]:
        p.add_account(a, "crash password")
    p.start()
    ledger = Ledger()
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(p.ports["mx"], i, ledger, stop),
                                daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    rng = random.Random()
    try:
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(0.5, 1.5))
            p.proc.send_signal(signal.SIGKILL)
            p.proc.wait()
            p.kill()
            time.sleep(rng.uniform(0, 0.2))
            p.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert len(ledger.acked) >= 20, (len(ledger.acked), ledger.refused)

    # What each INBOX holds, read back from the store.
    stored = {}                  # (account, subject) -> [uids]
    with ThreadPoolExecutor(8) as pool:
        for account in ACCOUNTS:
            r = p.cli("message", "list", account, json=True)
            msgs = json.loads(r.stdout)["messages"]
            futures = {m["uid"]: pool.submit(show, p, account, m["uid"]) for m in msgs}
            for m in msgs:
                text = futures[m["uid"]].result()
                assert len(text) == m["size"], (account, m)
                subject = m["subject"]
                assert subject in ledger.attempted, (account, subject)
                rcpts, data = ledger.attempted[subject]
                # Intact: Return-Path, our Received:, then the message as sent.
                assert account in rcpts, (account, subject)
                assert text.startswith(b"Return-Path: <crash@remote.test>\r\nReceived: ")
                assert text.endswith(data), (account, subject, len(text), len(data))
                stored.setdefault((account, subject), []).append(m["uid"])
    for key, uids in stored.items():
        assert len(uids) == 1, (key, uids)
    lost = [(a, s) for s in ledger.acked for a in ledger.attempted[s][0]
            if (a, s) not in stored]
    assert lost == [], lost
