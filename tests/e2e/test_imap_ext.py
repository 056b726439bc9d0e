"""IMAP extensions on top of the base: MULTIAPPEND (RFC 3502), SORT and
SORT=DISPLAY (RFC 5256, 5957), ESORT (RFC 5267), THREAD=ORDEREDSUBJECT and
THREAD=REFERENCES (RFC 5256), I18NLEVEL=1 comparisons (RFC 5255)."""
import re

from test_imap import (account, append, login, message, srv,  # noqa: F401
                       untagged_match)


def status_messages(c, mailbox="INBOX"):
    _, untagged = c.imap("STATUS %s (MESSAGES)" % mailbox)
    return int(re.search(r"MESSAGES (\d+)", untagged[0]).group(1))


def test_multiappend(srv, account):
    c = login(srv, *account)
    with c:
        _, untagged = c.imap("CAPABILITY")
        assert "MULTIAPPEND" in untagged[0].split(), untagged
        msgs = [message("multi %d" % i) for i in range(3)]
        c.sendline("m1 APPEND INBOX (\\Seen) {%d}" % len(msgs[0]))
        assert c.readline().startswith("+")
        c.send(msgs[0] + b' (\\Flagged $Work) "01-Feb-2020 10:00:00 +0000" {%d}\r\n'
               % len(msgs[1]))
        assert c.readline().startswith("+")
        c.send(msgs[1] + b" {%d+}\r\n" % len(msgs[2]) + msgs[2] + b"\r\n")
        status, _ = c.imap_wait("m1")
        m = re.match(r"OK \[APPENDUID \d+ 1:3\]", status)
        assert m, status
        c.imap("SELECT INBOX")
        _, untagged = c.imap("FETCH 1:3 (FLAGS INTERNALDATE)")
        assert "(\\Seen)" in untagged[0], untagged
        assert "01-Feb-2020" in untagged[1] and "$Work" in untagged[1], untagged
        assert "\\Flagged" in untagged[1] and "FLAGS ()" in untagged[2], untagged
        _, untagged = c.imap("FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert "Subject: multi 2" in untagged, untagged
        # All or nothing: the second message refused, the first not stored.
        before = status_messages(c)
        c.sendline("m2 APPEND INBOX {%d}" % len(msgs[0]))
        assert c.readline().startswith("+")
        c.send(msgs[0] + b" {2000000000}\r\n")
        assert c.readline().startswith("m2 NO [TOOBIG]")
        assert status_messages(c) == before
        # A bad second part, non-synchronizing: refused at the end.
        c.send(b"m3 APPEND INBOX {3+}\r\nabc (\\Bogus\\) {3+}\r\ndef\r\n")
        assert c.imap_wait("m3")[0].startswith("BAD")
        c.send(b"m4 APPEND INBOX {3+}\r\nabc {0+}\r\n\r\n")
        assert c.imap_wait("m4")[0].startswith("NO")
        assert status_messages(c) == before
        assert c.imap("NOOP")[0].startswith("OK")


def test_multiappend_quota(srv):
    addr = "quota-multi@example.test"
    srv.add_account(addr, "quota pass", quota="1K")
    c = login(srv, addr, "quota pass")
    with c:
        data = message("q", body="x" * 300 + "\r\n")
        assert 350 < len(data) < 500
        c.send(b"q1 APPEND INBOX {%d+}\r\n" % len(data) + data + b" {%d+}\r\n" % len(data)
               + data + b" {%d+}\r\n" % len(data) + data + b"\r\n")
        status, _ = c.imap_wait("q1")
        assert status.startswith("NO [OVERQUOTA]"), status
        assert status_messages(c) == 0
        c.send(b"q2 APPEND INBOX {%d+}\r\n" % len(data) + data + b" {%d+}\r\n" % len(data)
               + data + b"\r\n")
        status, _ = c.imap_wait("q2")
        assert re.match(r"OK \[APPENDUID \d+ 1:2\]", status), status
