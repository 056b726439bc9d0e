"""RCPT answered from recent resolutions (src/delivery/delivery_cache.c):
every change to the directory, made by the CLI while the daemon runs, is
seen by the very next RCPT, however recently the address was resolved."""
import pytest

from conftest import DEMO_USER
from test_smtp_helpers import HOLD_QUEUE, inbox_count, message, mx_session, send_data


@pytest.fixture
def srv(petrel_factory):
    p = petrel_factory(config={"smtp_error_delay": "20ms", **HOLD_QUEUE}, start=False)
    p.add_account("a@example.test", "a fine password for a")
    p.add_account("b@example.test", "a fine password for b")
    p.start()
    return p


def rcpt(c, address):
    code, _ = c.smtp("MAIL FROM:<sender@remote.test>")
    assert code == 250
    code, _ = c.smtp("RCPT TO:<%s>" % address)
    c.smtp("RSET")
    return code


def resolve_twice(srv, address):
    """Resolves address in two sessions: the second from the cache if any."""
    for _ in range(2):
        with mx_session(srv) as c:
            assert rcpt(c, address) == 250


def test_removed_account_refused_at_once(srv):
    resolve_twice(srv, "a@example.test")
    srv.cli("account", "remove", "a@example.test")
    with mx_session(srv) as c:
        assert rcpt(c, "a@example.test") == 550


def test_new_alias_target_used_at_once(srv):
    srv.cli("alias", "add", "team@example.test", "a@example.test")
    resolve_twice(srv, "team@example.test")
    # The alias now also reaches b: the next message lands in both.
    srv.cli("alias", "add", "team@example.test", "b@example.test")
    before_a = inbox_count(srv, "a@example.test")
    before_b = inbox_count(srv, "b@example.test")
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<sender@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<team@example.test>")[0] == 250
        assert send_data(c, message(to="team@example.test"))[0] == 250
    assert inbox_count(srv, "a@example.test") == before_a + 1
    assert inbox_count(srv, "b@example.test") == before_b + 1


def test_unknown_then_added(srv):
    # Unknown answers are not cached: an account added is reachable at once.
    with mx_session(srv) as c:
        assert rcpt(c, "late@example.test") == 550
    srv.add_account("late@example.test", "a fine password for late")
    with mx_session(srv) as c:
        assert rcpt(c, "late@example.test") == 250


def test_quota_set_checked_at_rcpt(srv):
    # Without a quota the resolution is cached; a quota set afterwards is
    # enforced at the next RCPT (with SIZE) all the same.
    resolve_twice(srv, DEMO_USER)
    srv.cli("account", "quota", DEMO_USER, "1K")
    with mx_session(srv) as c:
        assert c.smtp("MAIL FROM:<sender@remote.test> SIZE=4096")[0] == 250
        code, lines = c.smtp("RCPT TO:<%s>" % DEMO_USER)
        assert code == 452, lines
