"""Many IMAP IDLE sessions, each on an account of its own: the store closes
the indexes of held accounts nobody uses (it keeps the 16 most recently
used open, and any used in the last second), and a session whose account's index was closed still hears of
new mail, flag changes and expunges at once."""
import json
import os
import re
import smtplib
import time

from test_imap import login, message, quote  # noqa: F401

IDLERS = 40          # more than the store keeps open (STORE_ACCOUNT_HELD_OPEN)
PASSWORD = "idle many password"


def open_indexes(p):
    """Account ids whose index the daemon has open."""
    ids = set()
    fd_dir = "/proc/%d/fd" % p.pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.search(r"/mail/(\d+)/index\.db$", target)
        if m:
            ids.add(int(m.group(1)))
    return ids


def wait_closed(p, account_id):
    """The store closes unused indexes over its count a second after their
    last use (and checks every second)."""
    for _ in range(100):
        if account_id not in open_indexes(p):
            return
        time.sleep(0.1)
    raise AssertionError("index of account %d still open" % account_id)


def idle(p, user):
    c = login(p, user, PASSWORD)
    status, untagged = c.imap("SELECT INBOX")
    assert status.startswith("OK"), status
    c.sendline("i IDLE")
    assert c.readline().startswith("+")
    return c


def expect(c, pattern):
    """Reads untagged lines until one matches (RECENT may come first)."""
    seen = []
    for _ in range(5):
        line = c.readline()
        if re.match(pattern, line):
            return line
        seen.append(line)
    raise AssertionError("no %r in %r" % (pattern, seen))


def deliver(p, rcpts, subject):
    with smtplib.SMTP("127.0.0.1", p.ports["mx"], local_hostname="sender.test",
                      timeout=30) as s:
        refused = s.sendmail("sender@example.org", rcpts, message(subject))
        assert not refused, refused


def test_idle_sessions_on_closed_indexes_hear_of_changes(petrel_factory):
    p = petrel_factory(config={"max_connections_per_ip": str(IDLERS + 20)}, start=False)
    users = ["idle%03d@many.test" % i for i in range(IDLERS)]
    passwd = p.dir.parent / "users.passwd"
    passwd.write_text("".join("%s:{PLAIN}%s::::::\n" % (u, PASSWORD) for u in users))
    os.chmod(passwd, 0o644)
    p.cli("import", "passwd-file", passwd)
    ids = {a["address"]: a["id"]
           for a in json.loads(p.cli("account", "list", json=True).stdout)}
    p.start()
    # Each INBOX holds a message before its session selects it.
    deliver(p, users, "first")
    conns = []
    try:
        for u in users:
            conns.append(idle(p, u))
        # The first sessions' accounts are the least recently used: their
        # indexes are closed; the sessions are all there.
        first = users[0]
        wait_closed(p, ids[first])
        assert len(open_indexes(p) & set(ids.values())) < IDLERS

        # New mail for a closed account reaches its session.
        deliver(p, [first], "to a closed index")
        expect(conns[0], r"\* 2 EXISTS$")

        # Mail for every other account puts the first out of the open ones again.
        deliver(p, users[1:], "second")
        for c in conns[1:]:
            expect(c, r"\* 2 EXISTS$")
        wait_closed(p, ids[first])

        # Another session of the same user changes flags and expunges: the
        # idler sees FETCH and EXPUNGE.
        other = login(p, first, PASSWORD)
        with other:
            status, _ = other.imap("SELECT INBOX")
            assert status.startswith("OK"), status
            status, _ = other.imap("STORE 2 +FLAGS.SILENT (\\Flagged)")
            assert status.startswith("OK"), status
            expect(conns[0], r"\* 2 FETCH \(.*FLAGS \(\\Flagged\)")
            status, _ = other.imap("STORE 1 +FLAGS.SILENT (\\Deleted)")
            assert status.startswith("OK"), status
            expect(conns[0], r"\* 1 FETCH \(.*FLAGS \(\\Deleted\)")
            status, _ = other.imap("EXPUNGE")
            assert status.startswith("OK"), status
            expect(conns[0], r"\* 1 EXPUNGE$")
            other.imap("LOGOUT")

        # Every session still works after IDLE.
        for c in (conns[0], conns[-1]):
            c.sendline("DONE")
            status, _ = c.imap_wait("i")
            assert status.startswith("OK"), status
        status, untagged = conns[0].imap("FETCH 1 (FLAGS)")
        assert status.startswith("OK") and "\\Flagged" in untagged[0], untagged
    finally:
        for c in conns:
            c.close()
