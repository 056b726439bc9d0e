"""SMTP smuggling (end-of-data confusion): only <CRLF>.<CRLF> ends a message.
Every variant with a bare LF or a bare CR around the dot is read to the real
end and refused as a whole (550 5.6.0): no smuggled command runs, no
smuggled message is delivered, and the session stays in step."""
import pytest

from conftest import DEMO_USER
from test_smtp_helpers import inbox, inbox_count, mx_session

SMUGGLED = (b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"
            b"From: admin@example.test\r\nSubject: SMUGGLED\r\n\r\nevil\r\n")

# Fake ends of data, as sent after the first line of the message.
VARIANTS = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "crlf-dot-cr": b"\r\n.\r",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-lf": b"\r.\n",
    "lf-cr-dot-crlf": b"\n\r.\r\n",
    "crlf-dot-cr-cr-lf": b"\r\n.\r\r\n",
    "crlf-dot-nul-crlf": b"\r\n.\x00\r\n",
    "crlf-space-dot-crlf": b"\r\n .\r\n",
}


@pytest.fixture(scope="module")
def srv(module_factory):
    return module_factory()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fake_end_of_data(srv, name):
    fake = VARIANTS[name]
    before = inbox_count(srv, DEMO_USER)
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 354
        c.send(b"From: s@remote.test\r\nSubject: carrier " + name.encode() + b"\r\n\r\nhi" +
               fake + SMUGGLED + b"\r\n.\r\n")
        code, lines = c.smtp_reply()
        # Only the variants without a bare CR or LF are deliverable content.
        if b"\n" in fake.replace(b"\r\n", b"") or b"\r" in fake.replace(b"\r\n", b""):
            assert code == 550 and lines[0].startswith("5.6.0"), (name, code, lines)
            expect = 0
        else:
            assert code == 250, (name, code, lines)
            expect = 1
        # One reply for the whole thing: the next is the NOOP's.
        code, lines = c.smtp("NOOP")
        assert code == 250 and lines[0] == "2.0.0 OK", (name, lines)
        # A proper message afterwards is the one (and only) that arrives.
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 354
        c.send(b"Subject: after " + name.encode() + b"\r\n\r\nfine\r\n.\r\n")
        assert c.smtp_reply()[0] == 250
        assert c.smtp("QUIT")[0] == 221
    msgs = inbox(srv, DEMO_USER)[before:]
    assert len(msgs) == expect + 1, (name, len(msgs))
    assert msgs[-1].endswith(b"fine\r\n")
    assert not any(b"Subject: SMUGGLED" in m.split(b"\r\n\r\n", 1)[0] for m in msgs)
    if expect:
        # Kept as content, in the one message.
        assert b"SMUGGLED" in msgs[0]


def test_bare_lf_message_refused(srv):
    before = inbox_count(srv, DEMO_USER)
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 354
        c.send(b"Subject: unix\n\nlines\n.\n")
        # "\n.\n" is not the end: the real one still is.
        c.send(b"\r\n.\r\n")
        code, lines = c.smtp_reply()
        assert code == 550, lines
    assert inbox_count(srv, DEMO_USER) == before


def test_smuggling_with_bdat(srv):
    """BDAT has no end-of-data line; a bare LF in it is refused just the same."""
    before = inbox_count(srv, DEMO_USER)
    body = b"Subject: chunk\r\n\r\nhi\n.\n" + SMUGGLED
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        code, lines = c.smtp_reply()
        assert code == 550, lines
        assert c.smtp("NOOP")[0] == 250
    assert inbox_count(srv, DEMO_USER) == before
