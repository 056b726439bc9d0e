"""IMAP extensions on top of the base: MULTIAPPEND (RFC 3502), SORT and
SORT=DISPLAY (RFC 5256, 5957), ESORT (RFC 5267), THREAD=ORDEREDSUBJECT and
THREAD=REFERENCES (RFC 5256), I18NLEVEL=1 comparisons (RFC 5255); FETCH
corners; a two-way sync with offlineimap3."""
import imaplib
import os
import re
import shutil

import pytest

from conftest import run
from test_imap import (account, append, login, maildir_files, message,  # noqa: F401
                       server_state, srv, untagged_match)


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


# ------------------------------------------------------------------ SORT, THREAD

CRAFTED = [
    # subject, from, to, cc, date, extra headers, body size
    ("Re: Zebra", "Carol <carol@example.org>", "dave@example.test", "",
     "Tue, 1 Jul 2003 10:00:00 +0000", "In-Reply-To: <zebra@example.org>\r\n", 10),
    ("Zebra", "\"\xc3\x89mile\" <emile@example.org>", "Bob <bob@example.test>", "x@y.test",
     "Mon, 30 Jun 2003 10:00:00 +0000", "", 300),
    ("[list] apple", "alice@example.org", "=?utf-8?q?=C3=84nne?= <anne@example.test>", "",
     "Wed, 2 Jul 2003 09:00:00 +0200", "", 50),
    ("Fwd: Re: Apple", "bob@example.org", "carl@example.test", "a@b.test",
     "not a date", "References: <apple@example.org>\r\n", 1000),
    ("\xc3\x84pfel", "Zoe <zoe@example.org>", "", "",
     "Thu, 3 Jul 2003 10:00:00 +0000", "", 20),
]


def crafted(subject, frm, to, cc, date, extra, size, msgid):
    headers = "From: %s\r\n" % frm
    if to:
        headers += "To: %s\r\n" % to
    if cc:
        headers += "Cc: %s\r\n" % cc
    headers += "Subject: %s\r\nDate: %s\r\nMessage-ID: <%s@example.org>\r\n%s" % (
        subject, date, msgid, extra)
    return (headers + "\r\n" + "x" * size + "\r\n").encode("latin-1").decode(
        "utf-8").encode("utf-8")


def append_dated(c, mailbox, data, day):
    c.sendline('ad%d APPEND %s "%02d-Jan-2020 10:00:00 +0000" {%d}' % (day, mailbox, day,
                                                                      len(data)))
    assert c.readline().startswith("+")
    c.send(data + b"\r\n")
    assert c.imap_wait("ad%d" % day)[0].startswith("OK")


def crafted_mailbox(c):
    """Arrival days 6, 5, 4, 3, 2, 1: ARRIVAL is the reverse of UID order."""
    c.imap("CREATE Crafted")
    ids = ["zebra-re", "zebra", "apple", "apple-fwd", "apfel"]
    for i, (row, msgid) in enumerate(zip(CRAFTED, ids)):
        append_dated(c, "Crafted", crafted(*row, msgid), 6 - i)
    # A message with the same subject as 2 but no references.
    append_dated(c, "Crafted", crafted("Zebra", "carol@example.org", "", "",
                                       "Sun, 29 Jun 2003 10:00:00 +0000", "", 5,
                                       "zebra.orig"), 1)
    c.imap("SELECT Crafted")
    _, untagged = c.imap("FETCH 1:* RFC822.SIZE")
    return [int(re.search(r"RFC822.SIZE (\d+)", l).group(1)) for l in untagged]


def by_size(sizes, reverse=False):
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i] if reverse else sizes[i], i))
    return " ".join(str(i + 1) for i in order)


def test_sort(srv, account):
    c = login(srv, *account)
    with c:
        sizes = crafted_mailbox(c)
        cases = {
            "(ARRIVAL)": "6 5 4 3 2 1",
            "(REVERSE ARRIVAL)": "1 2 3 4 5 6",
            # Date: 4 has none usable, so its arrival (2020) counts.
            "(DATE)": "6 2 1 3 5 4",
            "(SIZE)": by_size(sizes),
            "(REVERSE SIZE)": by_size(sizes, True),
            # Base subjects: apple, apple, äpfel (a + U+0308 once folded and
            # decomposed), zebra, zebra, zebra.
            "(SUBJECT)": "3 4 5 1 2 6",
            "(SUBJECT REVERSE DATE)": "4 3 5 1 2 6",
            "(SUBJECT DATE)": "3 4 5 6 2 1",
            # FROM: local parts alice, bob, carol, carol, emile, zoe.
            "(FROM)": "3 4 1 6 2 5",
            # TO: "" (5, 6), anne, bob, carl, dave.
            "(TO)": "5 6 3 2 4 1",
            "(CC)": "1 3 5 6 4 2",
            # DISPLAYFROM: alice@, bob@, carol, carol@, émile, zoe.
            "(DISPLAYFROM)": "3 4 1 6 2 5",
            # DISPLAYTO: "", "", änne (a + U+0308), bob, carl@, dave@.
            "(DISPLAYTO)": "5 6 3 2 4 1",
        }
        for crit, expect in cases.items():
            status, untagged = c.imap("SORT %s UTF-8 ALL" % crit)
            assert status.startswith("OK"), (crit, status)
            assert untagged == ["* SORT " + expect], (crit, untagged, expect)
        _, untagged = c.imap("SORT (SUBJECT) UTF-8 SUBJECT zebra")
        assert untagged == ["* SORT 1 2 6"], untagged
        _, untagged = c.imap("UID SORT (ARRIVAL) US-ASCII 2:5")
        assert untagged == ["* SORT 5 4 3 2"], untagged
        # ESORT.
        _, untagged = c.imap("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
        assert re.match(r'\* ESEARCH \(TAG "T\d+"\) MIN 6 MAX 4 COUNT 6 ALL 6,2:1,3,5,4$'
                        .replace("2:1", "2,1"), untagged[0]), untagged
        _, untagged = c.imap("UID SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL")
        assert re.match(r'\* ESEARCH \(TAG "T\d+"\) UID ALL 1:6$', untagged[0]), untagged
        # I18NLEVEL=1: SEARCH and SORT fold non-ASCII case.
        _, untagged = c.imap("SEARCH CHARSET UTF-8 SUBJECT \"\xc3\xa4PFEL\"".encode(
            "latin-1").decode("utf-8"))
        assert untagged == ["* SEARCH 5"], untagged
        # Errors.
        assert c.imap("SORT (DATE) KOI8-R ALL")[0].startswith("NO [BADCHARSET")
        assert c.imap("SORT (COLOR) UTF-8 ALL")[0].startswith("BAD")
        assert c.imap("SORT (DATE) UTF-8")[0].startswith("BAD")
        assert c.imap("SORT RETURN (SAVE) (DATE) UTF-8 ALL")[0].startswith("BAD")


def test_thread(srv, account):
    c = login(srv, *account)
    with c:
        crafted_mailbox(c)
        _, untagged = c.imap("THREAD ORDEREDSUBJECT UTF-8 ALL")
        # zebra: 6 (Jun 29) first, then 2, 1; apple: 3 then 4 (its date is
        # its arrival); äpfel: 5.
        assert untagged == ["* THREAD (6 (2)(1))(3 4)(5)"], untagged
        _, untagged = c.imap("THREAD REFERENCES UTF-8 ALL")
        # 1 replies to 2 (In-Reply-To); 6 has 2's subject and neither is a
        # reply: a dummy holds both, dated as 6. 4 joins 3 by subject.
        assert untagged == ["* THREAD ((6)(2 1))(3 4)(5)"], untagged
        _, untagged = c.imap("UID THREAD REFERENCES UTF-8 NOT SUBJECT zebra")
        assert untagged == ["* THREAD (3 4)(5)"], untagged
        assert c.imap("THREAD FANCY UTF-8 ALL")[0].startswith("BAD")


def test_sort_and_thread_with_imaplib(srv, account):
    c = login(srv, *account)
    with c:
        sizes = crafted_mailbox(c)
    m = imaplib.IMAP4_SSL("localhost", srv.ports["imaps"], ssl_context=srv.context(),
                          timeout=20)
    try:
        m.login(*account)
        m.select("Crafted")
        typ, data = m.sort("(REVERSE SIZE)", "UTF-8", "ALL")
        assert typ == "OK" and data == [by_size(sizes, True).encode()], data
        typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"3 4 5 1 2 6"], data
        typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"(6 (2)(1))(3 4)(5)"], data
    finally:
        m.logout()


# ------------------------------------------------------------------ FETCH corners

CHILDLESS = (b"From: a@example.org\r\nSubject: childless\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=OUTER\r\n\r\n"
             b"--OUTER\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
             b"--OUTER\r\nContent-Type: multipart/alternative; boundary=GONE\r\n\r\n"
             b"no delimiter ever comes\r\n"
             b"--OUTER--\r\n")


def test_multipart_without_children(srv, account):
    c = login(srv, *account)
    with c:
        append(c, "INBOX", CHILDLESS)
        c.imap("SELECT INBOX")
        _, untagged = c.imap("FETCH 1 (BODYSTRUCTURE)")
        # Part 2 is a multipart whose only (fake) child is an empty text/plain.
        assert '(("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 0 0' in untagged[0], \
            untagged
        _, untagged = c.imap("FETCH 1 (BODY.PEEK[2.1] BODY.PEEK[2.1.MIME] BINARY.PEEK[2.1] "
                             "BINARY.SIZE[2.1] BODY.PEEK[1])")
        assert untagged[0].startswith('* 1 FETCH (BODY[2.1] "" BODY[2.1.MIME] "" '
                                      'BINARY[2.1] "" BINARY.SIZE[2.1] 0 BODY[1] {5}'), untagged
        status, _ = c.imap("FETCH 1 (BODY.PEEK[2.2])")
        assert status.startswith("OK"), status


# ------------------------------------------------------------------ offlineimap3

OFFLINEIMAPRC = """[general]
accounts = petrel
metadata = {meta}

[Account petrel]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {port}
remoteuser = {user}
remotepass = {password}
ssl = yes
sslcacertfile = {cert}
tls_level = tls_compat
"""


@pytest.mark.skipif(shutil.which("offlineimap") is None, reason="offlineimap3 not installed")
def test_offlineimap_two_way(srv, account, tmp_path):
    c = login(srv, *account)
    with c:
        c.imap("CREATE Projects")
        for i in range(3):
            append(c, "INBOX", message("oi inbox %d" % i))
        append(c, "Projects", message("oi project"), flags="\\Seen")
    local = tmp_path / "mail"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(OFFLINEIMAPRC.format(meta=tmp_path / "meta", local=local,
                                       port=srv.ports["imaps"], user=account[0],
                                       password=account[1], cert=srv.cert))
    sync = ["offlineimap", "-c", str(rc), "-o", "-u", "basic"]
    r = run(sync, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = maildir_files(local)
    assert len(files.get("INBOX", [])) == 3, files
    assert len(files.get("Projects", [])) == 1, files
    assert re.search(r",FMD5=\w+:2,S$", files["Projects"][0]), files
    # Both sides change: a local message and flag, a server expunge.
    (local / "INBOX" / "new" / "1.local.host").write_bytes(message("oi made locally"))
    os.rename(files["Projects"][0], files["Projects"][0] + "F")
    c = login(srv, *account)
    with c:
        c.imap("SELECT INBOX")
        c.imap("STORE 1 +FLAGS (\\Deleted)")
        c.imap("EXPUNGE")
    r = run(sync, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    c = login(srv, *account)
    with c:
        _, untagged = c.imap("STATUS INBOX (MESSAGES)")
        assert untagged == ['* STATUS "INBOX" (MESSAGES 3)'], untagged
        c.imap("SELECT Projects")
        _, untagged = c.imap("FETCH 1 FLAGS")
        assert "\\Flagged" in untagged[0] and "\\Seen" in untagged[0], untagged
    assert len(maildir_files(local)["INBOX"]) == 3
    # A second sync changes nothing, on either side.
    before = sorted(p for fs in maildir_files(local).values() for p in fs)
    server_before = server_state(srv, account)
    r = run(sync, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p for fs in maildir_files(local).values() for p in fs) == before
    assert server_state(srv, account) == server_before
