"""Changes made by the CLI while the daemon runs reach its sessions at once
(src/store/store_others.c): an IMAP client in IDLE sees messages that
`petrel import` added, without sending a command."""
import pytest

from conftest import DEMO_PASSWORD, DEMO_USER
from test_imap import login


MBOX = (b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n"
        b"From: a@example.org\nSubject: one\nMessage-ID: <p1@example.org>\n\nHello.\n\n"
        b"From MAILER-DAEMON Tue Jan  2 11:30:00 2024\n"
        b"From: b@example.org\nSubject: two\nMessage-ID: <p2@example.org>\n\nAgain.\n")


@pytest.fixture
def srv(petrel_factory):
    return petrel_factory()


def test_import_reaches_idle_session(srv, tmp_path):
    src = tmp_path / "in.mbox"
    src.write_bytes(MBOX)
    c = login(srv, DEMO_USER, DEMO_PASSWORD)
    with c:
        status, untagged = c.imap("SELECT INBOX")
        assert status.startswith("OK"), status
        exists = [l for l in untagged if l.endswith(" EXISTS")]
        assert exists == ["* 0 EXISTS"], untagged
        c.sendline("i1 IDLE")
        assert c.readline().startswith("+")
        r = srv.cli("import", "mbox", DEMO_USER, src)
        assert "2 messages imported" in r.stdout, r.stdout + r.stderr
        # Pushed while idle: no command was sent (the first message may be
        # announced on its own, the import signals as it goes).
        lines = [c.readline()]
        while lines[-1] != "* 2 EXISTS" and len(lines) < 3:
            lines.append(c.readline())
        assert lines[-1] == "* 2 EXISTS", lines
        assert all(l.endswith(" EXISTS") or " RECENT" in l for l in lines), lines
        c.sendline("DONE")
        status, _ = c.imap_wait("i1")
        assert status.startswith("OK"), status
        _, untagged = c.imap("FETCH 1:* (ENVELOPE)")
        assert len([l for l in untagged if "FETCH" in l]) == 2


def test_mailbox_created_by_cli_listed(srv):
    # Not pushed (IMAP has no unsolicited LIST), but the session's next LIST
    # sees it: nothing is cached past another process's change.
    c = login(srv, DEMO_USER, DEMO_PASSWORD)
    with c:
        c.imap("LIST \"\" \"*\"")
        srv.cli("mailbox", "create", DEMO_USER, "FromCli")
        _, untagged = c.imap("LIST \"\" \"*\"")
        assert any("FromCli" in l for l in untagged), untagged
