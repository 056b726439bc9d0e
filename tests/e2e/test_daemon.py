"""The daemon: privilege drop, SIGHUP reload, SIGTERM shutdown, connection
limits and what it logs."""
import os
import re
import signal
import socket
import time

import pytest

from conftest import (DEMO_PASSWORD, DEMO_USER, IS_ROOT, b64,
                      petrel_cmd, petrel_uid_gid, plain_response, wait_for)

root_only = pytest.mark.skipif(not IS_ROOT, reason="privilege tests need root")


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(v) for v in value.split()]
    return ids


def smtp_greeting(p, service="mx", source=None):
    c = p.connect(service, source=source)
    code, lines = c.smtp_reply()
    return c, code, lines


# ---------------------------------------------------------------- privileges

@root_only
def test_drops_to_petrel_user(petrel_factory):
    p = petrel_factory()
    uid, gid = petrel_uid_gid()
    ids = proc_ids(p.pid)
    assert ids["Uid"] == [uid] * 4, ids
    assert ids["Gid"] == [gid] * 4, ids
    assert set(ids["Groups"]) <= {gid}, ids
    # Every thread, not only the main one.
    for tid in os.listdir("/proc/%d/task" % p.pid):
        assert proc_ids(int(tid))["Uid"] == [uid] * 4
    assert "user=petrel" in p.wait_log(r"event=ready")
    # Files it creates belong to that user.
    for f in p.dir.glob("petrel.db*"):
        assert f.stat().st_uid == uid, f
    # And it still serves on its (bound as root) ports.
    c, code, _ = smtp_greeting(p)
    c.close()
    assert code == 220


@root_only
def test_root_user_without_allow_root_is_refused(petrel_factory):
    p = petrel_factory(config={"user": "root", "allow_root": "no"}, accounts=False,
                       start=False)
    r = petrel_cmd("-c", p.conf, "serve", timeout=20)
    assert r.returncode != 0
    assert "allow_root" in r.stderr, r.stderr


@root_only
def test_unknown_user_is_refused(petrel_factory):
    p = petrel_factory(config={"user": "no-such-user-petrel"}, accounts=False,
                       start=False)
    r = petrel_cmd("-c", p.conf, "serve", timeout=20)
    assert r.returncode != 0
    assert "no-such-user-petrel" in r.stderr, r.stderr


@root_only
def test_allow_root_keeps_root_and_warns(petrel_factory):
    p = petrel_factory(config={"allow_root": "yes"})
    assert proc_ids(p.pid)["Uid"] == [0] * 4
    assert re.search(r"event=warning .*root", p.log()), p.log_tail()


# ---------------------------------------------------------------- SIGTERM

def test_sigterm_closes_idle_sessions_and_exits_0(petrel_factory):
    p = petrel_factory(config={"shutdown_grace": "60s"})
    idle = []
    for service in ("mx", "submission"):
        c, code, _ = smtp_greeting(p, service)
        assert code == 220
        idle.append(c)
    tls = p.smtp_tls("submissions")
    idle.append(tls)
    t = time.monotonic()
    os.kill(p.pid, signal.SIGTERM)
    for c in idle:
        code, lines = c.smtp_reply()
        assert code == 421, lines
        assert c.read_eof() == ""
        c.close()
    # Idle sessions do not hold the shutdown for the grace period.
    assert p.wait_exit(40) == 0, p.log_tail()
    assert time.monotonic() - t < 40
    log = p.log()
    assert re.search(r"event=stopping signal=TERM", log)
    assert "event=stopped" in log.splitlines()[-1]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.ports["mx"]), timeout=5)


def test_sigterm_lets_auth_in_flight_finish(petrel_factory, src_ip):
    p = petrel_factory(config={"auth_penalty_initial": "2s", "shutdown_grace": "30s"})
    c = p.smtp_tls("submissions", source=src_ip)
    c.sendline("AUTH PLAIN " + plain_response(DEMO_USER, "wrong"))
    time.sleep(0.5)   # the auth service is now holding the failure
    os.kill(p.pid, signal.SIGTERM)
    code, _ = c.smtp_reply()
    assert code == 535
    code, lines = c.smtp_reply()
    assert code == 421, lines
    c.close()
    assert p.wait_exit(40) == 0, p.log_tail()


def test_sigterm_grace_is_bounded(petrel_factory, src_ip):
    """A session that does not finish within shutdown_grace is closed."""
    p = petrel_factory(config={"auth_penalty_initial": "20s", "auth_penalty_max": "20s",
                               "shutdown_grace": "1s"})
    c = p.smtp_tls("submissions", source=src_ip)
    c.sendline("AUTH PLAIN " + plain_response(DEMO_USER, "wrong"))
    time.sleep(0.5)
    t = time.monotonic()
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait_exit(40) == 0, p.log_tail()
    # Well before the 20 s penalty would have ended.
    assert time.monotonic() - t < 15
    c.close()


def test_sigint_also_stops_cleanly(petrel_factory):
    p = petrel_factory()
    assert p.stop(signal.SIGINT) == 0
    assert "signal=INT" in p.log()


# ---------------------------------------------------------------- SIGHUP

def test_sighup_reloads_without_dropping_connections(petrel_factory):
    p = petrel_factory()
    before = p.smtp_tls("submission")
    old_plain, code, lines = smtp_greeting(p)
    assert "localhost" in lines[0]
    p.set_config(hostname="reloaded.example.test")
    assert "event=reloaded" in p.reload()
    # New connections see the new config...
    c, code, lines = smtp_greeting(p)
    assert code == 220 and "reloaded.example.test" in lines[0], lines
    c.close()
    # ... and connections made before keep working, TLS and plaintext.
    assert before.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))[0] == 235
    assert before.smtp("NOOP")[0] == 250
    assert old_plain.smtp("NOOP")[0] == 250
    before.close()
    old_plain.close()


def test_sighup_with_bad_config_keeps_the_old_one(petrel_factory):
    p = petrel_factory()
    good = p.config_text()
    p.write_config(good.replace("hostname = localhost", "hostname = changed.test") +
                   "no_such_key = 1\n")
    line = p.reload()
    assert "event=reload-failed" in line, line
    assert "no_such_key" in line and str(p.conf) in line, line
    c, code, lines = smtp_greeting(p)
    c.close()
    assert "localhost" in lines[0] and "changed.test" not in lines[0]
    # A missing file too.
    os.rename(p.conf, str(p.conf) + ".away")
    try:
        assert "event=reload-failed" in p.reload()
    finally:
        os.rename(str(p.conf) + ".away", p.conf)
    p.write_config(good)
    assert "event=reloaded" in p.reload()
    assert p.running()


def test_sighup_applies_new_limits(petrel_factory, src_ip):
    p = petrel_factory(config={"max_connections_per_ip": "1"})
    first, code, _ = smtp_greeting(p, source=src_ip)
    second, code, lines = smtp_greeting(p, source=src_ip)
    assert code == 421, lines
    second.close()
    p.set_config(max_connections_per_ip="2")
    assert "event=reloaded" in p.reload()
    second, code, _ = smtp_greeting(p, source=src_ip)
    assert code == 220
    first.close()
    second.close()


# ---------------------------------------------------------------- limits

def test_per_ip_connection_limit(petrel_factory, src_ip):
    p = petrel_factory(config={"max_connections_per_ip": "2"})
    a, code_a, _ = smtp_greeting(p, source=src_ip)
    b, code_b, _ = smtp_greeting(p, "submission", source=src_ip)
    assert code_a == code_b == 220
    c, code, lines = smtp_greeting(p, source=src_ip)
    assert code == 421, lines
    assert lines[0].startswith("4.7.0 ") and "Too many connections" in lines[0], lines
    assert c.read_eof() == ""
    c.close()
    # Implicit TLS: the refusal comes over TLS, after the handshake.
    with p.connect("submissions", source=src_ip) as t:
        code, lines = t.smtp_reply()
        assert code == 421 and "Too many connections" in lines[0]
    # Another address is not affected.
    other = src_ip.rsplit(".", 1)[0] + ".253"
    d, code, _ = smtp_greeting(p, source=other)
    assert code == 220
    d.close()
    assert re.search(r"event=refused ip=%s .*reason=max_connections_per_ip"
                     % re.escape(src_ip), p.log())
    # A slot frees when a session ends.
    a.close()

    def third_ok():
        c, code, _ = smtp_greeting(p, source=src_ip)
        c.close()
        return code == 220
    assert wait_for(third_ok, timeout=10)
    b.close()


def test_total_connection_limit(petrel_factory, src_ip):
    p = petrel_factory(config={"max_connections": "2"})
    held = [smtp_greeting(p, "mx")[0], smtp_greeting(p, "submission")[0]]
    c, code, lines = smtp_greeting(p, source=src_ip)
    assert code == 421 and "Too many connections" in lines[0], lines
    c.close()
    for h in held:
        h.close()


# ---------------------------------------------------------------- logging

def test_log_lines_are_key_value_and_never_hold_passwords(petrel_factory, src_ip):
    p = petrel_factory(config={"auth_penalty_initial": "50ms",
                               "auth_penalty_max": "100ms", "log_level": "debug"})
    secret = "Sup3r-Secret-Pa55word"
    p.add_account("secret@example.test", secret)
    with p.smtp_tls(source=src_ip) as c:
        assert c.smtp("AUTH PLAIN " + plain_response("secret@example.test", secret))[0] == 235
    with p.smtp_tls(source=src_ip) as c:
        assert c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, secret))[0] == 535
    with p.smtp_tls(source=src_ip) as c:
        c.smtp("AUTH LOGIN")
        c.smtp(b64("secret@example.test"))
        assert c.smtp(b64(secret))[0] == 235
    time.sleep(0.3)
    log = p.log()
    for needle in (secret, b64(secret), plain_response("secret@example.test", secret),
                   plain_response(DEMO_USER, secret)):
        assert needle not in log
    lines = [l for l in log.splitlines() if l.strip()]
    assert lines
    line_re = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z (debug|info|warn|error) "
                         r"(session=[a-z0-9]+ )?[a-z_]+=\S")
    for l in lines:
        assert line_re.match(l), l
    # Everything about a connection is tagged with its session id.
    for l in lines:
        if re.search(r"event=(connect|tls|auth-\S+|disconnect) ", l):
            assert " session=" in l, l
    assert any("event=connect " in l and src_ip in l for l in lines)
