"""IMAP resynchronization and session life: QRESYNC (RFC 7162), LITERAL+,
OBJECTID (RFC 8474), PREVIEW (RFC 8970), a selected mailbox deleted by
another session, and the timeouts (pre-login, autologout, IDLE keepalive)."""
import imaplib
import re
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER
from test_imap import (account, append, imaplib_login, login, message,  # noqa: F401
                       srv, untagged_match)


def uids_of(untagged):
    return [int(re.search(r"UID (\d+)", l).group(1)) for l in untagged if "FETCH" in l]


def test_qresync_resync_after_changes_while_away(srv, account):
    c = login(srv, *account)
    with c:
        status, untagged = c.imap("ENABLE QRESYNC")
        assert untagged == ["* ENABLED QRESYNC"], untagged
        for i in range(6):
            append(c, "INBOX", message("q %d" % i))
        status, untagged = c.imap("SELECT INBOX")
        uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", " ".join(untagged)).group(1))
        modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(untagged)).group(1))
        assert untagged_match(untagged, r"MAILBOXID \(F\d+\)"), untagged
        c.imap("LOGOUT")
    # Meanwhile, another client: flags, expunges, a new message.
    b = login(srv, *account)
    with b:
        b.imap("SELECT INBOX")
        b.imap("UID STORE 2 +FLAGS (\\Flagged)")
        b.imap("UID STORE 3,5 +FLAGS (\\Deleted)")
        _, untagged = b.imap("EXPUNGE")
        assert untagged == ["* 5 EXPUNGE", "* 3 EXPUNGE"], untagged
        append(b, "INBOX", message("q new"))
    c = login(srv, *account)
    with c:
        # QRESYNC before ENABLE is a protocol error.
        status, _ = c.imap("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity, modseq))
        assert status.startswith("BAD"), status
        c.imap("ENABLE QRESYNC")
        status, untagged = c.imap("SELECT INBOX (QRESYNC (%d %d 1:6))" % (uidvalidity, modseq))
        assert status.startswith("OK [READ-WRITE]"), status
        assert "* VANISHED (EARLIER) 3,5" in untagged, untagged
        fetches = untagged_match(untagged, "FETCH")
        assert [re.search(r"UID (\d+)", l).group(1) for l in fetches] == ["2", "7"], fetches
        assert "\\Flagged" in fetches[0] and "MODSEQ (" in fetches[0], fetches
        assert untagged.index("* VANISHED (EARLIER) 3,5") < untagged.index(fetches[0])
        # known-uids narrows the answer; a wrong UIDVALIDITY gives none.
        _, untagged = c.imap("SELECT INBOX (QRESYNC (%d %d 4:6 (1:3 1,2,4)))"
                             % (uidvalidity, modseq))
        assert "* OK [CLOSED] Previous mailbox closed" == untagged[0], untagged
        assert "* VANISHED (EARLIER) 5" in untagged, untagged
        _, untagged = c.imap("EXAMINE INBOX (QRESYNC (%d %d))" % (uidvalidity + 1, modseq))
        assert not untagged_match(untagged, "VANISHED|FETCH"), untagged
        c.imap("SELECT INBOX")
        # UID FETCH CHANGEDSINCE VANISHED.
        status, untagged = c.imap("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq)
        assert status.startswith("OK"), status
        assert untagged[0] == "* VANISHED (EARLIER) 3,5", untagged
        assert uids_of(untagged) == [2, 7], untagged
        status, _ = c.imap("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq)
        assert status.startswith("BAD"), status
        status, _ = c.imap("UID FETCH 1:* (FLAGS) (VANISHED)")
        assert status.startswith("BAD"), status
        # Expunges now come as VANISHED, ours and another session's.
        c.imap("UID STORE 1 +FLAGS (\\Deleted)")
        _, untagged = c.imap("EXPUNGE")
        assert untagged == ["* VANISHED 1"], untagged
        b = login(srv, *account)
        with b:
            b.imap("SELECT INBOX")
            b.imap("UID STORE 4,6 +FLAGS (\\Deleted)")
            b.imap("UID EXPUNGE 4,6")
        _, untagged = c.imap("NOOP")
        assert "* VANISHED 4,6" in untagged, untagged
        _, untagged = c.imap("UID SEARCH ALL")
        assert untagged == ["* SEARCH 2 7"], untagged


def test_qresync_without_known_uids_and_idle(srv, account):
    a = login(srv, *account)
    b = login(srv, *account)
    with a, b:
        for i in range(3):
            append(b, "INBOX", message("i %d" % i))
        a.imap("ENABLE QRESYNC")
        a.imap("SELECT INBOX")
        b.imap("SELECT INBOX")
        a.sendline("i1 IDLE")
        assert a.readline().startswith("+")
        b.imap("UID STORE 2 +FLAGS (\\Deleted)")
        line = a.readline()
        assert re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Deleted\) MODSEQ \(\d+\)\)", line), line
        b.imap("EXPUNGE")
        assert a.readline() == "* VANISHED 2"
        a.sendline("DONE")
        assert a.imap_wait("i1")[0].startswith("OK")


def test_literal_plus(srv, account):
    c = login(srv, *account)
    with c:
        _, untagged = c.imap("CAPABILITY")
        assert "LITERAL+" in untagged[0].split() and "LITERAL-" not in untagged[0], untagged
        # A non-synchronizing literal bigger than LITERAL-'s 4 KiB.
        body = ("x" * 70 + "\r\n") * 200
        data = message("literal plus", body=body)
        c.send(b"lp1 APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
        status, _ = c.imap_wait("lp1")
        assert status.startswith("OK [APPENDUID"), status
        c.send(b'lp2 CREATE {5+}\r\nPlus1\r\n')
        assert c.imap_wait("lp2")[0].startswith("OK")
    with srv.connect("imaps") as c:
        greeting = c.readline()
        assert "LITERAL-" in greeting and "LITERAL+" not in greeting, greeting


def test_objectid_and_preview(srv, account):
    c = login(srv, *account)
    with c:
        status, _ = c.imap("CREATE Objects")
        m = re.match(r"OK \[MAILBOXID \((F\d+)\)\]", status)
        assert m, status
        mailboxid = m.group(1)
        _, untagged = c.imap("STATUS Objects (MAILBOXID MESSAGES)")
        assert untagged == ['* STATUS "Objects" (MESSAGES 0 MAILBOXID (%s))' % mailboxid]
        c.imap("RENAME Objects Objects2")
        _, untagged = c.imap("STATUS Objects2 (MAILBOXID)")
        assert mailboxid in untagged[0], untagged
        append(c, "Objects2", message("preview me", body="The quick brown fox\r\n"
                                      "jumps   over the lazy dog.\r\n"))
        append(c, "Objects2", message("Re: preview me", extra="In-Reply-To: "
                                      "<preview.me@example.org>\r\n"))
        c.imap("SELECT Objects2")
        _, untagged = c.imap("FETCH 1:2 (EMAILID THREADID PREVIEW)")
        m1 = re.match(r'\* 1 FETCH \(EMAILID \((M\w+)\) THREADID \((T\d+)\) '
                      r'PREVIEW "The quick brown fox jumps over the lazy dog."\)$', untagged[0])
        assert m1, untagged
        m2 = re.match(r"\* 2 FETCH \(EMAILID \((M\w+)\) THREADID \((T\d+)\)", untagged[1])
        assert m2 and m2.group(1) != m1.group(1), untagged
        _, untagged = c.imap("FETCH 1 (PREVIEW (LAZY))")
        assert "PREVIEW \"The quick" in untagged[0], untagged
        assert c.imap("FETCH 1 (PREVIEW (EAGER))")[0].startswith("BAD")
        _, untagged = c.imap("SEARCH EMAILID %s" % m1.group(1))
        assert untagged == ["* SEARCH 1"], untagged
        _, untagged = c.imap("SEARCH THREADID %s" % m1.group(2))
        assert untagged[0].startswith("* SEARCH 1"), untagged
        assert c.imap("SEARCH EMAILID a.b")[0].startswith("BAD")
        # COPY keeps the EMAILID.
        c.imap("COPY 1 INBOX")
        c.imap("SELECT INBOX")
        _, untagged = c.imap("SEARCH EMAILID %s" % m1.group(1))
        assert untagged == ["* SEARCH 1"], untagged


def test_selected_mailbox_deleted_elsewhere(srv, account):
    a = login(srv, *account)
    b = login(srv, *account)
    with a, b:
        a.imap("CREATE Doomed")
        append(a, "Doomed", message("doomed"))
        a.imap("SELECT Doomed")
        b.imap("DELETE Doomed")
        a.sendline("n1 NOOP")
        assert a.readline() == "* BYE Selected mailbox was deleted, have to disconnect"
        a.read_eof()
    # Deleting one's own selected mailbox leaves the selected state.
    c = login(srv, *account)
    with c:
        c.imap("CREATE Doomed2")
        c.imap("SELECT Doomed2")
        status, untagged = c.imap("DELETE Doomed2")
        assert status.startswith("OK"), status
        assert untagged == ["* OK [CLOSED] Selected mailbox deleted"], untagged
        assert c.imap("FETCH 1 FLAGS")[0].startswith("BAD")
        assert c.imap("NOOP")[0].startswith("OK")


@pytest.fixture(scope="module")
def fast_srv(module_factory):
    """timeout_imap 3 s: 1.5 s before login, a keepalive every second."""
    return module_factory(config={"timeout_imap": "3s"})


def test_timeouts_and_idle_keepalive(fast_srv):
    p = fast_srv
    account = ("fast@example.test", "fast password")
    p.add_account(*account)
    with p.connect("imaps") as c:
        c.readline()
        t0 = time.monotonic()
        assert c.readline().startswith("* BYE Autologout")
        assert 1.0 < time.monotonic() - t0 < 5      # 1.5 s; generous for busy machines
    c = login(p, *account)
    with c:
        time.sleep(2)
        assert c.imap("NOOP")[0].startswith("OK")   # longer after login
        c.imap("SELECT INBOX")
        t0 = time.monotonic()
        c.sendline("i1 IDLE")
        assert c.readline().startswith("+")
        keepalives = 0
        while True:
            line = c.readline()
            if line != "* OK Still here":
                break
            keepalives += 1
        # The keepalives did not keep the session past timeout_imap.
        assert line.startswith("* BYE Autologout"), line
        assert keepalives >= 2, keepalives
        assert 2.5 < time.monotonic() - t0 < 8      # 3 s; generous for busy machines


def test_qresync_with_imaplib(srv, account):
    m = imaplib_login(srv, account)
    try:
        m.append("INBOX", None, None, message("lib"))
        typ, data = m._simple_command("ENABLE", "QRESYNC")
        assert typ == "OK", data
        m.state = "AUTH"
        typ, data = m.select("INBOX")
        assert typ == "OK"
        uidvalidity = int(m.untagged_responses["UIDVALIDITY"][0])
        modseq = int(m.untagged_responses["HIGHESTMODSEQ"][0])
        m.store("1", "+FLAGS", "\\Deleted")
        m.expunge()
        m.close()
        typ, data = m._simple_command("SELECT", "INBOX",
                                      "(QRESYNC (%d %d))" % (uidvalidity, modseq - 1))
        assert typ == "OK", data
        # EXPUNGE's "VANISHED 1", then SELECT's "VANISHED (EARLIER) 1".
        assert m.untagged_responses.get("VANISHED") == [b"1", b"(EARLIER) 1"], \
            m.untagged_responses
    finally:
        m.logout()
