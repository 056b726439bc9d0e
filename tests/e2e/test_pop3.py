"""POP3 after login (RFC 1939 TRANSACTION and UPDATE states, RFC 2449):
STAT, LIST, UIDL, RETR, TOP, DELE, RSET, QUIT, the one-session-per-maildrop
lock, and real clients: poplib, curl, fetchmail and getmail6.

Messages get into INBOX with `petrel import mbox ADDR FILE`, or over SMTP
where the build has no mbox import yet; each test uses accounts of its own
on a daemon shared by the module (tests that restart or stop the daemon make
their own)."""
import itertools
import os
import poplib
import re
import shutil
import signal
import smtplib
import subprocess
import time

import pytest

from conftest import IS_ROOT, run

PASSWORD = "pop3 test password"
_ids = itertools.count(1)


# ------------------------------------------------------------------ helpers

def message(i, body_lines=3, size=0, lf=False, extra=""):
    """A small RFC 5322 message; size pads the body to about that many
    bytes. Lines starting with "." test dot-stuffing."""
    head = ["From: Sender <sender@example.test>",
            "To: user@example.test",
            "Subject: message %d" % i,
            "Message-ID: <m%d.%d@example.test>" % (i, os.getpid()),
            "Date: Mon, 1 Jan 2024 00:00:%02d +0000" % (i % 60)]
    body = ["line %d of message %d" % (n, i) for n in range(1, body_lines + 1)]
    body.append(".a line that starts with a dot")
    body.append("..two dots")
    body.append(".")
    if extra:
        body.append(extra)
    text = "\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body) + "\r\n"
    if size > len(text):
        pad = "x" * 70
        text += "".join("%06d %s\r\n" % (n, pad) for n in range((size - len(text)) // 79 + 1))
    if lf:
        text = text.replace("\r\n", "\n")
    return text


def lines_of(text):
    """The lines a POP3 client gets for a message (line ends dropped)."""
    text = text.replace("\r\n", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


def same_message(got, sent):
    """got (lines) is the message sent, with at most trace header fields
    (Return-Path, Received) that delivery put in front."""
    want = lines_of(sent)
    extra = len(got) - len(want)
    if extra < 0 or got[extra:] != want:
        return False
    return all(re.match(r"^([A-Za-z-]+:|[ \t])", l) for l in got[:extra])


class Account:
    def __init__(self, srv, address):
        self.srv = srv
        self.address = address
        self.sent = []      # messages put into INBOX, in order

    def put(self, *msgs):
        """Puts messages into INBOX: with `petrel import mbox` where the
        build has it, else delivered over SMTP to the MX port. What the store
        then holds (with any trace headers added) goes to self.sent."""
        srv = self.srv
        if not self._import_mbox(msgs):
            with smtplib.SMTP("127.0.0.1", srv.ports["mx"], local_hostname="sender.test",
                              timeout=60) as smtp:
                for m in msgs:
                    smtp.sendmail("sender@remote.test", [self.address],
                                  m.replace("\r\n", "\n").replace("\n", "\r\n").encode())
        self.sent.extend(msgs)

    def _import_mbox(self, msgs):
        srv = self.srv
        path = srv.dir.parent / ("import-%d.mbox" % next(_ids))
        with open(path, "w", newline="") as f:
            for m in msgs:
                assert "\nFrom " not in m and not m.startswith("From ")
                m = m.replace("\r\n", "\n")
                f.write("From sender@example.test Mon Jan  1 00:00:00 2024\n")
                # A From_ line starts a message only after an empty line.
                f.write(m if m.endswith("\n") else m + "\n")
                f.write("\n")
        srv.give_to_daemon_user(path)
        r = srv.cli("import", "mbox", self.address, path, expect=None, timeout=120)
        if r.returncode != 0 and re.search(r"usage|unknown", r.stdout + r.stderr, re.I):
            return False
        assert r.returncode == 0, r.stdout + r.stderr
        return True


def new_account(srv, prefix="pop"):
    address = "%s%d@example.test" % (prefix, next(_ids))
    srv.add_account(address, PASSWORD)
    return Account(srv, address)


@pytest.fixture(scope="module")
def srv(module_factory):
    return module_factory(config={"auth_penalty_initial": "100ms",
                                  "auth_penalty_max": "200ms"})


@pytest.fixture
def acct(srv):
    return new_account(srv)


def login(srv, acct, service="pop3s", source=None, expect="+OK"):
    c = srv.connect(service, source=source)
    assert c.readline().startswith("+OK")
    if service == "pop3":
        assert c.pop3("STLS").startswith("+OK")
        c.starttls(srv.context())
    assert c.pop3("USER " + acct.address).startswith("+OK")
    reply = c.pop3("PASS " + PASSWORD)
    assert reply.startswith(expect), reply
    return c


def login_retry(srv, acct, **kw):
    """Logs in, waiting while a session that just went away still holds
    the maildrop lock ([IN-USE])."""
    deadline = time.monotonic() + 10
    while True:
        c = srv.connect("pop3s")
        c.readline()
        c.pop3("USER " + acct.address)
        reply = c.pop3("PASS " + PASSWORD)
        if reply.startswith("+OK"):
            return c
        c.close()
        assert "[IN-USE]" in reply and time.monotonic() < deadline, reply
        time.sleep(0.05)


def poplib_client(srv, acct, service="pop3s"):
    if service == "pop3s":
        p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], timeout=30,
                            context=srv.context())
    else:
        p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
        p.stls(context=srv.context())
    p.user(acct.address)
    p.pass_(PASSWORD)
    return p


def uidls(c):
    first, lines = c.pop3_multi("UIDL")
    assert first.startswith("+OK"), first
    return dict(l.split(" ", 1) for l in lines)


def stat(c):
    reply = c.pop3("STAT")
    m = re.match(r"^\+OK (\d+) (\d+)$", reply)
    assert m, reply
    return int(m.group(1)), int(m.group(2))


def retr(c, n, command="RETR"):
    first, lines = c.pop3_multi("%s %s" % (command, n))
    assert first.startswith("+OK"), first
    return lines


# ------------------------------------------------------------------ protocol

def test_capa_announces_maildrop_commands(srv, acct):
    for when in ("before", "after"):
        with srv.connect("pop3s") as c:
            c.readline()
            if when == "after":
                c.pop3("USER " + acct.address)
                assert c.pop3("PASS " + PASSWORD).startswith("+OK")
            first, caps = c.pop3_multi("CAPA")
            assert first.startswith("+OK")
            caps = [x.upper() for x in caps]
            for cap in ("TOP", "UIDL", "EXPIRE NEVER", "RESP-CODES", "PIPELINING", "USER"):
                assert cap in caps, (when, caps)
            # Not configured, so not announced.
            assert not any(x.startswith("LOGIN-DELAY") for x in caps), caps


def test_stat_list_uidl_retr_top(srv, acct):
    acct.put(message(1), message(2, lf=True), message(3, body_lines=20))
    with login(srv, acct, "pop3") as c:
        count, size = stat(c)
        assert count == 3
        first, listing = c.pop3_multi("LIST")
        assert first.startswith("+OK")
        sizes = [int(l.split()[1]) for l in listing]
        assert [l.split()[0] for l in listing] == ["1", "2", "3"]
        assert sum(sizes) == size
        assert c.pop3("LIST 2") == "+OK 2 %d" % sizes[1]
        ids = uidls(c)
        assert list(ids) == ["1", "2", "3"]
        assert len(set(ids.values())) == 3
        for v in ids.values():
            assert 1 <= len(v) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in v), v
        assert c.pop3("UIDL 3") == "+OK 3 " + ids["3"]
        for n in (1, 2, 3):
            assert same_message(retr(c, n), acct.sent[n - 1]), n
        # TOP: the header, the blank line, then n body lines.
        lines = retr(c, 3)
        blank = lines.index("")
        assert retr(c, "3 0", "TOP") == lines[:blank + 1]
        assert retr(c, "3 2", "TOP") == lines[:blank + 3]
        assert retr(c, "3 100000", "TOP") == lines
        assert retr(c, "3 99999999999999999999999", "TOP") == lines
        assert c.pop3("NOOP").startswith("+OK")
        assert c.pop3("QUIT").startswith("+OK")


def test_retr_sends_crlf_and_stuffs_dots(srv, acct):
    acct.put(message(1, lf=True, extra=".\n.."))
    with login(srv, acct) as c:
        c.sendline("RETR 1")
        raw = b""
        while not raw.endswith(b"\r\n.\r\n") or raw.count(b"\r\n") < 3:
            chunk = c.sock.recv(65536)
            assert chunk, raw
            raw += chunk
        first, _, body = raw.partition(b"\r\n")
        assert first.startswith(b"+OK")
        # Every line ends with CRLF; no bare LF.
        assert b"\n" not in body.replace(b"\r\n", b"")
        assert b"\r\n..a line that starts with a dot\r\n" in body
        assert b"\r\n...two dots\r\n" in body
        assert b"\r\n..\r\n" in body
        assert body.endswith(b"\r\n.\r\n")


def test_big_message_streams_to_a_slow_reader(srv, acct):
    big = message(1, size=6 * 1024 * 1024)
    acct.put(big, message(2))
    with login(srv, acct) as c:
        # Pipelined after the big RETR: answered in order once it is done.
        c.send("RETR 1\r\nSTAT\r\n")
        time.sleep(1.0)           # let the server's output back up
        raw = bytearray()
        while not re.search(rb"\r\n\.\r\n\+OK 2 \d+\r\n$", raw):
            chunk = c.sock.recv(1 << 20)
            assert chunk, bytes(raw[-200:])
            raw += chunk
        first, _, rest = bytes(raw).partition(b"\r\n")
        assert first.startswith(b"+OK"), first
        body = rest[:rest.index(b"\r\n.\r\n") + 2].decode()
        lines = [l[1:] if l.startswith("..") else l for l in body.split("\r\n")[:-1]]
        assert same_message(lines, big)
        assert c.pop3("QUIT").startswith("+OK")


def at_offset(offset, i):
    """A message (LF line ends, as the mbox import stores it) in which a
    line starting with "." begins at byte offset: across the boundary of
    the chunks RETR reads (64 KiB) when offset is near a multiple of it."""
    head = "Subject: boundary %d\n\n" % i
    fill = offset - len(head)
    lines = []
    while fill > 0:
        n = min(fill, 100)
        if n == 1:
            lines.append("\n")
        else:
            lines.append("f" * (n - 1) + "\n")
        fill -= n
    text = head + "".join(lines)
    assert len(text) == offset
    return text + ".dot at the boundary\n" + "tail\n" * 20000 + ".\n..\nend"


def test_chunk_boundaries(srv, acct):
    sizes = (65535, 65536, 65537, 131072)
    acct.put(*[at_offset(off, i) for i, off in enumerate(sizes)])
    with login(srv, acct) as c:
        for n in range(1, len(sizes) + 1):
            assert same_message(retr(c, n), acct.sent[n - 1]), n
            top = retr(c, "%d 0" % n, "TOP")
            assert top[-1] == "" and top[0].startswith("Subject: boundary"), top[:3]


def test_dele_then_quit_deletes(srv, acct):
    acct.put(message(1), message(2), message(3))
    with login(srv, acct) as c:
        ids = uidls(c)
        assert c.pop3("DELE 2").startswith("+OK")
        # A deleted message is gone from the session's view.
        assert stat(c)[0] == 2
        assert c.pop3("RETR 2").startswith("-ERR")
        assert c.pop3("LIST 2").startswith("-ERR")
        assert c.pop3("DELE 2").startswith("-ERR")
        first, listing = c.pop3_multi("LIST")
        assert [l.split()[0] for l in listing] == ["1", "3"]
        assert list(uidls(c)) == ["1", "3"]
        assert c.pop3("QUIT").startswith("+OK")
        assert c.read_eof() == ""
    with login(srv, acct) as c:
        assert stat(c)[0] == 2
        after = uidls(c)
        assert list(after.values()) == [ids["1"], ids["3"]]
        assert same_message(retr(c, 2), acct.sent[2])


def test_dropped_connection_deletes_nothing(srv, acct):
    acct.put(message(1), message(2))
    c = login(srv, acct)
    assert c.pop3("DELE 1").startswith("+OK")
    assert c.pop3("DELE 2").startswith("+OK")
    c.close()
    with login_retry(srv, acct) as c:
        assert stat(c)[0] == 2
        assert c.pop3("QUIT").startswith("+OK")


def test_rset_unmarks(srv, acct):
    acct.put(message(1), message(2))
    with login(srv, acct) as c:
        _, size = stat(c)
        c.pop3("DELE 1")
        c.pop3("DELE 2")
        assert stat(c) == (0, 0)
        assert c.pop3("RSET").startswith("+OK")
        assert stat(c) == (2, size)
        assert c.pop3("QUIT").startswith("+OK")
    with login(srv, acct) as c:
        assert stat(c)[0] == 2


def test_maildrop_is_a_snapshot(srv, acct):
    acct.put(message(1))
    with login(srv, acct) as c:
        assert stat(c)[0] == 1
        acct.put(message(2))
        # New mail shows in the next session, not this one.
        assert stat(c)[0] == 1
        assert c.pop3("RETR 2").startswith("-ERR")
        assert c.pop3("QUIT").startswith("+OK")
    with login(srv, acct) as c:
        assert stat(c)[0] == 2


def test_one_session_per_maildrop(srv, acct):
    acct.put(message(1))
    a = login(srv, acct)
    b = srv.connect("pop3s")
    b.readline()
    b.pop3("USER " + acct.address)
    reply = b.pop3("PASS " + PASSWORD)
    assert reply.startswith("-ERR [IN-USE]"), reply
    # Still in the AUTHORIZATION state: a later try works.
    assert b.pop3("STAT").startswith("-ERR")
    assert a.pop3("QUIT").startswith("+OK")
    a.close()
    b.pop3("USER " + acct.address)
    assert b.pop3("PASS " + PASSWORD).startswith("+OK")
    assert stat(b)[0] == 1
    # Another account is not affected.
    other = new_account(srv)
    with login(srv, other) as c:
        assert stat(c) == (0, 0)
    b.close()


def test_pipelined_commands(srv, acct):
    acct.put(message(1), message(2))
    with srv.connect("pop3s") as c:
        c.readline()
        c.send("USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 1\r\nTOP 1 0\r\nRETR 2\r\n"
               "DELE 1\r\nNOOP\r\nQUIT\r\n" % (acct.address, PASSWORD))
        out = c.read_eof()
    lines = out.split("\r\n")
    statuses = [l for l in lines if l.startswith("+OK") or l.startswith("-ERR")]
    assert len(statuses) == 10, out
    assert all(l.startswith("+OK") for l in statuses), out
    with login_retry(srv, acct) as c:
        assert stat(c)[0] == 1


def test_bad_input(srv, acct, src_ip):
    acct.put(message(1), message(2))
    with srv.connect("pop3s", source=src_ip) as c:
        c.readline()
        # Commands of the TRANSACTION state before login.
        for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1", "RSET", "NOOP"):
            assert c.pop3(cmd).startswith("-ERR"), cmd
    # Out of range and malformed message numbers; a few per session, as
    # malformed commands count towards the limit of bad commands.
    bad = ["USER x", "PASS x", "AUTH PLAIN", "STLS", "FOO",
           "RETR 0", "RETR 3", "RETR -1", "RETR +1", "RETR 1x", "RETR 0x1",
           "RETR 4294967297", "RETR 99999999999999999999999", "RETR", "RETR 1 2",
           "LIST 0", "LIST x", "LIST 1 2", "UIDL 3", "DELE 3", "DELE",
           "TOP 1", "TOP 1 -1", "TOP 1 x", "TOP 3 0", "TOP 1 2 3", "STAT x",
           "RSET x", "NOOP x", "QUIT x"]
    for i in range(0, len(bad), 5):
        with login_retry(srv, acct) as c:
            for cmd in bad[i:i + 5]:
                assert c.pop3(cmd).startswith("-ERR"), cmd
            # The session is still in sync and usable.
            assert stat(c)[0] == 2
            assert c.pop3("QUIT").startswith("+OK")
    with login(srv, acct, source=src_ip) as c:
        # An over-long line is refused and the session stays in sync.
        assert c.pop3("LIST " + "1" * 5000).startswith("-ERR")
        assert stat(c)[0] == 2
        assert c.pop3("QUIT").startswith("+OK")
    with login_retry(srv, acct) as c:
        # Too many bad commands end the session. (Exactly as many as it
        # takes: unread input would make the close a reset.)
        c.send("BOGUS\r\n" * 10)
        out = c.read_eof()
        assert "Too many errors" in out
    with login_retry(srv, acct) as c:
        # Nothing was deleted by all that.
        assert stat(c)[0] == 2


def test_pipelined_commands_before_stls_are_discarded(srv, acct):
    acct.put(message(1))
    with srv.connect("pop3") as c:
        c.readline()
        c.send("STLS\r\nUSER %s\r\nPASS %s\r\nDELE 1\r\nQUIT\r\n" % (acct.address, PASSWORD))
        assert c.readline().startswith("+OK")
        c.starttls(srv.context())
        # Nothing of the injected session happened: not logged in.
        assert c.pop3("STAT").startswith("-ERR")
        c.pop3("USER " + acct.address)
        assert c.pop3("PASS " + PASSWORD).startswith("+OK")
        assert stat(c)[0] == 1


def test_shutdown_deletes_nothing(petrel_factory):
    p = petrel_factory()
    a = new_account(p)
    a.put(message(1))
    c = login(p, a)
    assert c.pop3("DELE 1").startswith("+OK")
    os.kill(p.pid, signal.SIGTERM)
    out = c.read_eof()
    assert "-ERR [SYS/TEMP]" in out, out
    assert p.wait_exit() == 0
    p.start()
    with login(p, a) as c:
        assert stat(c)[0] == 1


# ------------------------------------------------------------------ poplib

def test_poplib_download_and_delete(srv, acct):
    acct.put(message(1), message(2, size=200000), message(3))
    p = poplib_client(srv, acct, "pop3")
    try:
        count, _ = p.stat()
        assert count == 3
        for n in range(1, count + 1):
            _, lines, _ = p.retr(n)
            assert same_message([l.decode() for l in lines], acct.sent[n - 1])
            p.dele(n)
    finally:
        p.quit()
    p = poplib_client(srv, acct)
    try:
        assert p.stat()[0] == 0
        assert p.list()[1] == []
    finally:
        p.quit()


def test_poplib_leave_on_server(srv, acct):
    acct.put(message(1), message(2))
    p = poplib_client(srv, acct)
    try:
        seen = {l.split()[1] for l in p.uidl()[1]}
        for n in range(1, 3):
            p.retr(n)
        # TOP reads the header without the body.
        _, top, _ = p.top(1, 0)
        assert b"Subject: message 1" in top and top[-1] == b""
    finally:
        p.quit()
    acct.put(message(3))
    p = poplib_client(srv, acct)
    try:
        now = {l.split()[0]: l.split()[1] for l in p.uidl()[1]}
        new = [n for n, u in now.items() if u not in seen]
        assert new == [b"3"]
        _, lines, _ = p.retr(3)
        assert same_message([l.decode() for l in lines], acct.sent[2])
    finally:
        p.quit()


def test_uidl_stable_across_restart(petrel_factory):
    p = petrel_factory()
    a = new_account(p)
    a.put(message(1), message(2), message(3))
    cl = poplib_client(p, a)
    before = cl.uidl()[1]
    cl.quit()
    assert p.stop() == 0
    p.start()
    cl = poplib_client(p, a)
    try:
        assert cl.uidl()[1] == before
    finally:
        cl.quit()


def test_imap_and_pop3_on_the_same_account(srv, acct):
    acct.put(message(1), message(2))
    with login(srv, acct) as pop:
        with srv.connect("imaps") as imap:
            imap.readline()
            status, _ = imap.imap('LOGIN "%s" "%s"' % (acct.address, PASSWORD))
            assert status.startswith("OK"), status
            status, untagged = imap.imap("SELECT INBOX")
            selected = status.startswith("OK")
            if selected:
                assert "* 2 EXISTS" in untagged, untagged
            assert pop.pop3("DELE 1").startswith("+OK")
            assert pop.pop3("QUIT").startswith("+OK")
            if selected:
                # The IMAP session learns of the expunge at once.
                status, untagged = imap.imap("NOOP")
                assert status.startswith("OK")
                assert "* 1 EXPUNGE" in untagged, untagged
            imap.imap("LOGOUT")
    with login(srv, acct) as c:
        assert stat(c)[0] == 1


def imap_session(srv, acct):
    c = srv.connect("imaps")
    c.readline()
    status, _ = c.imap('LOGIN "%s" "%s"' % (acct.address, PASSWORD))
    assert status.startswith("OK"), status
    status, _ = c.imap("SELECT INBOX")
    assert status.startswith("OK"), status
    return c


def imap_flags(imap):
    status, untagged = imap.imap("FETCH 1:* FLAGS")
    assert status.startswith("OK"), status
    return [l for l in untagged if " FETCH " in l]


def test_retr_marks_seen_top_does_not(srv, acct):
    acct.put(message(1), message(2), message(3))
    with login(srv, acct) as c:
        retr(c, 1)
        retr(c, "2 0", "TOP")
        retr(c, 3)
        assert c.pop3("DELE 3").startswith("+OK")
        assert c.pop3("QUIT").startswith("+OK")
    with imap_session(srv, acct) as imap:
        flags = imap_flags(imap)
        assert len(flags) == 2, flags
        assert "\\Seen" in flags[0], flags
        assert "\\Seen" not in flags[1], flags


def imap_expunge(imap, seqs):
    status, _ = imap.imap("STORE %s +FLAGS.SILENT (\\Deleted)" % seqs)
    assert status.startswith("OK"), status
    status, _ = imap.imap("EXPUNGE")
    assert status.startswith("OK"), status


def test_message_expunged_by_imap_meanwhile(srv, acct):
    acct.put(message(1), message(2), message(3))
    with login(srv, acct) as pop, imap_session(srv, acct) as imap:
        ids = uidls(pop)
        imap_expunge(imap, "1:2")
        # The maildrop is the snapshot of the login...
        assert stat(pop)[0] == 3
        assert uidls(pop) == ids
        # ...but what IMAP expunged cannot be read any more.
        assert pop.pop3("RETR 1") == "-ERR Message was deleted by another session"
        assert pop.pop3("TOP 2 0").startswith("-ERR")
        assert same_message(retr(pop, 3), acct.sent[2])
        # Deleting a message that is already gone is fine.
        assert pop.pop3("DELE 1").startswith("+OK")
        assert pop.pop3("QUIT").startswith("+OK")
    with login_retry(srv, acct) as c:
        assert list(uidls(c).values()) == [ids["3"]]


def test_read_ahead_dropped_when_inbox_changes(srv, acct):
    """RETR reads the next small messages ahead; a change committed to
    INBOX meanwhile (here an expunge by IMAP) makes it read them again."""
    acct.put(message(1), message(2), message(3), message(4))
    with login(srv, acct) as pop, imap_session(srv, acct) as imap:
        ids = uidls(pop)
        assert same_message(retr(pop, 1), acct.sent[0])
        imap_expunge(imap, "2")
        assert stat(pop)[0] == 4
        assert uidls(pop) == ids
        assert pop.pop3("RETR 2") == "-ERR Message was deleted by another session"
        assert same_message(retr(pop, 3), acct.sent[2])
        assert same_message(retr(pop, 4), acct.sent[3])
        assert pop.pop3("QUIT").startswith("+OK")


def test_read_ahead_in_any_order(srv, acct):
    """What RETR sends is the message asked for, read ahead or not: in
    order, out of order, after DELE and TOP, pipelined."""
    msgs = [message(i, body_lines=i * 7) for i in range(1, 9)]
    acct.put(*msgs)
    with login(srv, acct) as c:
        assert same_message(retr(c, 1), msgs[0])
        assert c.pop3("DELE 2").startswith("+OK")
        assert c.pop3("RETR 2") == "-ERR Message is deleted"
        top = retr(c, "3 0", "TOP")
        assert same_message(retr(c, 4), msgs[3])
        third = retr(c, 3)
        assert same_message(third, msgs[2])
        assert top == third[:third.index("") + 1]
        assert same_message(retr(c, 5), msgs[4])
        c.send("RETR 6\r\nRETR 7\r\nRETR 8\r\nRETR 6\r\n")
        for n in (6, 7, 8, 6):
            assert c.readline().startswith("+OK")
            lines = []
            while (line := c.readline()) != ".":
                lines.append(line[1:] if line.startswith("..") else line)
            assert same_message(lines, msgs[n - 1]), n
        assert c.pop3("QUIT").startswith("+OK")
    with imap_session(srv, acct) as imap:
        flags = imap_flags(imap)
        # All but the deleted one are left, and every one was retrieved.
        assert len(flags) == 7, flags
        assert all("\\Seen" in f for f in flags), flags


def test_uidl_unique_for_copies(srv, acct):
    acct.put(message(1))
    with imap_session(srv, acct) as imap:
        status, _ = imap.imap("COPY 1 INBOX")
        assert status.startswith("OK"), status
    with login(srv, acct) as c:
        ids = uidls(c)
        assert len(ids) == 2 and len(set(ids.values())) == 2, ids
        assert same_message(retr(c, 2), acct.sent[0])
    # And they stay what they were.
    with login_retry(srv, acct) as c:
        assert uidls(c) == ids


# ------------------------------------------------------------------ curl

@pytest.mark.parametrize("scheme,service,extra", [("pop3", "pop3", ["--ssl-reqd"]),
                                                  ("pop3s", "pop3s", [])])
def test_curl(srv, acct, scheme, service, extra):
    acct.put(message(1), message(2))
    base = ["curl", "-sS", "--cacert", str(srv.cert), "-u",
            "%s:%s" % (acct.address, PASSWORD), *extra]
    url = "%s://localhost:%d/" % (scheme, srv.ports[service])
    r = run(base + [url], timeout=30)
    assert r.returncode == 0, r.stderr
    assert [l.split()[0] for l in r.stdout.splitlines()] == ["1", "2"], r.stdout
    r = run(base + [url + "2"], timeout=30)
    assert r.returncode == 0, r.stderr
    assert same_message(lines_of(r.stdout), acct.sent[1])
    r = run(base + ["-X", "UIDL", url], timeout=30)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
    r = run(base + [url + "3"], timeout=30)
    assert r.returncode != 0


# ------------------------------------------------------------------ fetchmail

def fetchmail_run(srv, acct, workdir, keep, ssl):
    rc = workdir / "fetchmailrc"
    out = workdir / "delivered.mbox"
    opts = "keep" if keep else "nokeep"
    rc.write_text(
        "set no syslog\n"
        "poll localhost protocol pop3 port %d\n"
        "  user \"%s\" password \"%s\" is root here\n"
        "  %s %s sslcertfile %s sslcertck\n"
        "  mda \"cat >> %s\"\n" % (
            srv.ports["pop3s" if ssl else "pop3"],
            acct.address, PASSWORD, "ssl" if ssl else "sslproto TLS1.2+", opts, srv.cert,
            out))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(workdir), FETCHMAILHOME=str(workdir))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--idfile",
                        str(workdir / "fetchids"), "-v"],
                       capture_output=True, text=True, timeout=120, env=env)
    # 0: mail fetched, 1: no mail.
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r, (out.read_text() if out.exists() else "")


def delivered_subjects(mbox):
    return re.findall(r"^Subject: (message \d+)$", mbox, re.M)


@pytest.fixture
def fetchmail(tmp_path):
    if shutil.which("fetchmail") is None:
        pytest.skip("fetchmail is not installed")
    return tmp_path


@pytest.mark.parametrize("ssl", [False, True], ids=["stls", "pop3s"])
def test_fetchmail_keep(srv, acct, fetchmail, ssl):
    acct.put(message(1), message(2), message(3))
    r, mbox = fetchmail_run(srv, acct, fetchmail, keep=True, ssl=ssl)
    assert r.returncode == 0, r.stdout + r.stderr
    assert delivered_subjects(mbox) == ["message 1", "message 2", "message 3"]
    # A second run fetches nothing new (fetchmail keeps the UIDLs it saw
    # in its idfile); a new message only that.
    r, mbox = fetchmail_run(srv, acct, fetchmail, keep=True, ssl=ssl)
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(delivered_subjects(mbox)) == 3
    acct.put(message(4))
    r, mbox = fetchmail_run(srv, acct, fetchmail, keep=True, ssl=ssl)
    assert r.returncode == 0, r.stdout + r.stderr
    assert delivered_subjects(mbox)[3:] == ["message 4"]
    with login_retry(srv, acct) as c:
        assert stat(c)[0] == 4


def test_fetchmail_delete(srv, acct, fetchmail):
    acct.put(message(1), message(2, size=300000), message(3))
    r, mbox = fetchmail_run(srv, acct, fetchmail, keep=False, ssl=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert delivered_subjects(mbox) == ["message 1", "message 2", "message 3"]
    body = mbox.split("Subject: message 2", 1)[1]
    assert ".a line that starts with a dot" in body and "\n..a line" not in body
    r, mbox = fetchmail_run(srv, acct, fetchmail, keep=False, ssl=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(delivered_subjects(mbox)) == 3
    with login_retry(srv, acct) as c:
        assert stat(c) == (0, 0)


# ------------------------------------------------------------------ getmail6

def getmail_run(srv, acct, workdir, delete):
    maildir = workdir / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    user = "root"
    if IS_ROOT:
        # getmail refuses to deliver as root: give the Maildir to nobody.
        user = "nobody"
        for path in [maildir] + [maildir / s for s in ("cur", "new", "tmp")]:
            os.chown(path, 65534, 65534)
    rc = workdir / "getmailrc"
    rc.write_text(
        "[retriever]\n"
        "type = SimplePOP3SSLRetriever\n"
        "server = localhost\n"
        "port = %d\n"
        "username = %s\n"
        "password = %s\n"
        "ca_certs = %s\n"
        "\n[destination]\n"
        "type = Maildir\n"
        "path = %s/\n"
        "%s"
        "\n[options]\n"
        "delete = %s\n"
        "read_all = false\n"
        "verbose = 2\n" % (srv.ports["pop3s"], acct.address, PASSWORD, srv.cert, maildir,
                           "user = %s\n" % user if IS_ROOT else "",
                           "true" if delete else "false"))
    gdir = workdir / "getmail"
    gdir.mkdir(exist_ok=True)
    r = subprocess.run(["getmail", "--rcfile", str(rc), "--getmaildir", str(gdir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = sorted((maildir / "new").iterdir())
    return r, [f.read_text() for f in files]


@pytest.fixture
def getmail(srv):
    if shutil.which("getmail") is None:
        pytest.skip("getmail6 is not installed")
    # Where the delivering user (nobody, when we are root) can reach.
    path = srv.dir.parent / ("getmail-%d" % next(_ids))
    path.mkdir(mode=0o755)
    return path


def test_getmail_leave_on_server(srv, acct, getmail):
    acct.put(message(1), message(2))
    r, got = getmail_run(srv, acct, getmail, delete=False)
    assert sorted(delivered_subjects("".join(got))) == ["message 1", "message 2"]
    r, got = getmail_run(srv, acct, getmail, delete=False)
    assert len(got) == 2, r.stdout
    acct.put(message(3))
    r, got = getmail_run(srv, acct, getmail, delete=False)
    assert sorted(delivered_subjects("".join(got))) == ["message 1", "message 2", "message 3"]
    with login_retry(srv, acct) as c:
        assert stat(c)[0] == 3


def test_getmail_delete(srv, acct, getmail):
    acct.put(message(1), message(2, size=100000))
    r, got = getmail_run(srv, acct, getmail, delete=True)
    assert sorted(delivered_subjects("".join(got))) == ["message 1", "message 2"]
    big = [g for g in got if "Subject: message 2" in g][0]
    assert lines_of(big.split("\n\n", 1)[1]) == lines_of(acct.sent[1].split("\r\n\r\n", 1)[1])
    with login_retry(srv, acct) as c:
        assert stat(c) == (0, 0)
