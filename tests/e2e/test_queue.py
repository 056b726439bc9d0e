"""
The outbound queue end to end: several "hosts" on loopback addresses, a DNS
server (unbound) on 127.0.0.53 publishing their MX records, Petrel A sending
to a second Petrel B and to Postfix's smtp-sink (test_queue_remote.py has a
whole Postfix, TLS policies, REQUIRETLS, IPv6 and reloads).

    127.0.0.1   Petrel A (submission, MX for example.test), the test's sender
    127.0.0.3   Petrel B: MX of dest.test, nomx.test (A record only)
    127.0.0.4   Postfix's smtp-sink (pf.test)
    127.0.0.5   a hostile SMTP server (hostile.test)
    127.0.0.6   down.test: nothing listens until the test starts Petrel C
    127.0.0.7   crash.test: likewise, for the SIGKILL test
    127.0.0.9   down.multi.test: nothing listens (multi.test's first MX)

Every destination listens on the same port P (A's queue_smtp_port).
"""
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, wait_for
from queue_helpers import (Dns, dsn_parts, free_port, make_petrel, mailbox,
                           queue_ids, queue_list, sender_config, submit, wait_deferred,
                           wait_mail, wait_queue_empty)

B_IP, PF_IP, HOSTILE_IP, DOWN_IP, CRASH_IP, DEAD_IP = (
    "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.9")


def zone(port_unused=None):
    return [
        "dest.test. MX 10 mx.dest.test.",
        "mx.dest.test. A %s" % B_IP,
        "nomx.test. A %s" % B_IP,
        "multi.test. MX 5 down.multi.test.",
        "multi.test. MX 10 mx.dest.test.",
        "down.multi.test. A %s" % DEAD_IP,
        "nullmx.test. MX 0 .",
        "pf.test. MX 10 mx.pf.test.",
        "mx.pf.test. A %s" % PF_IP,
        "hostile.test. MX 10 mx.hostile.test.",
        "mx.hostile.test. A %s" % HOSTILE_IP,
        "down.test. MX 10 mx.down.test.",
        "mx.down.test. A %s" % DOWN_IP,
        "crash.test. MX 10 mx.crash.test.",
        "mx.crash.test. A %s" % CRASH_IP,
        "dead.test. MX 10 down.multi.test.",
    ]


@pytest.fixture(scope="module")
def dns(e2e_root):
    if shutil.which("unbound") is None:
        pytest.skip("unbound is not installed (apt-get install unbound)")
    d = Dns(e2e_root, zone())
    yield d
    d.stop()


@pytest.fixture(scope="module")
def mx_port():
    return free_port([B_IP, PF_IP, HOSTILE_IP, DOWN_IP, CRASH_IP, DEAD_IP])


# ---------------------------------------------------------------- the hosts

@pytest.fixture(scope="module")
def hosts(module_factory, dns, mx_port):
    b = make_petrel(module_factory, "B", "mx.dest.test", B_IP, mx_port,
                    domains=["dest.test", "nomx.test"],
                    accounts=["rcpt@dest.test", "other@dest.test", "relay@dest.test",
                              "a@nomx.test"])
    a = make_petrel(module_factory, "A", "a.test", None, None,
                    config=sender_config(dns, mx_port), accounts=[DEMO_USER])
    return a, b


# ---------------------------------------------------------------- tests

def test_delivers_to_second_petrel(hosts):
    a, b = hosts
    since = b.log_size()
    submit(a, ["rcpt@dest.test", "other@dest.test"], subject="to B")
    msgs = wait_mail(b, "rcpt@dest.test")
    assert msgs[-1]["Subject"] == "to B"
    wait_mail(b, "other@dest.test")
    wait_queue_empty(a)
    # one transaction for both recipients of the domain, over TLS
    log = b.log(since)
    assert re.search(r"event=accepted .*rcpts=2 .*stored=2", log), log
    assert "event=tls" in log


def test_a_record_fallback(hosts):
    a, b = hosts
    submit(a, ["a@nomx.test"], subject="no mx")
    assert wait_mail(b, "a@nomx.test")[-1]["Subject"] == "no mx"
    wait_queue_empty(a)


def test_second_mx_when_first_is_down(hosts):
    a, b = hosts
    # multi.test: its first MX (127.0.0.9) refuses; the second is B, which
    # does not host multi.test and refuses the recipient: a 5xx from B
    # proves the second MX was reached.
    submit(a, ["x@multi.test"], subject="multi")
    msgs = wait_mail(a, DEMO_USER)
    head, rcpts = dsn_parts(msgs[-1])
    assert rcpts[0]["Remote-MTA"].endswith("mx.dest.test")
    wait_queue_empty(a)


def test_550_bounces_to_local_sender(hosts):
    a, b = hosts
    before = len(mailbox(a, DEMO_USER))
    submit(a, ["nobody@dest.test"], subject="will bounce")
    msgs = wait_mail(a, DEMO_USER, before + 1)
    dsn = msgs[-1]
    assert dsn["Subject"].startswith("Undelivered")
    head, rcpts = dsn_parts(dsn)
    assert head["Reporting-MTA"] == "dns; a.test"
    r = rcpts[0]
    assert r["Action"] == "failed"
    assert r["Final-Recipient"].lower() == "rfc822;nobody@dest.test"
    assert r["Status"].startswith("5.")
    assert r["Diagnostic-Code"].startswith("smtp; 550")
    assert r["Remote-MTA"] == "dns; mx.dest.test"
    # the original message comes back
    orig = list(dsn.iter_parts())[2]
    assert orig.get_content_type() in ("message/rfc822", "text/rfc822-headers")
    assert "will bounce" in orig.as_string()
    wait_queue_empty(a)


def test_null_mx_bounces_at_once(hosts):
    a, b = hosts
    before = len(mailbox(a, DEMO_USER))
    submit(a, ["x@nullmx.test"], subject="null mx")
    msgs = wait_mail(a, DEMO_USER, before + 1)
    head, rcpts = dsn_parts(msgs[-1])
    assert rcpts[0]["Status"] == "5.1.10"
    assert rcpts[0]["Action"] == "failed"
    wait_queue_empty(a)


def test_down_destination_defers_notifies_then_delivers(module_factory, dns, mx_port):
    a = make_petrel(module_factory, "A2", "a2.test", None, None,
                    config=sender_config(dns, mx_port, queue_delay_notice="2s"),
                    accounts=[DEMO_USER])
    submit(a, ["u@down.test"], subject="while down")
    e = wait_deferred(a, "u@down.test")
    r = e["recipients"][0]
    assert r["attempts"] >= 1 and "connect" in r["last_reply"].lower(), r
    # a delay notice once the message is older than queue_delay_notice
    msgs = wait_mail(a, DEMO_USER, 1, timeout=30)
    head, rcpts = dsn_parts(msgs[0])
    assert rcpts[0]["Action"] == "delayed"
    assert rcpts[0]["Status"].startswith("4.")
    assert "Will-Retry-Until" in rcpts[0]
    # the destination comes up: the next retry (or a flush) delivers
    c = make_petrel(module_factory, "C", "mx.down.test", DOWN_IP, mx_port,
                    domains=["down.test"], accounts=["u@down.test"])
    a.cli("queue", "flush")
    got = wait_mail(c, "u@down.test")
    assert got[0]["Subject"] == "while down"
    wait_queue_empty(a)
    # only one delay notice
    assert len(mailbox(a, DEMO_USER)) == 1


def test_survives_sigkill(module_factory, dns, mx_port):
    a = make_petrel(module_factory, "A3", "a3.test", None, None, config=sender_config(dns, mx_port),
                    accounts=[DEMO_USER])
    subjects = ["crash %d" % i for i in range(20)]
    for subj in subjects:
        submit(a, ["v@crash.test"], subject=subj)
    wait_for(lambda: len(queue_list(a)) == 20 and all(
        r["state"] == "deferred" for e in queue_list(a) for r in e["recipients"]),
        timeout=30, interval=0.3)
    a.kill()        # SIGKILL
    assert len(queue_list(a)) == 20
    e = make_petrel(module_factory, "E", "mx.crash.test", CRASH_IP, mx_port,
                    domains=["crash.test"], accounts=["v@crash.test"])
    a.start()
    got = wait_mail(e, "v@crash.test", 20, timeout=60)
    wait_queue_empty(a)
    assert sorted(m["Subject"] for m in got) == sorted(subjects)


def test_srs_for_forwards(hosts):
    a, b = hosts
    a.cli("alias", "add", "fwd@example.test", "rcpt@dest.test")
    before = len(mailbox(b, "rcpt@dest.test"))
    msg = ("From: <someone@outside.test>\r\nTo: <fwd@example.test>\r\n"
           "Subject: forwarded\r\n\r\nvia a forwarder\r\n")
    with smtplib.SMTP("127.0.0.1", a.ports["mx"], timeout=20) as s:
        s.sendmail("someone@outside.test", ["fwd@example.test"], msg.encode())
    got = wait_mail(b, "rcpt@dest.test", before + 1)
    rp = got[-1]["Return-Path"]
    assert re.match(r"<SRS0=[a-z2-7]{6}=[a-z2-7]{2}=outside\.test=someone@a\.test>$", rp,
                    re.I), rp


def test_srs_bounce_goes_back_to_the_original_sender(hosts):
    """A bounce to the SRS sender of a forward reaches the original sender;
    a forged SRS address is refused."""
    a, b = hosts
    a.cli("alias", "add", "fwd2@example.test", "rcpt@dest.test")
    before = len(mailbox(b, "rcpt@dest.test"))
    msg = ("From: <rcpt@dest.test>\r\nTo: <fwd2@example.test>\r\n"
           "Subject: to be bounced\r\n\r\nbody\r\n")
    with smtplib.SMTP("127.0.0.1", a.ports["mx"], timeout=20) as s:
        s.sendmail("rcpt@dest.test", ["fwd2@example.test"], msg.encode())
    got = wait_mail(b, "rcpt@dest.test", before + 1)
    srs = got[-1]["Return-Path"].strip("<>")
    assert srs.upper().startswith("SRS0="), srs
    bounce = ("From: MAILER-DAEMON@elsewhere.test\r\nTo: <%s>\r\n"
              "Subject: Undelivered Mail Returned to Sender\r\n\r\nbounced\r\n" % srs)
    with smtplib.SMTP("127.0.0.1", a.ports["mx"], timeout=20) as s:
        s.sendmail("", [srs], bounce.encode())
        local, domain = srs.rsplit("@", 1)
        forged = local[:5] + ("a" if local[5] != "a" else "b") + local[6:] + "@" + domain
        code, _ = s.rcpt(forged) if s.mail("")[0] == 250 else (None, None)
        assert code == 550, code
    got = wait_mail(b, "rcpt@dest.test", before + 2)
    assert got[-1]["Subject"] == "Undelivered Mail Returned to Sender"


def test_runner_bounce_to_our_srs_sender_goes_to_the_original_sender(hosts):
    """A message whose sender is one of our SRS addresses fails: the runner's
    DSN is reversed like SMTP reverses one, back to the original sender (the
    runner once resolved it with SRS keys it was never given, an
    uninitialised pointer)."""
    a, b = hosts
    a.cli("alias", "add", "fwd3@example.test", "rcpt@dest.test")
    a.cli("alias", "add", "fwd4@example.test", "nobody@dest.test")
    before = len(mailbox(b, "rcpt@dest.test"))
    msg = ("From: <rcpt@dest.test>\r\nTo: <fwd3@example.test>\r\n"
           "Subject: for an SRS sender\r\n\r\nbody\r\n")
    with smtplib.SMTP("127.0.0.1", a.ports["mx"], timeout=20) as s:
        s.sendmail("rcpt@dest.test", ["fwd3@example.test"], msg.encode())
    got = wait_mail(b, "rcpt@dest.test", before + 1)
    srs = got[-1]["Return-Path"].strip("<>")
    assert srs.upper().startswith("SRS0="), srs
    # from our SRS address to a forward that B refuses (550)
    msg = ("From: <%s>\r\nTo: <fwd4@example.test>\r\n"
           "Subject: refused downstream\r\n\r\nbody\r\n" % srs)
    with smtplib.SMTP("127.0.0.1", a.ports["mx"], timeout=20) as s:
        s.sendmail(srs, ["fwd4@example.test"], msg.encode())
    got = wait_mail(b, "rcpt@dest.test", before + 2)
    head, rcpts = dsn_parts(got[-1])
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Final-Recipient"].lower() == "rfc822;nobody@dest.test"
    wait_queue_empty(a)


class Hostile(threading.Thread):
    """An SMTP server that misbehaves, a different way per connection."""

    def __init__(self, ip, port):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(5)
        self.count = 0
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            mode = self.count % 3
            try:
                c.settimeout(5)
                if mode == 1:
                    c.sendall(b"220 hi\r\nGARBAGE AFTER GREETING\r\n")
                    c.recv(1000)
                elif mode == 2:
                    c.sendall(b"220 hi\r\n")
                    c.recv(1000)
                    for _ in range(5000):
                        c.sendall(b"250-endless\r\n")
                else:
                    c.sendall(b"220 hi\r\n")
                    c.recv(1000)
                    c.sendall(b"250-" + b"x" * 100000 + b"\r\n")
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        self.sock.close()


def test_hostile_server_cannot_corrupt_the_queue(hosts, mx_port):
    a, b = hosts
    h = Hostile(HOSTILE_IP, mx_port)
    h.start()
    try:
        since = a.log_size()
        submit(a, ["x@hostile.test"], subject="to a hostile server")
        for _ in range(3):
            e = wait_deferred(a, "x@hostile.test")
            a.cli("queue", "flush", e["id"])
        assert wait_for(lambda: h.count >= 3, timeout=30)
        log = a.log(since)
        assert "bad reply" in log or "out of turn" in log, log
        e = wait_deferred(a, "x@hostile.test")
        assert a.running()
        a.cli("queue", "delete", e["id"])
        assert e["id"] not in queue_ids(a)
    finally:
        h.close()


def test_cli_hold_release_bounce(hosts):
    a, b = hosts
    before = len(mailbox(a, DEMO_USER))
    submit(a, ["y@dead.test"], subject="admin")
    e = wait_deferred(a, "y@dead.test")
    qid = e["id"]
    out = a.cli("queue", "show", qid).stdout
    assert "y@dead.test" in out and "Subject: admin" in out
    a.cli("queue", "hold", qid)
    assert [x for x in queue_list(a) if x["id"] == qid][0]["hold"] is True
    a.cli("queue", "release", qid)
    assert [x for x in queue_list(a) if x["id"] == qid][0]["hold"] is False
    a.cli("queue", "bounce", qid)
    msgs = wait_mail(a, DEMO_USER, before + 1)
    head, rcpts = dsn_parts(msgs[-1])
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Final-Recipient"].lower() == "rfc822;y@dead.test"
    assert wait_for(lambda: qid not in queue_ids(a), timeout=10)
    a.cli("queue", "show", qid, expect=1)


def test_relayhost_with_auth(module_factory, hosts, dns, mx_port, e2e_root):
    a, b = hosts
    pwfile = Path(tempfile.mkdtemp(dir=e2e_root)) / "relay.pw"
    pwfile.write_text(DEMO_PASSWORD + "\n")
    os.chmod(pwfile.parent, 0o755)
    relay = make_petrel(
        module_factory, "R", "r.test", None, None,
        config=sender_config(dns, mx_port, queue_dns_resolver="127.0.0.1:9",
                             queue_relayhost="127.0.0.1:%d" % b.ports["submission"],
                             queue_relayhost_user="relay@dest.test",
                             queue_relayhost_password_file=str(pwfile)),
        accounts=[DEMO_USER], start=False)
    relay.give_to_daemon_user(pwfile)
    relay.start()
    before = len(mailbox(b, "a@nomx.test"))
    # the relay host (B's submission port) takes mail from relay@dest.test
    msg = submit(relay, ["a@nomx.test"], subject="via relay", sender=DEMO_USER)
    assert msg
    e = wait_for(lambda: queue_list(relay) == [] or None, timeout=20, interval=0.3)
    log = relay.log()
    assert "AUTH PLAIN" in log, relay.log_tail()
    # B refuses demo@example.test as a sender for relay@dest.test (policy),
    # or takes it: either way the relay host was used with AUTH.
    assert re.search(r"event=(smtp-sent|failed|deferred)", log)


def test_delivers_to_postfix_smtp_sink(hosts, mx_port, e2e_root):
    """Postfix's own SMTP test server (smtp-sink) as the destination: a full
    Postfix instance needs a system-wide config change (multi-instance), so
    the test uses the part of Postfix that speaks SMTP to us."""
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.access(sink, os.X_OK):
        pytest.skip("Postfix's smtp-sink is not installed (apt-get install postfix)")
    a, b = hosts
    dump = Path(tempfile.mkdtemp(dir=e2e_root))
    os.chmod(dump, 0o777)
    args = [sink, "-c", "-d", str(dump) + "/%M.", "-h", "mx.pf.test"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen(args + ["%s:%d" % (PF_IP, mx_port), "10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        submit(a, ["who@pf.test"], subject="to postfix",
               body="caf\u00e9 8-bit body\r\n".encode().decode("latin-1"))
        # smtp-sink creates its dump file when the transaction starts and
        # fills it as the message comes: wait for the message, not the file.
        def sunk():
            for f in dump.iterdir():
                if f.is_file() and b"to postfix" in f.read_bytes():
                    return f
            return None
        got = wait_for(sunk, timeout=30, interval=0.3)
        assert got, "nothing reached smtp-sink: %s\n%s" % (
            [(f.name, f.stat().st_size) for f in dump.iterdir()], a.log_tail())
        wait_queue_empty(a)
    finally:
        proc.terminate()
        proc.wait(10)


def message_count(p, address):
    r = p.cli("message", "list", address, json=True, expect=None)
    if r.returncode != 0:   # the store is busy with a delivery
        return -1
    listing = json.loads(r.stdout)
    return len(listing if isinstance(listing, list) else listing.get("messages", []))


def send_while_flushing(p, count, threads, tag):
    """Sends count messages to p's forwarder over `threads` concurrent MX
    connections while `petrel queue flush` runs over and over (each run
    opens the spool in a second process). Returns the failures."""
    failures = []
    done = threading.Event()
    lock = threading.Lock()
    body = ("x" * 76 + "\r\n") * 400     # ~30 KB: commits take a while

    def sender(k):
        for i in range(k, count, threads):
            msg = ("From: <someone@outside.test>\r\nTo: <fwd@example.test>\r\n"
                   "Subject: %s %d\r\n\r\n%s" % (tag, i, body))
            try:
                with smtplib.SMTP("127.0.0.1", p.ports["mx"], timeout=30) as s:
                    refused = s.sendmail("someone@outside.test", ["fwd@example.test"],
                                         msg.encode())
                    if refused:
                        raise smtplib.SMTPException(refused)
            except (smtplib.SMTPException, OSError) as e:
                with lock:
                    failures.append("%s %d: %r" % (tag, i, e))

    def flusher():
        while not done.is_set():
            p.cli("queue", "flush", expect=None, timeout=30)

    f = threading.Thread(target=flusher, daemon=True)
    f.start()
    senders = [threading.Thread(target=sender, args=(k,), daemon=True)
               for k in range(threads)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(60)
    done.set()
    f.join(60)
    return failures


def test_flush_while_receiving_loses_nothing(module_factory, hosts, dns, mx_port):
    """A benchmark lost a message to `queue: cannot store an envelope: No such
    file or directory`: each `petrel queue flush` opened the spool and removed
    "crash leftovers" from tmp/ and msg/, which were the files of commits the
    daemon had under way. Forwards to outside addresses arrive while the relay
    host is down, then again after a restart with a working one, each time
    with flushes running: every message is accepted, delivered once, and the
    spool never reports an error."""
    a, b = hosts
    b.add_account("stress@dest.test", DEMO_PASSWORD)
    down = "%s:%d" % (DEAD_IP, mx_port)
    f = make_petrel(module_factory, "F", "f.test", None, None,
                    config=sender_config(dns, mx_port, queue_relayhost=down,
                                         log_level="info"),
                    accounts=[DEMO_USER])
    f.cli("alias", "add", "fwd@example.test", "stress@dest.test")
    n = 40
    failures = send_while_flushing(f, n, 8, "down")
    assert not failures, "\n".join(failures) + "\n" + f.log_tail()
    assert len(queue_list(f)) == n
    assert f.stop() == 0
    f.set_config(queue_relayhost="%s:%d" % (B_IP, mx_port))
    f.start()
    failures = send_while_flushing(f, n, 8, "up")
    assert not failures, "\n".join(failures) + "\n" + f.log_tail()
    got = wait_for(lambda: message_count(b, "stress@dest.test") >= 2 * n, timeout=20,
                   interval=0.3)
    assert got, "%d of %d delivered\n%s" % (message_count(b, "stress@dest.test"), 2 * n,
                                            f.log_tail())
    wait_queue_empty(f, timeout=10)
    assert message_count(b, "stress@dest.test") == 2 * n
    log = f.log()
    for bad in ("event=queue-error", "queue-read-failed", "queue-update-failed",
                "queue-remove-failed"):
        assert bad not in log, "\n".join(l for l in log.splitlines() if bad in l)


def test_mail_delivered_while_the_spool_loads_is_not_loaded_again(module_factory, dns,
                                                                  mx_port):
    """At start the runner lists the spool on a worker while new mail is
    already committed and delivered. A message delivered and removed before
    the (older) listing came back was added again from it: a message without
    files, tried for ever ("cannot open a queued message"). A large spool of
    held messages makes the listing slow enough to overlap."""
    # the relay host answers at once (no greeting delay): deliveries are
    # quick next to the listing
    b = make_petrel(module_factory, "H", "h.test", None, None,
                    config={"smtp_pregreet_delay": "0", "log_level": "info"},
                    domains=["dest.test"], accounts=["early@dest.test"])
    g = make_petrel(module_factory, "G", "g.test", None, None,
                    config=sender_config(dns, mx_port, log_level="info",
                                         smtp_pregreet_delay="0",
                                         queue_relayhost="127.0.0.1:%d" % b.ports["mx"]),
                    accounts=[DEMO_USER], start=False)
    g.cli("alias", "add", "fwd@example.test", "early@dest.test")
    spool = g.dir / "queue"
    for sub in ("env", "msg"):
        (spool / sub).mkdir(parents=True, exist_ok=True)
        g.give_to_daemon_user(spool / sub)
    g.give_to_daemon_user(spool)
    held = 8000
    for i in range(held):
        qid = "held%08d" % i
        (spool / "msg" / qid).write_bytes(b"Subject: held\r\n\r\nheld\r\n")
        (spool / "env" / qid).write_text(
            "petrel-queue 1\nid %s\narrival %d\nsize 24\nsender someone@outside.test\n"
            "ret none\nbody 7bit\nsmtputf8 0\nrequiretls 0\nhold 1\n"
            "rcpt to=held@dest.test state=pending attempts=0 next=0 notify=0\nend\n"
            % (qid, int(time.time())))
        for sub in ("env", "msg"):
            g.give_to_daemon_user(spool / sub / qid)
    threads, cap = 6, 200
    errors, sent = [], []
    loaded = threading.Event()

    def sender(k):
        # from the moment the daemon listens, mail keeps coming while the
        # spool loads (at most cap messages)
        deadline = time.monotonic() + 20
        while not loaded.is_set() and len(sent) < cap and time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", g.ports["mx"], timeout=30) as s:
                    s.sendmail("someone@outside.test", ["fwd@example.test"],
                               b"Subject: early\r\n\r\nbody\r\n")
                sent.append(k)
            except ConnectionRefusedError:
                time.sleep(0.005)   # not listening yet
            except (smtplib.SMTPException, OSError) as e:
                errors.append(repr(e))
                return
    senders = [threading.Thread(target=sender, args=(k,)) for k in range(threads)]
    for t in senders:
        t.start()
    g.start()
    g.wait_log(r"event=queue-loaded messages=\d+", timeout=20)
    loaded.set()
    for t in senders:
        t.join(60)
    assert not errors, errors
    n = len(sent)
    # one more after the load: by the time it is through, a message the
    # load added again has been tried (attempts start in load order)
    with smtplib.SMTP("127.0.0.1", g.ports["mx"], timeout=30) as s:
        s.sendmail("someone@outside.test", ["fwd@example.test"], b"Subject: late\r\n\r\nx\r\n")
    n += 1
    assert wait_for(lambda: message_count(b, "early@dest.test") >= n, timeout=20,
                    interval=0.3), g.log_tail()
    log = g.log()
    assert "queue-read-failed" not in log, \
        "\n".join(l for l in log.splitlines() if "queue-read-failed" in l)
    assert message_count(b, "early@dest.test") == n
    assert len(queue_list(g)) == held
