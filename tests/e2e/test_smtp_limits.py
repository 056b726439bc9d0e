"""SMTP limits, each configured small so that it can be hit quickly: command
line length, message size (SIZE and while streaming), recipients, the
error delay and the error limit, the command and data timeouts, the
minimum data rate, the pregreet delay and per-IP concurrency."""
import re
import time

import pytest

from conftest import DEMO_USER, LineClient, petrel_cmd
from test_smtp_helpers import inbox, inbox_count, message, open_temp_files, send_data

LIMITS = {
    "smtp_max_line_length": "600",
    "smtp_max_message_size": "1M",
    "smtp_max_recipients": "5",
    "smtp_soft_error_limit": "3",
    "smtp_hard_error_limit": "6",
    "smtp_error_delay": "1s",
    "timeout_smtp": "2s",
    "timeout_smtp_data": "4s",
    "smtp_min_data_rate": "0",
    "smtp_pregreet_delay": "0",
    "max_connections_per_ip": "3",
}


@pytest.fixture(scope="module")
def srv(module_factory):
    return module_factory(config=LIMITS)


def session(p, source, service="mx"):
    """An EHLO'd session from its own address (no pregreet wait here)."""
    c = p.connect(service, source=source)
    code, lines = c.smtp_reply()
    assert code == 220, lines
    c.ehlo()
    return c


def temp_files(p):
    """Files of messages being written (the store's and the queue's)."""
    return [f for d in (p.dir / "tmp", p.dir / "queue" / "tmp") if d.exists()
            for f in d.iterdir()] + open_temp_files(p)


def wait_until(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------- defaults

def test_defaults_in_reference_and_template(tmp_path):
    ref = petrel_cmd("config-reference").stdout
    defaults = dict(re.findall(r"^\| `([a-z_]+)` \| `([^`]*)` \|", ref, re.M))
    assert defaults["smtp_max_line_length"] == "2048"
    assert defaults["smtp_max_message_size"] == "25M"
    assert defaults["smtp_max_recipients"] == "1000"
    assert defaults["smtp_soft_error_limit"] == "10"
    assert defaults["smtp_hard_error_limit"] == "20"
    assert defaults["smtp_error_delay"] == "10s"
    assert defaults["timeout_smtp"] == "5m"
    assert defaults["timeout_smtp_data"] == "10m"
    assert defaults["smtp_min_data_rate"] == "1K"
    assert defaults["smtp_data_rate_window"] == "30s"
    assert defaults["smtp_pregreet_delay"] == "500ms"
    assert defaults["smtp_min_free_space"] == "100M"
    assert defaults["smtp_received_auth"] == "no"
    r = petrel_cmd("init", tmp_path / "d", "--hostname", "localhost", "--bind", "127.0.0.1",
                   "--port-base", "40000")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "d" / "petrel.conf").read_text()
    for key, value in defaults.items():
        if key != "listen" and key.startswith(("smtp_", "timeout_smtp")):
            assert re.search(r"^%s = %s$" % (key, re.escape(value)), text, re.M), key


# ---------------------------------------------------------------- sizes

def test_ehlo_announces_the_configured_size(srv, src_ip):
    with session(srv, src_ip) as c:
        assert "SIZE 1048576" in c.ehlo()


def test_long_command_line_is_500_and_skipped(srv, src_ip):
    with session(srv, src_ip) as c:
        code, lines = c.smtp("MAIL FROM:<s@remote.test> " + "X" * 600)
        assert code == 500 and lines[0].startswith("5.5.2"), lines
        # Sent in pieces, the line is skipped to its end too.
        c.send("NOOP " + "Y" * 700)
        time.sleep(0.2)
        c.send("Y" * 700 + "\r\n")
        code, lines = c.smtp_reply()
        assert code == 500, lines
        # 600 octets are fine; the session is in step.
        code, lines = c.smtp("MAIL FROM:<s@remote.test>" + " " * (600 - 25))
        assert code == 250, lines


def test_size_parameter_over_the_limit(srv, src_ip):
    with session(srv, src_ip) as c:
        code, lines = c.smtp("MAIL FROM:<s@remote.test> SIZE=%d" % (1024 * 1024 + 1))
        assert code == 552 and lines[0].startswith("5.3.4"), lines
        code, lines = c.smtp("MAIL FROM:<s@remote.test> SIZE=99999999999999999999")
        assert code == 552, lines
        assert c.smtp("MAIL FROM:<s@remote.test> SIZE=%d" % (1024 * 1024))[0] == 250


def test_size_enforced_while_streaming(srv, src_ip):
    before = inbox_count(srv, DEMO_USER)
    line = b"x" * 998 + b"\r\n"
    with session(srv, src_ip) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 354
        c.send(b"Subject: too big\r\n\r\n" + line * 700)       # 700 KB: written out
        assert wait_until(lambda: temp_files(srv) != [])
        c.send(line * 400)                                     # past 1 MiB
        # The temporary file goes as soon as the limit is passed.
        assert wait_until(lambda: temp_files(srv) == []), temp_files(srv)
        c.send(line * 100 + b".\r\n")
        code, lines = c.smtp_reply()
        assert code == 552 and lines[0].startswith("5.3.4"), lines
        # The session goes on.
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="just fits", body="y" * 1000 + "\r\n"))
        assert code == 250, lines
    assert inbox_count(srv, DEMO_USER) == before + 1
    assert temp_files(srv) == []


def test_size_enforced_with_bdat(srv, src_ip):
    with session(srv, src_ip) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        chunk = b"Subject: big\r\n\r\n" + b"z" * (600 * 1024)
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        assert c.smtp_reply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        code, lines = c.smtp_reply()
        assert code == 552, lines
        assert c.smtp("NOOP")[0] == 250
    assert temp_files(srv) == []


def test_recipient_limit(srv, src_ip):
    with session(srv, src_ip) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        for i in range(5):
            assert c.smtp("RCPT TO:<demo+%d@example.test>" % i)[0] == 250
        code, lines = c.smtp("RCPT TO:<demo+5@example.test>")
        assert code == 452 and lines[0].startswith("4.5.3"), lines
        code, lines = send_data(c, message(subject="five of them"))
        assert code == 250, lines
    assert b"Subject: five of them" in inbox(srv, DEMO_USER)[-1]


# ---------------------------------------------------------------- errors

def test_error_delay_then_disconnect(srv, src_ip):
    with session(srv, src_ip) as c:
        t = time.monotonic()
        for _ in range(3):
            assert c.smtp("BOGUS")[0] == 500
        assert time.monotonic() - t < 0.9
        # From the third error on, every reply waits smtp_error_delay.
        t = time.monotonic()
        assert c.smtp("NOOP")[0] == 250
        assert time.monotonic() - t >= 0.9
        t = time.monotonic()
        assert c.smtp("RCPT TO:<nobody@example.test>")[0] == 503     # 4
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<nobody@example.test>")[0] == 550     # 5
        assert time.monotonic() - t >= 2.7
        # The sixth error ends the session.
        c.sendline("BOGUS")
        assert c.smtp_reply()[0] == 500
        code, lines = c.smtp_reply()
        assert code == 421 and lines[0].startswith("4.7.0"), lines
        assert c.read_eof() == ""


# ---------------------------------------------------------------- timeouts

def test_command_timeout(srv, src_ip):
    with session(srv, src_ip) as c:
        t = time.monotonic()
        code, lines = c.smtp_reply()
        took = time.monotonic() - t
        assert code == 421 and lines[0].startswith("4.4.2"), lines
        assert 1.5 <= took < 4, took
        assert c.read_eof() == ""


def test_data_timeout_is_longer(srv, src_ip):
    with session(srv, src_ip) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 354
        c.send("Subject: patient\r\n\r\nfirst\r\n")
        time.sleep(3)                  # past timeout_smtp, within timeout_smtp_data
        c.send("second\r\n.\r\n")
        code, lines = c.smtp_reply()
        assert code == 250, lines
        # Back to the command timeout after the message.
        t = time.monotonic()
        code, _ = c.smtp_reply()
        assert code == 421 and time.monotonic() - t < 3.5
    assert inbox(srv, DEMO_USER)[-1].endswith(b"first\r\nsecond\r\n")
    with session(srv, src_ip) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        assert c.smtp("DATA")[0] == 354
        c.send(b"Subject: abandoned\r\n\r\n" + b"a" * 300000)
        t = time.monotonic()
        code, lines = c.smtp_reply()
        assert code == 421 and lines[0].startswith("4.4.2"), lines
        assert 3.5 <= time.monotonic() - t < 7
    assert wait_until(lambda: temp_files(srv) == [])
    assert b"abandoned" not in inbox(srv, DEMO_USER)[-1]


# ---------------------------------------------------------------- data rate

def test_slow_client_dropped(petrel_factory, src_ip):
    p = petrel_factory(config={"smtp_min_data_rate": "8K", "smtp_data_rate_window": "1s",
                               "smtp_pregreet_delay": "0"})
    before = inbox_count(p, DEMO_USER)
    # A fast client is not affected.
    with session(p, src_ip) as c:
        assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
        code, lines = send_data(c, message(subject="fast", body="f" * 200000 + "\r\n"))
        assert code == 250, lines
    # One that trickles is told and dropped after a window.
    for verb in ("DATA", "BDAT"):
        with session(p, src_ip) as c:
            assert c.smtp("MAIL FROM:<s@remote.test>")[0] == 250
            assert c.smtp("RCPT TO:<%s>" % DEMO_USER)[0] == 250
            if verb == "DATA":
                assert c.smtp("DATA")[0] == 354
            t = time.monotonic()
            got = b""
            while time.monotonic() - t < 5 and b"421 " not in got:
                try:
                    if verb == "BDAT":
                        c.send(b"BDAT 100\r\n" + b"s" * 100)
                    else:
                        c.send(b"s" * 100 + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    break
                time.sleep(0.25)
                c.sock.settimeout(0.01)
                try:
                    chunk = c.sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                got += chunk
            assert re.search(rb"^421 4\.4\.2 ", got, re.M), got
            assert 0.9 <= time.monotonic() - t < 3
        assert wait_until(lambda: temp_files(p) == [])
    assert inbox_count(p, DEMO_USER) == before + 1
    assert "event=slow-client" in p.log()


# ---------------------------------------------------------------- connections

def test_pregreet_delay_configurable(srv, petrel_factory, src_ip):
    # Off: a new client is greeted at once and may talk right away.
    c = LineClient(srv.ports["mx"], source=src_ip)
    t = time.monotonic()
    assert c.smtp_reply()[0] == 220 and time.monotonic() - t < 1.0   # on: 1.5 s below
    c.close()
    p = petrel_factory(config={"smtp_pregreet_delay": "1500ms"})
    c = LineClient(p.ports["mx"], source=src_ip)
    t = time.monotonic()
    assert c.smtp_reply()[0] == 220
    assert time.monotonic() - t >= 1.4
    c.close()


def test_per_ip_concurrency(srv, src_ip):
    clients = [session(srv, src_ip) for _ in range(3)]
    c = srv.connect("mx", source=src_ip)
    code, lines = c.smtp_reply()
    assert code == 421 and "Too many connections" in lines[0], lines
    c.close()
    for c in clients:
        c.close()
