"""IMAP after login (RFC 9051/3501 and extensions): mailboxes, APPEND, FETCH,
STORE, COPY/MOVE, SEARCH, EXPUNGE, IDLE, two sessions seeing each other,
with our line client, Python's imaplib, curl and mbsync (isync)."""
import imaplib
import itertools
import os
import re
import shutil
import socket
import ssl
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, run

_accounts = itertools.count(1)


@pytest.fixture(scope="module")
def srv(module_factory):
    p = module_factory(config={"auth_penalty_initial": "100ms",
                               "auth_penalty_max": "200ms"})
    c = login(p, DEMO_USER, DEMO_PASSWORD)
    try:
        status, _ = c.imap("NAMESPACE")
    finally:
        c.close()
    assert status.startswith("OK"), status
    return p


@pytest.fixture
def account(srv):
    """A fresh account of its own: (address, password)."""
    addr = "user%d-%d@example.test" % (os.getpid(), next(_accounts))
    srv.add_account(addr, "secret password %s" % addr)
    return addr, "secret password %s" % addr


def quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def login(p, user, password, service="imaps"):
    c = p.connect(service)
    assert c.readline().startswith("* OK")
    if service == "imap":
        status, _ = c.imap("STARTTLS")
        assert status.startswith("OK"), status
        c.starttls(p.context())
    status, _ = c.imap("LOGIN %s %s" % (quote(user), quote(password)))
    assert status.startswith("OK"), status
    return c


def imaplib_login(p, account):
    m = imaplib.IMAP4_SSL("localhost", p.ports["imaps"], ssl_context=p.context(),
                          timeout=20)
    typ, _ = m.login(*account)
    assert typ == "OK"
    return m


def message(subject, body="Hello there.\r\n", frm="Alice <alice@example.org>",
            to="bob@example.test", extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n"
            "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\nMessage-ID: <%s@example.org>\r\n"
            "%s\r\n%s" % (frm, to, subject, subject.replace(" ", "."), extra,
                          body)).encode()


def append(c, mailbox, data, flags=""):
    """APPEND with a synchronizing literal through the line client."""
    LineClient_tag = "ap%d" % next(_accounts)
    c.sendline("%s APPEND %s %s{%d}" % (LineClient_tag, mailbox,
                                        "(%s) " % flags if flags else "", len(data)))
    line = c.readline()
    assert line.startswith("+"), line
    c.send(data + b"\r\n")
    status, untagged = c.imap_wait(LineClient_tag)
    assert status.startswith("OK"), status
    m = re.search(r"APPENDUID (\d+) (\d+)", status)
    assert m, status
    return int(m.group(2))


def untagged_match(lines, pattern):
    return [l for l in lines if re.search(pattern, l)]


# ------------------------------------------------------------------ basics

def test_capabilities_after_login(srv, account):
    c = login(srv, *account)
    with c:
        status, untagged = c.imap("CAPABILITY")
        caps = untagged[0].upper().split()[2:]
        for cap in ("IMAP4REV1", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT",
                    "CHILDREN", "SPECIAL-USE", "ENABLE", "CONDSTORE", "LIST-EXTENDED",
                    "LIST-STATUS", "STATUS=SIZE", "QUOTA", "ESEARCH", "UTF8=ACCEPT",
                    "LITERAL+", "SEARCHRES", "CREATE-SPECIAL-USE", "APPENDLIMIT=1073741824"):
            assert cap in caps, (cap, caps)


def test_list_and_special_use(srv, account):
    c = login(srv, *account)
    with c:
        status, untagged = c.imap('LIST "" "*"')
        assert status.startswith("OK")
        names = {re.search(r'"/" "?([^"]*)"?$', l).group(1): l for l in untagged}
        assert set(names) >= {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
        assert "\\Sent" in names["Sent"] and "\\HasNoChildren" in names["Sent"]
        status, untagged = c.imap('LIST "" ""')
        assert untagged == ['* LIST (\\Noselect) "/" ""'], untagged
        status, untagged = c.imap('LIST (SPECIAL-USE) "" "*"')
        assert len(untagged) == 5 and not untagged_match(untagged, "INBOX"), untagged
        status, untagged = c.imap('LIST "" "*" RETURN (SUBSCRIBED STATUS (MESSAGES UIDNEXT))')
        assert untagged_match(untagged, r'LIST \(.*\\Subscribed.*"INBOX"')
        assert untagged_match(untagged, r'STATUS "INBOX" \(MESSAGES 0 UIDNEXT \d+\)')
        status, untagged = c.imap('LSUB "" "*"')
        assert status.startswith("OK") and len(untagged) == 6, untagged
        status, untagged = c.imap("NAMESPACE")
        assert untagged == ['* NAMESPACE (("" "/")) NIL NIL'], untagged


def test_mailbox_management(srv, account):
    c = login(srv, *account)
    with c:
        assert c.imap("CREATE Projects/2024/Q1")[0].startswith("OK")
        assert c.imap("CREATE Projects/2024/Q1")[0].startswith("NO [ALREADYEXISTS]")
        _, untagged = c.imap('LIST "" "Projects/%"')
        assert untagged == ['* LIST (\\HasChildren) "/" "Projects/2024"'], untagged
        _, untagged = c.imap('LIST "Projects/" "*"')
        assert len(untagged) == 2, untagged
        assert c.imap("RENAME Projects/2024 Projects/2025")[0].startswith("OK")
        _, untagged = c.imap('LIST "" "Projects/*"')
        assert sorted(untagged) == ['* LIST (\\HasChildren) "/" "Projects/2025"',
                                    '* LIST (\\HasNoChildren) "/" "Projects/2025/Q1"']
        status, _ = c.imap("DELETE Projects/2025")
        assert status.startswith("NO"), status
        assert c.imap("DELETE Projects/2025/Q1")[0].startswith("OK")
        assert c.imap("UNSUBSCRIBE Projects")[0].startswith("OK")
        assert c.imap("SUBSCRIBE Projects/2025")[0].startswith("OK")
        _, untagged = c.imap('LSUB "" "Projects/*"')
        assert untagged == ['* LSUB () "/" "Projects/2025"'], untagged
        _, untagged = c.imap('LIST (SUBSCRIBED) "" "Proj*"')
        assert untagged == ['* LIST (\\HasNoChildren \\Subscribed) "/" "Projects/2025"'], \
            untagged
        assert c.imap("DELETE INBOX")[0].startswith("NO")
        assert c.imap("CREATE inbox")[0].startswith("NO")
        assert c.imap("CREATE Spam (USE (\\Junk))")[0].startswith("OK")
        assert c.imap("CREATE Other (USE (\\Bogus))")[0].startswith("NO [USEATTR]")
        _, untagged = c.imap('LIST "" Spam')
        assert untagged == ['* LIST (\\HasNoChildren \\Junk) "/" "Spam"'], untagged
        status, untagged = c.imap("STATUS Projects/2025 (MESSAGES UIDNEXT UIDVALIDITY "
                                  "UNSEEN SIZE DELETED HIGHESTMODSEQ)")
        assert status.startswith("OK"), status
        assert re.match(r'\* STATUS "Projects/2025" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ '
                        r'UNSEEN 0 DELETED 0 SIZE 0 HIGHESTMODSEQ \d+\)$', untagged[0]), untagged
        assert c.imap("STATUS Nope (MESSAGES)")[0].startswith("NO [NONEXISTENT]")


def test_invalid_mailbox_names(srv, account):
    c = login(srv, *account)
    with c:
        for name in ('"a//b"', '"/abs"', '"../etc"', '"a/../b"', '"x/."', '"trail/x/"',
                     '"&Jjo"', '"&AGE-"', '"a*b"', '"a%b"', '""', '"&-&AOk"'):
            status, _ = c.imap("CREATE %s" % name)
            if name == '"trail/x/"':
                assert status.startswith("OK"), (name, status)
                continue
            assert status.startswith("NO") or status.startswith("BAD"), (name, status)
        for cmd in ("SELECT", "STATUS", "DELETE", "RENAME"):
            arg = ' "a//b" (MESSAGES)' if cmd == "STATUS" else ' "a//b"'
            if cmd == "RENAME":
                arg = ' Drafts "../x"'
            status, _ = c.imap(cmd + arg)
            assert status.startswith("NO") or status.startswith("BAD"), (cmd, status)


def test_modified_utf7_and_utf8(srv, account):
    m = imaplib_login(srv, account)
    try:
        assert m.create("Entw&APw-rfe/&ZeVnLIqe-")[0] == "OK"
        typ, data = m.list('""', "Entw*")
        assert typ == "OK"
        names = sorted(d.decode().rsplit(" ", 1)[1] for d in data)
        assert names == ['"Entw&APw-rfe"', '"Entw&APw-rfe/&ZeVnLIqe-"'], names
        typ, _ = m.select("Entw&APw-rfe/&ZeVnLIqe-")
        assert typ == "OK"
        m.unselect() if hasattr(m, "unselect") else m.close()
    finally:
        m.logout()
    c = login(srv, *account)
    with c:
        status, untagged = c.imap("ENABLE UTF8=ACCEPT")
        assert untagged == ["* ENABLED UTF8=ACCEPT"], untagged
        c.send(b'u1 LIST "" "Entw\xc3\xbcrfe/*"\r\n')
        status, untagged = c.imap_wait("u1")
        assert status.startswith("OK")
        assert any("Entwürfe/日本語" in l for l in untagged), untagged


# ------------------------------------------------------------------ messages

def test_imaplib_session(srv, account):
    m = imaplib_login(srv, account)
    try:
        for i in range(1, 6):
            typ, data = m.append("INBOX", "(\\Flagged)" if i == 2 else None,
                                 imaplib.Time2Internaldate(time.time()),
                                 message("msg %d" % i, body="body number %d\r\n" % i))
            assert typ == "OK", data
            assert b"APPENDUID" in data[0]
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"5"]
        typ, data = m.fetch("1:5", "(UID FLAGS RFC822.SIZE)")
        assert typ == "OK" and len(data) == 5
        assert b"\\Flagged" in data[1] and b"UID 2" in data[1]
        typ, data = m.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert data[0][1] == b"Subject: msg 3\r\n\r\n", data
        typ, data = m.fetch("3", "(ENVELOPE BODYSTRUCTURE INTERNALDATE)")
        assert b'"msg 3"' in data[0] and b'"TEXT" "PLAIN"' in data[0], data
        typ, data = m.fetch("3", "(FLAGS)")
        assert b"\\Seen" not in data[0]
        typ, data = m.fetch("3", "(BODY[TEXT])")
        assert data[0][1] == b"body number 3\r\n"
        typ, data = m.fetch("3", "(FLAGS)")
        assert b"\\Seen" in data[0], data          # implicit \Seen
        typ, data = m.fetch("4", "(BODY.PEEK[]<0.4> RFC822.HEADER)")
        assert data[0][1] == b"From"
        typ, data = m.search(None, "UNSEEN")
        assert data == [b"1 2 4 5"], data
        typ, data = m.search(None, "FLAGGED")
        assert data == [b"2"]
        typ, data = m.search(None, 'SUBJECT "msg 4"')
        assert data == [b"4"]
        typ, data = m.search(None, "BODY", "number 5")
        assert data == [b"5"], data
        typ, data = m.search(None, "OR", "SUBJECT", '"msg 1"', "NOT", "SMALLER", "1")
        assert data == [b"1 2 3 4 5"], data
        typ, data = m.search(None, "FROM alice SENTON 1-Jul-2003 SINCE 1-Jan-2020")
        assert data == [b"1 2 3 4 5"], data
        typ, data = m.uid("SEARCH", "UID", "2:3")
        assert data == [b"2 3"]
        typ, data = m.search("UTF-8", "SUBJECT", "msg")
        assert typ == "OK"
        typ, data = m.search("KOI8-R", "SUBJECT", "msg")
        assert typ == "NO" and b"BADCHARSET" in data[0], data
        typ, data = m.store("1:2", "+FLAGS", "(\\Deleted $Label1)")
        assert typ == "OK" and b"$Label1" in data[0], data
        typ, data = m.copy("2", "Archive")
        assert typ == "OK"
        typ, data = m.uid("MOVE", "5", "Trash")
        assert typ == "OK"
        assert m.response("EXPUNGE") == ("EXPUNGE", [b"5"])
        typ, data = m.expunge()
        assert typ == "OK" and data == [b"2", b"1"], data
        typ, data = m.fetch("1:*", "(UID)")
        assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"3", b"4"]
        typ, data = m.status("Archive", "(MESSAGES UNSEEN)")
        assert data == [b'"Archive" (MESSAGES 1 UNSEEN 1)'], data
        typ, data = m.status("Trash", "(MESSAGES)")
        assert data == [b'"Trash" (MESSAGES 1)'], data
        typ, data = m.select("Archive", readonly=True)
        assert typ == "OK"
        typ, data = m.fetch("1", "(FLAGS BODY[TEXT])")
        assert b"\\Seen" not in data[0][0], data      # EXAMINE: no implicit \Seen
        typ, data = m.store("1", "+FLAGS", "(\\Seen)")
        assert typ == "NO" and b"READ-ONLY" in data[0], data
        m.close()
    finally:
        m.logout()


def test_uidplus_and_condstore(srv, account):
    c = login(srv, *account)
    with c:
        uids = [append(c, "INBOX", message("c %d" % i)) for i in range(3)]
        assert uids == [1, 2, 3]
        status, untagged = c.imap("SELECT INBOX (CONDSTORE)")
        assert status.startswith("OK [READ-WRITE]")
        hms = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(untagged)).group(1))
        _, untagged = c.imap("FETCH 1:* (MODSEQ)")
        modseqs = [int(re.search(r"MODSEQ \((\d+)\)", l).group(1)) for l in untagged]
        assert len(modseqs) == 3 and max(modseqs) <= hms
        status, untagged = c.imap("STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % modseqs[0])
        assert status.startswith("OK"), status
        assert untagged_match(untagged, r"^\* 1 FETCH \(MODSEQ \(\d+\) FLAGS \(\\Seen\)\)")
        status, untagged = c.imap("STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Answered)" %
                                  modseqs[0])
        assert status.startswith("OK [MODIFIED 1]"), status
        _, untagged = c.imap("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
        assert len(untagged) == 1 and untagged[0].startswith("* 1 FETCH"), untagged
        _, untagged = c.imap("SEARCH MODSEQ %d" % (hms + 1))
        assert re.match(r"\* SEARCH 1 \(MODSEQ \d+\)", untagged[0]), untagged
        status, untagged = c.imap("UID SEARCH RETURN (MIN MAX COUNT ALL) ALL")
        assert untagged == ['* ESEARCH (TAG "%s") UID MIN 1 MAX 3 COUNT 3 ALL 1:3' %
                            status_tag(c)], untagged
        # SEARCHRES: "$" is the saved result, for FETCH, STORE and SEARCH.
        status, untagged = c.imap("SEARCH RETURN (SAVE) UID 2:3")
        assert status.startswith("OK") and untagged == [], untagged
        _, untagged = c.imap("FETCH $ (UID)")
        assert [re.search(r"UID (\d+)", l).group(1) for l in untagged] == ["2", "3"]
        status, untagged = c.imap("UID SEARCH $ NOT UID 3")
        assert untagged == ["* SEARCH 2"], untagged
        status, untagged = c.imap("SEARCH RETURN (SAVE MAX) ALL")
        _, untagged = c.imap("UID FETCH $ (FLAGS)")
        assert len(untagged) == 1 and "UID 3" in untagged[0], untagged
        status, untagged = c.imap("UID COPY 1:3 Archive")
        assert re.match(r"OK \[COPYUID \d+ 1:3 1:3\]", status), status
        status, untagged = c.imap("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        assert status.startswith("OK")
        status, untagged = c.imap("UID EXPUNGE 1:2")
        assert untagged == ["* 2 EXPUNGE"], untagged
        status, untagged = c.imap("UID MOVE 3 Trash")
        assert status.startswith("OK"), status
        assert re.match(r"\* OK \[COPYUID \d+ 3 1\]", untagged[0]), untagged
        assert untagged[1] == "* 2 EXPUNGE", untagged
        assert c.imap("UNSELECT")[0].startswith("OK")
        assert c.imap("FETCH 1 FLAGS")[0].startswith("BAD")


def status_tag(c):
    return "T%d" % type(c)._tag


def test_quota(srv, account):
    c = login(srv, *account)
    with c:
        status, untagged = c.imap("GETQUOTAROOT INBOX")
        assert status.startswith("OK"), status
        assert untagged[0] == '* QUOTAROOT "INBOX"', untagged
        assert c.imap("SETQUOTA \"\" (STORAGE 10)")[0].startswith("NO")


def test_quota_limits_append(srv):
    addr = "quota%d@example.test" % os.getpid()
    srv.add_account(addr, "quota password", quota="2K")
    c = login(srv, addr, "quota password")
    with c:
        status, untagged = c.imap("GETQUOTAROOT INBOX")
        assert untagged == ['* QUOTAROOT "INBOX" ""', '* QUOTA "" (STORAGE 0 2)'], untagged
        append(c, "INBOX", message("small"))
        c.sendline("q1 APPEND INBOX {5000}")
        status = c.readline()
        assert status.startswith("q1 NO [OVERQUOTA]"), status
        assert c.imap("NOOP")[0].startswith("OK")


# ------------------------------------------------------------------ big bodies

def test_big_message_streams(srv, account):
    c = login(srv, *account)
    with c:
        body = b"".join(b"line %07d of a big message body........\r\n" % i
                        for i in range(120000))
        data = message("big") + body
        uid = append(c, "INBOX", data)
        c.imap("SELECT INBOX")
        c.sendline("b1 UID FETCH %d (RFC822.SIZE BODY.PEEK[])" % uid)
        head = c.readline()
        m = re.match(r"\* 1 FETCH \(UID \d+ RFC822.SIZE (\d+) BODY\[\] \{(\d+)\}$", head)
        assert m, head
        assert int(m.group(1)) == len(data) == int(m.group(2))
        got = c.buf
        c.buf = b""
        while len(got) < len(data):
            got += c.sock.recv(1 << 20)
        c.buf = got[len(data):]
        assert got[:len(data)] == data
        assert c.readline() == ")"
        status, _ = c.imap_wait("b1")
        assert status.startswith("OK")
        _, untagged = c.imap("FETCH 1 (BODY.PEEK[TEXT]<4000000.10>)")
        assert untagged[0].endswith("BODY[TEXT]<4000000> {10}"), untagged
        assert c.buf == b"" or True


def test_flags_listing_past_the_output_mark(srv, account):
    """FETCH of FLAGS, UID and MODSEQ alone comes from the session's view;
    past 256 KiB of unsent output it waits for the client to read, then goes
    on, and a command pipelined behind it is answered."""
    c = login(srv, *account)
    with c:
        n = 300
        for i in range(n):
            append(c, "INBOX", message("m%d" % i), flags="\\Seen" if i % 3 else "")
        kws = ["kw%02d-%s" % (k, "x" * 60) for k in range(16)]
        status, _ = c.imap("SELECT INBOX")
        assert status.startswith("OK"), status
        status, _ = c.imap("STORE 1:* +FLAGS.SILENT (%s)" % " ".join(kws))
        assert status.startswith("OK"), status
        # About 1.1 KB per response, 330 KB in all.
        c.send("f1 UID FETCH 1:* (UID FLAGS MODSEQ)\r\nf2 NOOP\r\n")
        status, untagged = c.imap_wait("f1")
        assert status.startswith("OK"), status
        fetches = untagged_match(untagged, r"^\* \d+ FETCH ")
        assert len(fetches) == n == len(untagged)
        for i, line in enumerate(fetches):
            assert line.startswith("* %d FETCH (UID " % (i + 1)), line
            assert all(kw in line for kw in kws), line
            assert ("\\Seen" in line) == bool(i % 3), line
            assert re.search(r"MODSEQ \(\d+\)", line), line
        status, _ = c.imap_wait("f2")
        assert status.startswith("OK"), status


# ------------------------------------------------------------------ two sessions

def test_big_mailbox_selects_see_every_change(srv, account):
    """A SELECT of a mailbox of 1,000 messages or more may reuse the listing
    an earlier SELECT read (imap_listing.c), but only of the same state:
    every change another session makes shows in the next SELECT, and a
    reused listing equals one read from the store."""
    a = login(srv, *account)
    b = login(srv, *account)
    with a, b:
        n = 1100
        data = message("bulk")
        for first in range(0, n, 220):  # MULTIAPPEND, LITERAL+
            parts = [b"bk%d APPEND INBOX" % first]
            for i in range(first, first + 220):
                flags = b" (\\Seen)" if i % 2 else (b" ($Bulk)" if i % 3 == 0 else b"")
                parts.append(flags + b" {%d+}\r\n" % len(data) + data)
            a.send(b"".join(parts) + b"\r\n")
            status, _ = a.imap_wait("bk%d" % first)
            assert status.startswith("OK"), status

        def listing(c, command="SELECT"):
            status, untagged = c.imap("%s INBOX" % command)
            assert status.startswith("OK"), status
            exists = untagged_match(untagged, r" EXISTS$")
            flags = untagged_match(untagged, r"^\* FLAGS ")
            status, fetched = c.imap("FETCH 1:* (UID FLAGS MODSEQ)")
            assert status.startswith("OK"), status
            return exists, flags, fetched

        def both():
            """Read from the store by one, possibly reused by the other."""
            got = listing(b)
            assert listing(a) == got == listing(b, "EXAMINE")
            return got

        start = both()
        assert start[0] == ["* %d EXISTS" % n]
        assert "$Bulk" in start[1][0]
        assert len(start[2]) == n
        assert "\\Seen" in start[2][1] and "$Bulk" in start[2][0], start[2][:2]
        a.imap("SELECT INBOX")
        status, _ = a.imap("STORE 5 +FLAGS.SILENT (\\Flagged $New)")
        assert status.startswith("OK"), status
        flagged = both()
        assert "$New" in flagged[1][0]
        assert "\\Flagged" in flagged[2][4] and "$New" in flagged[2][4], flagged[2][4]
        assert flagged[2][:4] == start[2][:4] and flagged[2][5:] == start[2][5:]
        a.imap("SELECT INBOX")
        a.imap("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert a.imap("EXPUNGE")[0].startswith("OK")
        expunged = both()
        assert expunged[0] == ["* %d EXISTS" % (n - 1)]
        assert expunged[2][0].startswith("* 1 FETCH (UID %s " % start[2][1].split()[4])
        uid = append(a, "INBOX", message("late"), flags="$Late")
        appended = both()
        assert appended[0] == ["* %d EXISTS" % n]
        assert appended[2][-1].startswith("* %d FETCH (UID %d FLAGS ($Late)" % (n, uid))


def test_two_sessions_see_each_other(srv, account):
    a = login(srv, *account)
    b = login(srv, *account)
    with a, b:
        for i in range(3):
            append(b, "INBOX", message("shared %d" % i))
        a.imap("SELECT INBOX")
        b.imap("SELECT INBOX")
        # New mail: EXISTS at A's next command.
        append(b, "INBOX", message("shared 3"))
        status, untagged = a.imap("NOOP")
        assert "* 4 EXISTS" in untagged, untagged
        # Flags: an unsolicited FETCH.
        b.imap("STORE 2 +FLAGS (\\Flagged)")
        _, untagged = a.imap("NOOP")
        assert untagged_match(untagged, r"^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\)\)"), untagged
        # Expunge: not during FETCH, then at NOOP.
        b.imap("STORE 1 +FLAGS (\\Deleted)")
        _, untagged = b.imap("EXPUNGE")
        assert untagged == ["* 1 EXPUNGE"], untagged
        time.sleep(0.2)
        status, untagged = a.imap("FETCH 1:* (UID)")
        assert status.startswith("OK")
        assert not untagged_match(untagged, "EXPUNGE"), untagged
        assert len(untagged_match(untagged, "FETCH")) >= 3
        _, untagged = a.imap("NOOP")
        assert "* 1 EXPUNGE" in untagged, untagged
        _, untagged = a.imap("FETCH 1:* (UID)")
        assert [re.search(r"UID (\d+)", l).group(1) for l in untagged] == ["2", "3", "4"]


def test_idle_pushes_changes(srv, account):
    a = login(srv, *account)
    b = login(srv, *account)
    with a, b:
        append(b, "INBOX", message("before idle"))
        a.imap("SELECT INBOX")
        a.sendline("i1 IDLE")
        assert a.readline().startswith("+")
        append(b, "INBOX", message("during idle"))
        assert a.readline() == "* 2 EXISTS"
        b.imap("SELECT INBOX")
        b.imap("STORE 1 +FLAGS (\\Seen)")
        assert re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\)\)", a.readline())
        b.imap("STORE 1 +FLAGS (\\Deleted)")
        a.readline()
        b.imap("EXPUNGE")
        assert a.readline() == "* 1 EXPUNGE"
        a.sendline("DONE")
        status, _ = a.imap_wait("i1")
        assert status.startswith("OK"), status
        # IDLE in the authenticated state just waits.
        a.imap("UNSELECT")
        a.sendline("i2 IDLE")
        assert a.readline().startswith("+")
        a.sendline("DONE")
        assert a.imap_wait("i2")[0].startswith("OK")


def test_idle_with_raw_imaplib_socket(srv, account):
    m = imaplib_login(srv, account)
    try:
        m.select("INBOX")
        tag = m._new_tag().decode()
        m.send(("%s IDLE\r\n" % tag).encode())
        assert m.readline().startswith(b"+")
        other = imaplib_login(srv, account)
        other.append("INBOX", None, None, message("pushed"))
        other.logout()
        assert m.readline().strip() == b"* 1 EXISTS"
        m.send(b"DONE\r\n")
        assert m.readline().startswith(tag.encode() + b" OK")
    finally:
        m.logout()


# ------------------------------------------------------------------ bad input

def test_commands_in_wrong_state(srv):
    with srv.connect("imaps") as c:
        c.readline()
        for cmd in ("SELECT INBOX", "LIST \"\" *", "FETCH 1 FLAGS", "APPEND INBOX {3}"):
            status, _ = c.imap(cmd)
            assert status.startswith("BAD"), (cmd, status)


def test_bad_sequence_sets_and_literals(srv, account):
    c = login(srv, *account)
    with c:
        status, _ = c.imap("FETCH 1 FLAGS")
        assert status.startswith("BAD")              # not selected
        append(c, "INBOX", message("one"))
        c.imap("SELECT INBOX")
        for bad in ("0", "1:x", "5", "1,,2", "4294967296", "*:0", "-1", "1:"):
            status, _ = c.imap("FETCH %s FLAGS" % bad)
            assert status.startswith("BAD"), (bad, status)
        status, untagged = c.imap("UID FETCH 99:* FLAGS")
        assert status.startswith("OK") and len(untagged) == 1, untagged   # RFC: n:* has *
        status, _ = c.imap("FETCH 1 (BODY[1.2.x])")
        assert status.startswith("BAD")
        status, _ = c.imap("FETCH 1 (FLAGS ALL)")
        assert status.startswith("BAD")
        status, _ = c.imap("STORE 1 +FLAGS (\\Recent)")
        assert status.startswith("BAD")
        status, _ = c.imap("SEARCH NOT")
        assert status.startswith("BAD")
        status, _ = c.imap("SEARCH " + "NOT " * 100 + "ALL")
        assert status.startswith("BAD")
        c.sendline("h1 APPEND INBOX {4294967296}")
        assert c.readline().startswith("h1 BAD"), "huge literal"
        c.sendline("h2 APPEND INBOX {2000000000}")
        assert c.readline().startswith("h2 NO [TOOBIG]")
        c.sendline("h3 APPEND Nowhere {10}")
        assert c.readline().startswith("h3 NO [TRYCREATE]")
        c.sendline("h4 APPEND Nowhere {3+}")
        c.send(b"abc\r\n")
        assert c.imap_wait("h4")[0].startswith("NO [TRYCREATE]")
        c.sendline("h5 APPEND INBOX {1+}")
        c.send(b"x {1+}\r\ny\r\n")
        assert c.imap_wait("h5")[0].startswith("OK [APPENDUID")     # MULTIAPPEND
        status, untagged = c.imap("NOOP")
        assert status.startswith("OK")
        c.sendline("h6 APPEND INBOX {4294967296+}")
        rest = c.read_eof(5)
        assert "BAD" in rest and "BYE" in rest, rest


# ------------------------------------------------------------------ curl

def curl(srv, account, url, *args, timeout=30):
    base = ["curl", "-sS", "--cacert", str(srv.cert), "-u", "%s:%s" % account]
    return run(base + list(args) + [url], timeout=timeout)


def test_curl(srv, account, tmp_path):
    eml = tmp_path / "msg.eml"
    eml.write_bytes(message("curl subject", body="curl body\r\n"))
    base = "imaps://localhost:%d/" % srv.ports["imaps"]
    r = curl(srv, account, base + "INBOX", "-T", str(eml))
    assert r.returncode == 0, r.stderr
    r = curl(srv, account, "imap://localhost:%d/INBOX" % srv.ports["imap"], "--ssl-reqd",
             "-T", str(eml))
    assert r.returncode == 0, r.stderr
    r = curl(srv, account, base + "INBOX;UID=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace("\r\n", "\n") == eml.read_text().replace("\r\n", "\n")
    r = curl(srv, account, base + "INBOX?SUBJECT%20curl")
    assert r.returncode == 0 and r.stdout.strip() == "* SEARCH 1 2", (r.stdout, r.stderr)
    r = curl(srv, account, base, "-X", "EXAMINE INBOX")
    assert r.returncode == 0, r.stderr
    assert "2 EXISTS" in r.stdout and "UIDVALIDITY" in r.stdout, r.stdout
    r = curl(srv, account, base + "INBOX;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)")
    assert r.returncode == 0 and "Subject: curl subject" in r.stdout, (r.stdout, r.stderr)


# ------------------------------------------------------------------ mbsync

MBSYNCRC = """\
IMAPAccount petrel
Host localhost
Port {port}
User {user}
Pass "{password}"
SSLType IMAPS
CertificateFile {cert}

IMAPStore remote
Account petrel

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Near
Create Far
Expunge Both
SyncState *
"""


def maildir_files(root):
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        for f in files:
            if os.path.basename(dirpath) in ("cur", "new"):
                out.setdefault(os.path.relpath(os.path.dirname(dirpath), root), []).append(
                    os.path.join(dirpath, f))
    return out


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="isync (mbsync) not installed")
def test_mbsync_two_way(srv, account, tmp_path):
    c = login(srv, *account)
    with c:
        c.imap("CREATE Lists/petrel")
        for i in range(3):
            append(c, "INBOX", message("inbox %d" % i))
        append(c, "Lists/petrel", message("list mail"), flags="\\Seen")
        append(c, "Sent", message("sent mail"), flags="\\Seen")
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(MBSYNCRC.format(port=srv.ports["imaps"], user=account[0],
                                  password=account[1], cert=srv.cert, local=local))
    r = run(["mbsync", "-c", str(rc), "-a"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = maildir_files(local)
    assert len(files.get("INBOX", [])) == 3, files
    assert len(files.get("Lists/petrel", [])) == 1, files
    assert len(files.get("Sent", [])) == 1, files
    # Changes on both sides: a new local folder and message, a flag on the
    # server, a local deletion.
    newdir = local / "Local"
    for sub in ("cur", "new", "tmp"):
        (newdir / sub).mkdir(parents=True)
    (newdir / "new" / "1.local.host").write_bytes(message("made locally"))
    os.unlink(files["Sent"][0])
    c = login(srv, *account)
    with c:
        c.imap("SELECT INBOX")
        c.imap("STORE 1 +FLAGS (\\Flagged)")
    r = run(["mbsync", "-c", str(rc), "-a"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    c = login(srv, *account)
    with c:
        _, untagged = c.imap("STATUS Local (MESSAGES)")
        assert untagged == ['* STATUS "Local" (MESSAGES 1)'], untagged
        _, untagged = c.imap("STATUS Sent (MESSAGES)")
        assert untagged == ['* STATUS "Sent" (MESSAGES 0)'], untagged
    flagged = [f for f in maildir_files(local)["INBOX"] if re.search(r":2,.*F", f)]
    assert len(flagged) == 1
    # A second sync changes nothing, on either side.
    before = sorted(p for fs in maildir_files(local).values() for p in fs)
    server_before = server_state(srv, account)
    r = run(["mbsync", "-c", str(rc), "-a"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    after = sorted(p for fs in maildir_files(local).values() for p in fs)
    assert before == after
    assert server_state(srv, account) == server_before


def server_state(srv, account):
    """Every mailbox's counters and HIGHESTMODSEQ: any change moves them."""
    c = login(srv, *account)
    with c:
        status, untagged = c.imap('LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT '
                                  'HIGHESTMODSEQ))')
        assert status.startswith("OK"), status
        return sorted(l for l in untagged if l.startswith("* STATUS"))


# ------------------------------------------------------------------ IMAP4rev2

MIME_MSG = (b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"caf=C3=A9 =\r\nsoft break\r\n"
            b"--XX\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
            b"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
            b"begin 644 x\r\n"
            b"--XX--\r\n")


def test_imap4rev2_and_binary(srv, account):
    import base64 as b64mod
    blob = bytes(range(256)) * 1200            # 300 KiB with NULs: streamed
    enc = b64mod.encodebytes(blob).replace(b"\n", b"\r\n").rstrip(b"\r\n")
    c = login(srv, *account)
    with c:
        _, untagged = c.imap("CAPABILITY")
        assert "IMAP4rev2" in untagged[0] and "BINARY" in untagged[0], untagged
        assert c.imap("ENABLE IMAP4rev2")[1] == ["* ENABLED IMAP4rev2"]
        append(c, "INBOX", MIME_MSG % enc)
        # literal8: a message with a NUL in it.
        c.sendline("l8 APPEND INBOX ~{12}")
        assert c.readline().startswith("+")
        c.send(b"Subject: \x00\r\n\r\nx\r\n")
        assert c.imap_wait("l8")[0].startswith("OK [APPENDUID")
        status, untagged = c.imap("SELECT INBOX")
        assert not untagged_match(untagged, "RECENT"), untagged
        _, untagged = c.imap("SEARCH SUBJECT parts")
        assert untagged == ['* ESEARCH (TAG "%s") ALL 1' % status_tag(c)], untagged
        _, untagged = c.imap("FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.PEEK[1])")
        assert untagged[0] == ("* 1 FETCH (BINARY.SIZE[1] 16 BINARY.SIZE[2] %d "
                               "BINARY[1] ~{16}" % len(blob)), untagged
        assert untagged[1] == "café soft break)", untagged
        c.sendline("b2 FETCH 1 (BINARY.PEEK[2])")
        head = c.readline()
        assert head == "* 1 FETCH (BINARY[2] ~{%d}" % len(blob), head
        got = c.buf
        c.buf = b""
        while len(got) < len(blob):
            got += c.sock.recv(1 << 20)
        c.buf = got[len(blob):]
        assert got[:len(blob)] == blob
        assert c.readline() == ")"
        assert c.imap_wait("b2")[0].startswith("OK")
        _, untagged = c.imap("FETCH 1 (BINARY.PEEK[2]<1000.3>)")
        assert untagged[0].endswith("BINARY[2]<1000> ~{3}"), untagged
        assert c.imap("FETCH 1 (BINARY.PEEK[3])")[0].startswith("NO [UNKNOWN-CTE]")
        assert c.imap("FETCH 1 (BINARY[HEADER])")[0].startswith("BAD")
        _, untagged = c.imap('LIST "" "Nope/*"')
        assert untagged == [], untagged
        status, untagged = c.imap("SELECT Sent")
        assert untagged[0] == "* OK [CLOSED] Previous mailbox closed", untagged
