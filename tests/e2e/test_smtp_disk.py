"""Storage trouble during an SMTP transaction: a mailbox or the temporary
directory the daemon cannot write (451 4.3.0, nothing acknowledged, nothing
kept), and a file system short of space (452 4.3.1 before any data; a write
that fails for want of space is 451 4.3.0). The daemon runs as user petrel,
so taking the write permission away from a directory is a disk error for
it; the full disk is a small tmpfs made for the test."""
import os
import subprocess

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, IS_ROOT, Petrel, petrel_uid_gid
from test_smtp_helpers import (HOLD_QUEUE, inbox, inbox_count, message, mx_session,
                               open_temp_files, queued, send_data)

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: the daemon must run "
                                "as another user, and the tmpfs must be mounted")

CONFIG = {"smtp_pregreet_delay": "0", **HOLD_QUEUE}


def temp_files(p):
    return [f for d in (p.dir / "tmp", p.dir / "queue" / "tmp") if d.exists()
            for f in d.iterdir()] + open_temp_files(p)


def set_dir_modes(top, mode):
    """chmod top and every directory under it."""
    os.chmod(top, mode)
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), mode)


def send(p, rcpt, subject, size=0):
    """One message on the MX port; returns the final reply (code, lines)."""
    with mx_session(p) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        code, lines = c.smtp("RCPT TO:<%s>" % rcpt)
        assert code == 250, lines
        return send_data(c, message(to=rcpt, subject=subject, body="b" * size + "\r\n"))


# ---------------------------------------------------------------- disk errors

@pytest.fixture
def srv(petrel_factory):
    p = petrel_factory(config=CONFIG, start=False)
    p.cli("alias", "add", "both@example.test", DEMO_USER)
    p.cli("alias", "add", "both@example.test", "copy@elsewhere.test")
    p.start()
    code, lines = send(p, DEMO_USER, "first")
    assert code == 250, lines
    return p


def test_unwritable_mailbox_is_451_and_nothing_is_kept(srv):
    msg_dirs = list((srv.dir / "mail").glob("*/msg"))
    assert msg_dirs
    envs = len(queued(srv))
    for d in msg_dirs:
        set_dir_modes(d, 0o500)
    try:
        code, lines = send(srv, DEMO_USER, "cannot store")
        assert code == 451 and lines[0].startswith("4.3.0"), lines
        # With a copy for the queue as well: the queued copy is taken back.
        code, lines = send(srv, "both@example.test", "cannot store either")
        assert code == 451 and lines[0].startswith("4.3.0"), lines
    finally:
        for d in msg_dirs:
            set_dir_modes(d, 0o700)
    assert len(queued(srv)) == envs
    assert inbox_count(srv, DEMO_USER) == 1
    assert temp_files(srv) == []
    # The client retries: exactly one copy, intact.
    code, lines = send(srv, DEMO_USER, "retried", size=5000)
    assert code == 250, lines
    msgs = inbox(srv, DEMO_USER)
    assert len(msgs) == 2 and b"Subject: retried" in msgs[-1]
    assert msgs[-1].endswith(b"b" * 5000 + b"\r\n")


def test_unwritable_temporary_directory_is_451(srv):
    tmp = srv.dir / "tmp"
    os.chmod(tmp, 0o500)
    try:
        code, lines = send(srv, DEMO_USER, "no temp file", size=400000)
        assert code == 451 and lines[0].startswith("4.3.0"), lines
    finally:
        os.chmod(tmp, 0o700)
    assert inbox_count(srv, DEMO_USER) == 1
    code, lines = send(srv, DEMO_USER, "temp again")
    assert code == 250, lines
    assert inbox_count(srv, DEMO_USER) == 2


# ---------------------------------------------------------------- a full disk

@pytest.fixture
def small(e2e_root, request):
    """A daemon whose data directory is a 24 MiB tmpfs."""
    p = Petrel(e2e_root, "smtp_disk")
    p.dir.mkdir()
    uid, gid = petrel_uid_gid()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M,mode=0755,uid=%d,gid=%d"
                        % (uid, gid), "petrel-test", str(p.dir)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.strip())
    try:
        p.init()
        p.set_config(log="stderr", smtp_min_free_space="8M", **CONFIG)
        p.add_account(DEMO_USER, DEMO_PASSWORD)
        p.start()
        yield p
    finally:
        if p.running():
            p.stop()
        subprocess.run(["umount", str(p.dir)])


def free_space(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(p, leave):
    """Fills the file system but for `leave` octets; returns the filler."""
    filler = p.dir / "filler"
    n = free_space(p.dir) - leave
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while n > 0:
            f.write(chunk[:min(n, len(chunk))])
            n -= len(chunk)
    return filler


def test_full_disk_is_452_before_data(small):
    p = small
    assert free_space(p.dir) > 16 << 20
    with mx_session(p) as c:
        # The announced size does not fit above the reserve.
        too_big = free_space(p.dir) - (8 << 20) + (1 << 20)
        code, lines = c.smtp("MAIL FROM:<s@remote.test> SIZE=%d" % too_big)
        assert code == 452 and lines[0].startswith("4.3.1"), lines
        assert c.smtp("MAIL FROM:<s@remote.test> SIZE=%d" % (1 << 20))[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        filler = fill(p, 4 << 20)
        try:
            # Space went meanwhile: DATA is refused, then MAIL and BDAT.
            code, lines = c.smtp("DATA")
            assert code == 452 and lines[0].startswith("4.3.1"), lines
            assert c.smtp("RSET")[0] == 250
            code, lines = c.smtp("MAIL FROM:<s@remote.test>")
            assert code == 452 and lines[0].startswith("4.3.1"), lines
        finally:
            filler.unlink()
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        filler = fill(p, 4 << 20)
        try:
            c.send(b"BDAT 5\r\nhello")
            code, lines = c.smtp_reply()
            assert code == 452 and lines[0].startswith("4.3.1"), lines
        finally:
            filler.unlink()
        # Room again.
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="room again"))
        assert code == 250, lines
    assert inbox_count(p, DEMO_USER) == 1
    assert "event=disk-full" in p.log()


def test_disk_full_while_writing_is_451(small):
    p = small
    p.set_config(smtp_min_free_space="0")
    assert "event=reloaded" in p.reload()
    filler = fill(p, 2 << 20)
    try:
        code, lines = send(p, DEMO_USER, "does not fit", size=4 << 20)
        assert code == 451 and lines[0].startswith("4.3.0"), lines
        assert temp_files(p) == []
    finally:
        filler.unlink()
    code, lines = send(p, DEMO_USER, "fits now", size=4 << 20)
    assert code == 250, lines
    msgs = inbox(p, DEMO_USER)
    assert len(msgs) == 1 and b"Subject: fits now" in msgs[0]
