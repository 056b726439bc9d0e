"""Helpers of the SMTP end-to-end tests: reading what was delivered (through
`petrel message list/show`) and what was queued (the spool's envelopes)."""
import json
import os
import re
import subprocess
import time


from conftest import DEMO_PASSWORD, DEMO_USER, PETREL_BIN, plain_response


# The queue's runner delivers what these tests queue (forwarders, relay,
# DSNs) at once: to nowhere here, so it would bounce or remove it. Through a
# relay host that refuses connections, each message stays queued (deferred).
HOLD_QUEUE = {"queue_relayhost": "127.0.0.1:1"}


def inbox(p, address, mailbox="INBOX"):
    """The messages of an account's mailbox, as bytes, in UID order."""
    r = p.cli("message", "list", address, "--mailbox", mailbox, json=True, expect=None)
    assert r.returncode == 0, r.stderr
    msgs = json.loads(r.stdout)["messages"]
    out = []
    for m in msgs:
        s = subprocess.run([PETREL_BIN, "-c", str(p.conf), "message", "show", address,
                            str(m["uid"]), "--mailbox", mailbox], capture_output=True,
                           timeout=60)
        assert s.returncode == 0, s.stderr
        out.append(s.stdout)
    return out


def inbox_count(p, address):
    r = p.cli("message", "list", address, json=True, expect=None)
    assert r.returncode == 0, r.stderr
    return len(json.loads(r.stdout)["messages"])


def xtext_decode(s):
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


def queued(p):
    """The queue's envelopes as dicts (keys as in the file; "rcpt" a list of
    dicts)."""
    envdir = p.dir / "queue" / "env"
    out = []
    if not envdir.exists():
        return out
    for f in sorted(envdir.iterdir()):
        env = {"rcpt": [], "id": f.name}
        try:
            text = f.read_text()
            env["message"] = (p.dir / "queue" / "msg" / f.name).read_bytes()
        except FileNotFoundError:
            continue        # removed meanwhile (delivered, or taken back)
        for line in text.splitlines():
            key, _, val = line.partition(" ")
            if key == "rcpt":
                env["rcpt"].append({k: xtext_decode(v) for k, v in
                                    (kv.split("=", 1) for kv in val.split(" "))})
            else:
                env[key] = xtext_decode(val)
        out.append(env)
    return out


def wait_count(fn, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        n = fn()
        if n == want or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def message(subject="test", frm="sender@remote.test", to=DEMO_USER, body="hello\r\n",
            extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s" % (frm, to, subject, extra,
                                                                body))


def mx_session(p, source=None, helo="client.test"):
    """An EHLO'd plaintext MX session."""
    c = p.connect("mx", source=source)
    code, _ = c.smtp_reply()
    assert code == 220
    c.ehlo(helo)
    return c


def send_data(c, text):
    """DATA with dot-stuffing; returns the final reply."""
    code, lines = c.smtp("DATA")
    assert code == 354, lines
    if isinstance(text, str):
        text = text.encode()
    lines_ = text.split(b"\r\n")
    stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines_)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    c.send(stuffed + b".\r\n")
    return c.smtp_reply()


def submission_session(p, service="submission", user=DEMO_USER, password=DEMO_PASSWORD):
    c = p.smtp_tls(service)
    code, lines = c.smtp("AUTH PLAIN " + plain_response(user, password))
    assert code == 235, lines
    return c


def open_temp_files(p):
    """Message files being written that have no name: O_TMPFILE files in
    DATA/tmp held open by the daemon ("DATA/tmp/#123 (deleted)")."""
    if p.proc is None or p.proc.poll() is not None:
        return []
    tmp, out = str((p.dir / "tmp").resolve()) + "/", []
    fd_dir = "/proc/%d/fd" % p.proc.pid
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return []
    for fd in fds:
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(tmp):
            out.append(target)
    return out
