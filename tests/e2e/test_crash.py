"""Crash safety of the mail store: a writer (tests/crash/crash_writer) appends
a stream of distinct messages and prints "ACK <uid> <sha256>" once each
append is durable; it is killed with SIGKILL at random moments, several
times, restarted each time on the same data. Then, through the CLI, every
acknowledged message must be there byte for byte under its UID, and nothing
else may be there but, at most, the one message of each round that was in
flight when the writer died, whole."""
import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import DEMO_USER, IS_ROOT, PETREL_BIN

ROUNDS = 6
WRITER = os.environ.get("PETREL_CRASH_WRITER",
                        str(Path(PETREL_BIN).resolve().parent / "tests" / "crash" /
                            "crash_writer"))


def run_writer(p, account_id, seed, kill_after):
    """Starts the writer, kills it after kill_after seconds (or once it is
    done starting, whichever is later); returns its stdout lines."""
    kw = {}
    if IS_ROOT:
        kw = {"user": "petrel", "group": "petrel", "extra_groups": []}
    proc = subprocess.Popen([WRITER, str(p.dir), str(account_id), str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    lines = []
    started = threading.Event()

    def reader():
        for raw in proc.stdout:
            lines.append(raw.decode().rstrip("\n"))
            started.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert started.wait(20), "writer printed nothing: %s" % proc.stderr.read()
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t.join(10)
    err = proc.stderr.read().decode()
    assert proc.returncode == -signal.SIGKILL, "writer died by itself: %s" % err
    return lines


@pytest.mark.skipif(not os.access(WRITER, os.X_OK), reason="no crash_writer built")
def test_kill_9_during_appends_loses_nothing_acknowledged(petrel_factory):
    p = petrel_factory(start=False)
    accounts = json.loads(p.cli("account", "list", json=True).stdout)
    account_id = [a["id"] for a in accounts if a["address"] == DEMO_USER][0]

    rng = random.Random()
    acked = {}          # uid -> sha256
    inflight = []       # sha256 of messages begun but not acknowledged
    for rnd in range(ROUNDS):
        lines = run_writer(p, account_id, 1000 + rnd, rng.uniform(0.05, 1.5))
        begun = None
        for line in lines:
            kind, *rest = line.split()
            if kind == "BEGIN":
                begun = rest[0]
            elif kind == "ACK":
                uid, sha = int(rest[0]), rest[1]
                assert sha == begun
                assert uid not in acked, "UID %d given twice" % uid
                acked[uid] = sha
                begun = None
        if begun is not None:
            inflight.append(begun)
    assert len(acked) >= ROUNDS, "too few appends to prove anything: %d" % len(acked)

    # Reopen through the CLI: the list, then every message's bytes.
    listed = json.loads(p.cli("message", "list", DEMO_USER, json=True).stdout)["messages"]
    uids = [m["uid"] for m in listed]
    assert uids == sorted(set(uids))
    out = p.dir.parent / "crash-export"
    p.cli("export", "maildir", DEMO_USER, out, timeout=120)
    by_uid = {}
    base_uid = {}
    for line in (out / "dovecot-uidlist").read_text().splitlines()[1:]:
        uid, base = line.split(" :", 1)
        base_uid[base] = int(uid)
    for f in (out / "cur").iterdir():
        by_uid[base_uid[f.name.split(":2,")[0]]] = hashlib.sha256(f.read_bytes()).hexdigest()
    assert sorted(by_uid) == uids

    for uid, sha in acked.items():
        assert uid in by_uid, "acknowledged UID %d lost" % uid
        assert by_uid[uid] == sha, "acknowledged UID %d damaged" % uid
    extra = {uid: sha for uid, sha in by_uid.items() if uid not in acked}
    for uid, sha in extra.items():
        assert sha in inflight, "UID %d is neither acknowledged nor in flight" % uid
        inflight.remove(sha)      # each in-flight message at most once

    # Counts agree with what is there; `message show` agrees with the export.
    boxes = json.loads(p.cli("mailbox", "list", DEMO_USER, json=True).stdout)["mailboxes"]
    inbox = [b for b in boxes if b["name"] == "INBOX"][0]
    assert inbox["messages"] == len(uids)
    assert inbox["size"] == sum(m["size"] for m in listed)
    assert inbox["uidnext"] > max(uids)
    for uid in rng.sample(uids, min(10, len(uids))):
        r = subprocess.run([PETREL_BIN, "-c", str(p.conf), "message", "show", DEMO_USER,
                            str(uid)], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(r.stdout).hexdigest() == by_uid[uid]
