"""SMTP mail transactions end to end: MX and submission, local delivery into
the store before the reply, the queue for everything else, the EHLO
keywords, limits and the session's resistance to abuse. Real clients
(smtplib, swaks, curl) and our own line client."""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, IO_TIMEOUT, LineClient, plain_response, run
from test_smtp_helpers import (HOLD_QUEUE, inbox, inbox_count, message, mx_session, queued,
                               send_data, submission_session, wait_count)

OTHER = "other@example.test"
OTHER_PASSWORD = "another fine password"
FULL = "full@example.test"
MAX = 25 * 1024 * 1024          # smtp_max_message_size's default


@pytest.fixture(scope="module")
def srv(module_factory):
    # Default limits, but a short error delay: some tests here make many
    # errors on purpose (test_smtp_limits.py tests the delay itself).
    p = module_factory(config={"smtp_error_delay": "20ms", **HOLD_QUEUE}, start=False)
    p.add_account(OTHER, OTHER_PASSWORD)
    p.add_account(FULL, "full password here", quota="2K")
    p.cli("alias", "add", "alias@example.test", DEMO_USER)
    p.cli("alias", "add", "fwd@example.test", "someone@elsewhere.test")
    p.cli("alias", "add", "both@example.test", DEMO_USER)
    p.cli("alias", "add", "both@example.test", "copy@elsewhere.test")
    p.cli("domain", "add", "catch.test")
    p.cli("catchall", "set", "catch.test", OTHER)
    p.start()
    return p


def caps_of(c):
    return c.ehlo()


# ---------------------------------------------------------------- EHLO

def test_ehlo_keywords_plain(srv):
    with mx_session(srv) as c:
        caps = c.ehlo()
    for kw in ("PIPELINING", "SIZE %d" % MAX, "8BITMIME", "SMTPUTF8", "CHUNKING",
               "BINARYMIME", "DSN", "ENHANCEDSTATUSCODES", "STARTTLS"):
        assert kw in caps, (kw, caps)
    assert "REQUIRETLS" not in caps        # only under TLS
    assert not any(c.startswith("AUTH") for c in caps)


@pytest.mark.parametrize("service", ["mx", "submission", "submissions"])
def test_ehlo_keywords_tls(srv, service):
    with srv.smtp_tls(service) as c:
        caps = c.ehlo()
    assert "REQUIRETLS" in caps and "STARTTLS" not in caps
    assert "CHUNKING" in caps and "DSN" in caps


# ---------------------------------------------------------------- MX delivery

def test_smtplib_to_local_user(srv):
    before = inbox_count(srv, DEMO_USER)
    with smtplib.SMTP("127.0.0.1", srv.ports["mx"], local_hostname="sender.test",
                      timeout=IO_TIMEOUT) as s:
        refused = s.sendmail("sender@remote.test", [DEMO_USER],
                             message(subject="smtplib one").encode())
        assert refused == {}
    msgs = inbox(srv, DEMO_USER)
    assert len(msgs) == before + 1
    m = msgs[-1]
    assert m.startswith(b"Return-Path: <sender@remote.test>\r\nReceived: from sender.test "
                        b"([127.0.0.1])\r\n\tby localhost (Petrel) with ESMTP id "), m[:300]
    assert b"\tfor <demo@example.test>;" in m
    assert b"Subject: smtplib one\r\n" in m and m.endswith(b"hello\r\n")


def test_null_sender_and_dot_stuffing(srv):
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="dots", body=".leading\r\n..two\r\n.\r\nx\r\n"))
        assert code == 250, lines
    m = inbox(srv, DEMO_USER)[-1]
    assert m.startswith(b"Return-Path: <>\r\n")
    assert m.endswith(b".leading\r\n..two\r\n.\r\nx\r\n")


def test_aliases_tags_catchall(srv):
    demo0, other0 = inbox_count(srv, DEMO_USER), inbox_count(srv, OTHER)
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        for rcpt in ("alias@example.test", "demo+news@example.test", "ALIAS@Example.TEST",
                     "anyone@catch.test"):
            code, lines = c.smtp("RCPT TO:<%s>" % rcpt)
            assert code == 250, (rcpt, lines)
        code, lines = send_data(c, message(subject="many ways"))
        assert code == 250, lines
    # Three recipients reach demo's one mailbox: one copy.
    assert inbox_count(srv, DEMO_USER) == demo0 + 1
    assert inbox_count(srv, OTHER) == other0 + 1


def test_unknown_user_and_relay_denied(srv):
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        code, lines = c.smtp("RCPT TO:<nobody@example.test>")
        assert code == 550 and lines[0].startswith("5.1.1"), lines
        code, lines = c.smtp("RCPT TO:<someone@elsewhere.test>")
        assert code == 554 and lines[0].startswith("5.7.1"), lines
        code, lines = c.smtp("DATA")
        assert code == 554, lines                   # no valid recipients
        assert c.smtp("NOOP")[0] == 250


RELAY_PROBES = [
    "someone%elsewhere.test@example.test",
    "elsewhere.test!someone@example.test",
    "elsewhere.test!someone",
    '"someone@elsewhere.test"@example.test',
    '"someone%elsewhere.test"',
    "@example.test:someone@elsewhere.test",
    "@localhost,@example.test:someone@elsewhere.test",
    "someone@elsewhere.test@example.test",
    "demo@[127.0.0.1]",
    "someone@[192.0.2.1]",
    "demo@[IPv6:::1]",
    "@example.test",
    "someone@elsewhere.test.",
    "someone@localhost",
    "demo@example.test.elsewhere.test",
    "someone@elsewhere.test%example.test",
]


def test_relay_probes_refused(srv):
    before = inbox_count(srv, DEMO_USER)
    nqueued = len(queued(srv))
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<spammer@remote.test>")[0] == 250
        for probe in RELAY_PROBES:
            code, lines = c.smtp("RCPT TO:<%s>" % probe)
            assert 550 <= code <= 554, (probe, code, lines)
        assert c.smtp("DATA")[0] == 554
    assert inbox_count(srv, DEMO_USER) == before
    assert len(queued(srv)) == nqueued


BAD_ADDRESSES = [
    ("a`id`@example.test", "Shell metacharacters"),
    ("a$(id)@example.test", "Shell metacharacters"),
    ("a|b@example.test", "Shell metacharacters"),
    ("|/bin/sh@example.test", "Shell metacharacters"),
    ("a;b@example.test", "Shell metacharacters"),
    ("a&b@example.test", "Shell metacharacters"),
    ("a@exa`id`mple.test", "Shell metacharacters"),
    ("x" * 65 + "@example.test", "Local part too long"),
    ("a@" + "b" * 64 + ".test", "Domain label too long"),
    ("a@" + ".".join(["b" * 60] * 5), "Domain too long"),
    ("j\u00f6rg@example.test", "needs SMTPUTF8"),
    ("jorg@\u00e9xample.test", "needs SMTPUTF8"),
    ("a\x01b@example.test", "Control character"),
]


@pytest.mark.parametrize("addr,why", BAD_ADDRESSES, ids=range(len(BAD_ADDRESSES)))
def test_bad_addresses(srv, addr, why):
    with mx_session(srv) as c:
        code, lines = c.smtp("MAIL FROM:<%s>" % addr)
        assert code in (501, 553) and why in lines[0], (addr, lines)
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        code, lines = c.smtp("RCPT TO:<%s>" % addr)
        assert code in (501, 553) and why in lines[0], (addr, lines)


def test_nul_in_address(srv):
    before = inbox_count(srv, DEMO_USER)
    with mx_session(srv) as c:
        c.send(b"MAIL FROM:<a\0b@remote.test>\r\n")
        code, lines = c.smtp_reply()
        assert code == 501 and "NUL byte in address" in lines[0], lines
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        c.send(b"RCPT TO:<demo\0@example.test>\r\n")
        code, lines = c.smtp_reply()
        assert code == 501 and "NUL byte in address" in lines[0], lines
        c.send(b"NO\0OP\r\n")
        assert c.smtp_reply()[0] == 500
        assert c.smtp("DATA")[0] == 554                 # nobody accepted
    assert inbox_count(srv, DEMO_USER) == before


def test_smtputf8(srv):
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<j\u00f6rg@remote.test> SMTPUTF8")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(frm="j\u00f6rg@remote.test",
                                           subject="gr\u00fc\u00dfe"))
        assert code == 250, lines
    m = inbox(srv, DEMO_USER)[-1]
    assert "Return-Path: <j\u00f6rg@remote.test>".encode() in m
    assert b"with UTF8SMTP id" in m


def test_forwarder_goes_to_the_queue_with_dsn_params(srv):
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test> RET=HDRS ENVID=env+2B1 BODY=8BITMIME")[0] == 250
        assert c.smtp("RCPT TO:<fwd@example.test> NOTIFY=SUCCESS,FAILURE "
                      "ORCPT=rfc822;fwd@example.test")[0] == 250
        assert c.smtp("RCPT TO:<both@example.test>")[0] == 250
        code, lines = send_data(c, message(subject="forwarded"))
        assert code == 250, lines
    envs = [e for e in queued(srv) if b"Subject: forwarded" in e["message"]]
    assert len(envs) == 1, envs
    e = envs[0]
    assert e["sender"] == "s@remote.test" and e["ret"] == "hdrs" and e["envid"] == "env+2B1"
    assert e["body"] == "8bitmime"
    to = {r["to"]: r for r in e["rcpt"]}
    assert set(to) == {"someone@elsewhere.test", "copy@elsewhere.test"}
    assert to["someone@elsewhere.test"]["notify"] == "6"
    assert to["someone@elsewhere.test"]["orcpt"] == "rfc822;fwd@example.test"
    assert to["copy@elsewhere.test"]["orcpt"] == "rfc822;both@example.test"
    # Not delivered (the relay host of HOLD_QUEUE refuses): tried or not yet.
    assert all(r["state"] in ("pending", "deferred") for r in e["rcpt"])
    # The queued copy has our Received: but no Return-Path (added at delivery).
    assert e["message"].startswith(b"Received: from client.test")
    # both@ also reached demo's mailbox.
    assert b"Subject: forwarded" in inbox(srv, DEMO_USER)[-1]


def test_success_dsn_for_local_delivery(srv):
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<asks@remote.test> ENVID=track+2D1")[0] == 250
        assert c.smtp("RCPT TO:<%s> NOTIFY=SUCCESS ORCPT=rfc822;demo+40example.test"
                      % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<%s> NOTIFY=NEVER" % OTHER)[0] == 250
        code, lines = send_data(c, message(subject="tell me"))
        assert code == 250, lines
    dsn = [e for e in queued(srv) if e["rcpt"][0]["to"] == "asks@remote.test"]
    assert len(dsn) == 1, dsn
    m = dsn[0]["message"]
    assert dsn[0]["sender"] == ""
    assert b"Action: delivered" in m and b"Final-Recipient: rfc822;demo@example.test" in m
    assert b"Original-Recipient: rfc822;demo@example.test" in m
    assert b"Original-Envelope-Id: track-1" in m
    assert b"other@example.test" not in m.split(b"text/rfc822-headers")[0]


def test_requiretls_recorded(srv):
    with srv.smtp_tls("submission") as c:
        assert c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))[0] == 235
        assert c.smtp("MAIL FROM:<%s> REQUIRETLS" % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<far@elsewhere.test>")[0] == 250
        code, lines = send_data(c, message(frm=DEMO_USER, to="far@elsewhere.test",
                                           subject="needs tls"))
        assert code == 250, lines
    e = [e for e in queued(srv) if b"Subject: needs tls" in e["message"]][0]
    assert e["requiretls"] == "1"
    with mx_session(srv) as c:
        code, lines = c.smtp("MAIL FROM:<s@remote.test> REQUIRETLS")
        assert code == 530, lines       # not under TLS


# ---------------------------------------------------------------- limits

def test_size_announced_and_enforced(srv):
    with mx_session(srv) as c:
        code, lines = c.smtp("MAIL FROM:<s@remote.test> SIZE=%d" % (MAX + 1))
        assert code == 552 and lines[0].startswith("5.3.4"), lines
        assert c.smtp("MAIL FROM:<s@remote.test> SIZE=1000")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 354
        block = (b"x" * 998 + b"\r\n") * 1024           # 1 MiB
        c.send(b"Subject: big\r\n\r\n")
        for _ in range(MAX // len(block) + 2):
            c.send(block)
        c.send(b".\r\n")
        code, lines = c.smtp_reply()
        assert code == 552 and lines[0].startswith("5.3.4"), lines
        assert c.smtp("NOOP")[0] == 250
    assert not any(b"Subject: big" in m[:400] for m in inbox(srv, DEMO_USER)[-3:])
    # Nothing left behind in the store's or the queue's temporary files.
    assert list((srv.dir / "queue" / "tmp").iterdir()) == []


def test_received_loop(srv):
    hops = "".join("Received: from hop%d.test by x.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i
                   for i in range(50))
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, hops + message(subject="loop"))
        assert code == 554 and lines[0].startswith("5.4.6"), lines
        # 49 is still fine.
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, hops.split("\r\n", 1)[1] + message(subject="49 hops"))
        assert code == 250, lines


def test_quota(srv):
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test> SIZE=5000")[0] == 250
        code, lines = c.smtp("RCPT TO:<%s>" % FULL)
        assert code == 452 and lines[0].startswith("4.2.2"), lines
        assert c.smtp("RSET")[0] == 250
        # Fits: 1,200 octets of a 2 KiB quota.
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % FULL)[0] == 250
        code, lines = send_data(c, message(to=FULL, subject="fits", body="y" * 1000 + "\r\n"))
        assert code == 250, lines
        # No SIZE given, the second one does not fit: refused at the end.
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % FULL)[0] == 250
        code, lines = send_data(c, message(to=FULL, subject="no room", body="y" * 1000 + "\r\n"))
        assert code == 452 and lines[0].startswith("4.2.2"), lines
        # With another recipient that has room: accepted, and a DSN for the
        # full one goes to the sender.
        assert c.smtp("MAIL FROM:<bounce-me@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % FULL)[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="half", body="y" * 1000 + "\r\n"))
        assert code == 250, lines
    assert inbox_count(srv, FULL) == 1
    dsn = [e for e in queued(srv) if e["rcpt"][0]["to"] == "bounce-me@remote.test"]
    assert len(dsn) == 1 and dsn[0]["sender"] == ""
    assert b"Status: 5.2.2" in dsn[0]["message"]
    assert b"Final-Recipient: rfc822;full@example.test" in dsn[0]["message"]


def test_too_many_recipients(srv):
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        c.send("".join("RCPT TO:<demo+%d@example.test>\r\n" % i for i in range(1001)))
        codes = [c.smtp_reply()[0] for _ in range(1001)]
        assert codes[:1000] == [250] * 1000 and codes[1000] == 452
        assert c.smtp("RSET")[0] == 250


def test_long_lines(srv):
    with mx_session(srv) as c:
        code, _ = c.smtp("MAIL FROM:<s@remote.test> " + "X" * 3000)
        assert code == 500
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        # Long lines in a message are fine (they are content).
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="long", body="z" * 5000 + "\r\n"))
        assert code == 250, lines


# ---------------------------------------------------------------- states

def test_bad_commands_in_every_state(srv):
    with srv.connect("mx") as c:
        assert c.smtp_reply()[0] == 220
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 503      # before EHLO
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 503
        assert c.smtp("DATA")[0] == 503
        c.ehlo()
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 503       # before MAIL
        assert c.smtp("DATA")[0] == 503
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 503      # nested
        assert c.smtp("DATA")[0] == 554                           # no recipients
        assert c.smtp("MAIL FROM s@remote.test")[0] == 503
        assert c.smtp("RCPT TO:%s" % DEMO_USER)[0] == 501
        assert c.smtp("RCPT TO:<%s> FOO=BAR" % DEMO_USER)[0] == 555
        assert c.smtp("DATA now")[0] == 501
        assert c.smtp("RSET")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 503       # reset
        assert c.smtp("VRFY demo")[0] == 252
        assert c.smtp("EXPN demo")[0] == 502
        assert c.smtp("HELP")[0] == 214
        # Errors add up: the 20th closes the session.
        codes = []
        try:
            for _ in range(12):
                c.sendline("BOGUS")
                codes.append(c.smtp_reply()[0])
                if codes[-1] == 421:
                    break
        except (EOFError, OSError):
            pass
        assert codes and codes[-1] == 421, codes


def test_helo_session_has_no_extensions(srv):
    with srv.connect("mx") as c:
        c.smtp_reply()
        assert c.smtp("HELO client.test")[0] == 250
        assert c.smtp("MAIL FROM:<s@remote.test> SIZE=10")[0] == 555
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="helo"))
        assert code == 250, lines
    assert b"with SMTP id" in inbox(srv, DEMO_USER)[-1]


# ---------------------------------------------------------------- pipelining

def test_pipelined_transaction_replies_in_order(srv):
    with mx_session(srv) as c:
        c.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<%s>\r\nRCPT TO:<nobody@example.test>\r\n"
               "RCPT TO:<alias@example.test>\r\nRCPT TO:<x@elsewhere.test>\r\n"
               "RCPT TO:<%s>\r\nDATA\r\n" % (DEMO_USER, OTHER))
        codes = [c.smtp_reply()[0] for _ in range(7)]
        assert codes == [250, 250, 550, 250, 554, 250, 354], codes
        c.send(message(subject="pipelined").encode() + b".\r\nMAIL FROM:<s@remote.test>\r\n"
               b"RCPT TO:<other@example.test>\r\nDATA\r\n")
        codes = [c.smtp_reply()[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354], codes
        c.send(message(subject="pipelined 2").encode() + b".\r\nQUIT\r\n")
        assert c.smtp_reply()[0] == 250
        assert c.smtp_reply()[0] == 221


def test_swaks_pipeline(srv):
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    r = run(["swaks", "--server", "127.0.0.1", "--port", str(srv.ports["mx"]), "--pipeline",
             "--from", "s@remote.test", "--to", DEMO_USER, "--header", "Subject: swaks pipe"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued" in r.stdout


def test_content_before_354_is_refused(srv):
    before = inbox_count(srv, DEMO_USER)
    with mx_session(srv) as c:
        c.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<%s>\r\n" % DEMO_USER)
        assert c.smtp_reply()[0] == 250 and c.smtp_reply()[0] == 250
        c.send("DATA\r\nSubject: eager\r\n\r\nhi\r\n.\r\n")
        code, lines = c.smtp_reply()
        assert code == 554 and lines[0].startswith("5.5.0"), lines
        c.read_eof()
    assert inbox_count(srv, DEMO_USER) == before


def test_pregreet_refused(petrel_factory, src_ip):
    """A client that talks before the greeting on the MX port is refused."""
    # A long delay, so that "no wait" below is unmistakable on a busy machine.
    srv = petrel_factory(config={"smtp_pregreet_delay": "3s"})
    c = LineClient(srv.ports["mx"], source=src_ip)
    c.send("EHLO fast.test\r\n")
    code, lines = c.smtp_reply()
    assert code == 554 and "greeting" in lines[0], lines
    c.read_eof()
    c.close()
    # One that waits is greeted, and its address is remembered (no wait next time).
    c = LineClient(srv.ports["mx"], source=src_ip)
    assert c.smtp_reply()[0] == 220
    c.close()
    t = time.monotonic()
    c = LineClient(srv.ports["mx"], source=src_ip)
    assert c.smtp_reply()[0] == 220
    assert time.monotonic() - t < 2
    c.close()


def test_pipelining_without_ehlo_refused(srv):
    with srv.connect("mx") as c:
        c.smtp_reply()
        assert c.smtp("HELO client.test")[0] == 250
        c.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<%s>\r\n" % DEMO_USER)
        code, lines = c.smtp_reply()
        assert code == 554, lines
        c.read_eof()


# ---------------------------------------------------------------- BDAT

def test_bdat(srv):
    body = message(subject="chunked").encode()
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test> BODY=BINARYMIME")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 503                 # BINARYMIME needs BDAT
        c.send(b"BDAT 10\r\n" + body[:10])
        code, lines = c.smtp_reply()
        assert code == 250, lines
        # Pipelined chunks, one of them empty.
        rest = body[10:]
        c.send(b"BDAT %d\r\n%sBDAT 0\r\nBDAT %d LAST\r\n%s" % (5, rest[:5], len(rest) - 5,
                                                             rest[5:]))
        codes = [c.smtp_reply() for _ in range(3)]
        assert [x[0] for x in codes] == [250, 250, 250], codes
        assert codes[2][1][0].startswith("2.0.0 Ok: queued")
    m = inbox(srv, DEMO_USER)[-1]
    assert m.endswith(body)


def test_bdat_errors(srv):
    with mx_session(srv) as c:
        # Without a transaction the chunk is read, then refused.
        c.send("BDAT 13\r\nRCPT TO:<x>\r\n")
        assert c.smtp_reply()[0] == 503
        assert c.smtp("NOOP")[0] == 250
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        # A chunk shorter than announced: the next command is message data.
        c.send("BDAT 20\r\nSubject: short\r\n\r\n")  # 19 octets
        c.send("NOOP\r\n")                             # 1 more ends the chunk
        code, lines = c.smtp_reply()
        assert code == 250 and lines[0].startswith("2.0.0 20 octets"), lines
        # ... and the rest of "NOOP\r\n" is not a command.
        code, _ = c.smtp_reply()
        assert code == 500
        assert c.smtp("DATA")[0] == 503                # not after BDAT
        c.send("BDAT 2 LAST\r\nx\n")                   # a bare LF
        code, lines = c.smtp_reply()
        assert code == 550, lines
        # A size that is not a number cannot be skipped: the session ends.
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = c.smtp("BDAT many")
        assert code == 501, lines
        c.read_eof()


# ---------------------------------------------------------------- submission

def test_submission_needs_auth_and_own_sender(srv):
    with srv.smtp_tls("submission") as c:
        assert c.smtp("MAIL FROM:<%s>" % DEMO_USER)[0] == 530
        assert c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))[0] == 235
        code, lines = c.smtp("MAIL FROM:<%s>" % OTHER)
        assert code == 553 and lines[0].startswith("5.7.1"), lines
        # An alias that reaches the user, and +tags, are the user's.
        assert c.smtp("MAIL FROM:<alias@example.test>")[0] == 250
        assert c.smtp("RSET")[0] == 250
        assert c.smtp("MAIL FROM:<demo+list@example.test>")[0] == 250
        assert c.smtp("RSET")[0] == 250
        # A catch-all that reaches someone does not make the address theirs.
        assert c.smtp("MAIL FROM:<whatever@catch.test>")[0] == 553


def test_submission_from_header_checked(srv):
    with submission_session(srv) as c:
        assert c.smtp("MAIL FROM:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<%s>" % OTHER)[0] == 250
        code, lines = send_data(c, message(frm="Boss <%s>" % OTHER, to=OTHER, subject="forged"))
        assert code == 550 and lines[0].startswith("5.7.1"), lines
        assert c.smtp("MAIL FROM:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<%s>" % OTHER)[0] == 250
        code, lines = send_data(c, "To: x@y.test\r\nSubject: no from\r\n\r\nhi\r\n")
        assert code == 550, lines


def test_submission_adds_date_and_message_id(srv):
    with submission_session(srv, "submissions") as c:
        assert c.smtp("MAIL FROM:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<%s>" % OTHER)[0] == 250
        code, lines = send_data(c, "From: Demo <%s>\r\nTo: %s\r\nSubject: bare\r\n\r\nhi\r\n"
                                % (DEMO_USER, OTHER))
        assert code == 250, lines
    m = inbox(srv, OTHER)[-1]
    head = m.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nDate: " in head and b"\r\nMessage-ID: <" in head
    assert b"with ESMTPSA id" in head and b"(using TLSv1.3 with cipher " in head


def test_submission_relays_to_any_domain(srv):
    with submission_session(srv, "submission_alt") as c:
        assert c.smtp("MAIL FROM:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<friend@far-away.test> NOTIFY=NEVER")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % OTHER)[0] == 250
        code, lines = send_data(c, message(frm=DEMO_USER, to="friend@far-away.test",
                                           subject="to a friend"))
        assert code == 250, lines
    e = [e for e in queued(srv) if b"Subject: to a friend" in e["message"]]
    assert len(e) == 1 and [r["to"] for r in e[0]["rcpt"]] == ["friend@far-away.test"]
    assert e[0]["rcpt"][0]["notify"] == "1"
    assert b"Subject: to a friend" in inbox(srv, OTHER)[-1]


# ---------------------------------------------------------------- real clients

def test_swaks_starttls_and_implicit_tls(srv):
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    for args in (["--port", str(srv.ports["submission"]), "--tls"],
                 ["--port", str(srv.ports["submissions"]), "--tlsc"]):
        r = run(["swaks", "--server", "127.0.0.1", *args, "--auth", "PLAIN",
                 "--auth-user", DEMO_USER, "--auth-password", DEMO_PASSWORD,
                 "--from", DEMO_USER, "--h-From", DEMO_USER, "--to", OTHER,
                 "--header", "Subject: swaks tls"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "250 2.0.0 Ok: queued" in r.stdout
    r = run(["swaks", "--server", "127.0.0.1", "--port", str(srv.ports["mx"]), "--tls",
             "--from", "s@remote.test", "--to", DEMO_USER, "--header", "Subject: swaks mx tls"])
    assert r.returncode == 0, r.stdout + r.stderr
    m = inbox(srv, DEMO_USER)[-1]
    assert b"with ESMTPS id" in m and b"Subject: swaks mx tls" in m


def test_curl(srv, tmp_path):
    f = tmp_path / "msg.eml"
    f.write_bytes(message(subject="via curl").encode())
    r = run(["curl", "-sS", "smtp://127.0.0.1:%d" % srv.ports["mx"], "--mail-from",
             "s@remote.test", "--mail-rcpt", DEMO_USER, "-T", str(f)])
    assert r.returncode == 0, r.stderr
    assert b"Subject: via curl" in inbox(srv, DEMO_USER)[-1]
    r = run(["curl", "-sS", "smtps://localhost:%d" % srv.ports["submissions"], "--cacert",
             str(srv.cert), "--user", "%s:%s" % (DEMO_USER, DEMO_PASSWORD), "--mail-from",
             DEMO_USER, "--mail-rcpt", OTHER, "-T", str(f)])
    # The From: header is not demo's: refused (curl says "weird server reply").
    assert r.returncode != 0, r.stderr
    f.write_bytes(message(frm=DEMO_USER, to=OTHER, subject="curl submission").encode())
    r = run(["curl", "-sS", "smtp://localhost:%d" % srv.ports["submission"], "--ssl-reqd",
             "--cacert", str(srv.cert), "--user", "%s:%s" % (DEMO_USER, DEMO_PASSWORD),
             "--mail-from", DEMO_USER, "--mail-rcpt", OTHER, "-T", str(f)])
    assert r.returncode == 0, r.stderr
    assert b"Subject: curl submission" in inbox(srv, OTHER)[-1]


def test_received_names_the_user_only_if_configured(srv, petrel_factory):
    with submission_session(srv) as c:
        assert c.smtp("MAIL FROM:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<%s>" % OTHER)[0] == 250
        code, lines = send_data(c, message(frm=DEMO_USER, to=OTHER, subject="anonymous"))
        assert code == 250, lines
    m = inbox(srv, OTHER)[-1]
    assert b"Subject: anonymous" in m and b"Authenticated sender" not in m
    p = petrel_factory(config={"smtp_received_auth": "yes"})
    with submission_session(p) as c:
        assert c.smtp("MAIL FROM:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(frm=DEMO_USER, subject="named"))
        assert code == 250, lines
    with mx_session(p) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="from outside"))
        assert code == 250, lines
    named, outside = inbox(p, DEMO_USER)[-2:]
    assert re.search(rb"\r\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\r\n"
                     rb"\t\(Authenticated sender: demo@example\.test\)\r\n\tby localhost "
                     rb"\(Petrel\) with ESMTPSA id ", named), named[:400]
    assert b"Authenticated sender" not in outside
