"""A session in IDLE keeps no command parser (imap_session_rest) and tells
the store its account may lose its index (store_account_rest): commands
after DONE, pipelined with it or carrying literals, parse as before; new
mail still reaches the idler; a shutdown during IDLE says goodbye."""
from test_imap import append, login, message


def test_commands_after_idle_parse_afresh(petrel_factory):
    p = petrel_factory()
    user, password = "rest@example.test", "rest password"
    p.add_account(user, password)
    a = login(p, user, password)
    b = login(p, user, password)
    with a, b:
        status, _ = a.imap("SELECT INBOX")
        assert status.startswith("OK"), status
        for round_ in range(3):
            a.sendline("i%d IDLE" % round_)
            assert a.readline().startswith("+")
            append(b, "INBOX", message("while idle %d" % round_))
            assert a.readline() == "* %d EXISTS" % (round_ + 1)
            # DONE and the next command in one write: the command is read
            # by a new parser, from what was buffered.
            a.send(("DONE\r\nn%d NOOP\r\n" % round_).encode())
            status, _ = a.imap_wait("i%d" % round_)
            assert status.startswith("OK"), status
            status, _ = a.imap_wait("n%d" % round_)
            assert status.startswith("OK"), status
        # A command with a literal and a list after IDLE.
        a.sendline("i9 IDLE")
        assert a.readline().startswith("+")
        a.sendline("DONE")
        assert a.imap_wait("i9")[0].startswith("OK")
        uid = append(a, "INBOX", message("after idle"), flags="\\Flagged $Work")
        status, untagged = a.imap("UID FETCH %d (FLAGS)" % uid)
        assert status.startswith("OK"), status
        assert "\\Flagged" in untagged[-1] and "$Work" in untagged[-1], untagged
        # A bad command after IDLE is answered BAD and the session goes on.
        a.sendline("i10 IDLE")
        assert a.readline().startswith("+")
        a.sendline("DONE")
        assert a.imap_wait("i10")[0].startswith("OK")
        status, _ = a.imap("FETCH (((")
        assert status.startswith("BAD"), status
        status, _ = a.imap("NOOP")
        assert status.startswith("OK"), status


def test_shutdown_during_idle_says_bye(petrel_factory):
    p = petrel_factory()
    user, password = "rest-bye@example.test", "rest password"
    p.add_account(user, password)
    a = login(p, user, password)
    with a:
        status, _ = a.imap("SELECT INBOX")
        assert status.startswith("OK"), status
        a.sendline("i1 IDLE")
        assert a.readline().startswith("+")
        assert p.stop() == 0
        assert a.readline().startswith("* BYE")
