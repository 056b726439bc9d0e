"""Configuration errors stop `check` and `serve` with the file and line."""
import re
import socket

import pytest

from conftest import Petrel, petrel_cmd


@pytest.fixture
def data(e2e_root):
    p = Petrel(e2e_root, "config")
    p.init()
    p.set_config(log="stderr")
    return p


def line_of(p, pattern):
    for n, line in enumerate(p.config_text().splitlines(), 1):
        if re.match(pattern, line):
            return n
    raise AssertionError("no line matching %r" % pattern)


def assert_refused(p, line, *words):
    """check and serve both fail, naming FILE:LINE and the words."""
    for cmd in ("check", "serve"):
        r = petrel_cmd("-c", p.conf, cmd, timeout=20)
        assert r.returncode != 0, "%s accepted a bad config:\n%s%s" % (cmd, r.stdout, r.stderr)
        where = "%s:%d:" % (p.conf, line)
        assert where in r.stderr, "%s: expected %r in:\n%s" % (cmd, where, r.stderr)
        for w in words:
            assert w in r.stderr, "%s: expected %r in:\n%s" % (cmd, w, r.stderr)


def test_generated_config_is_valid(data):
    r = data.cli("check")
    assert "ok" in r.stdout
    # Every key is in the generated file with a comment above it.
    ref = petrel_cmd("config-reference")
    assert ref.returncode == 0
    keys = re.findall(r"^\| `([a-z_]+)` \|", ref.stdout, re.M)
    assert "auth_penalty_initial" in keys and "listen" in keys
    text = data.config_text()
    for k in keys:
        assert re.search(r"^# .*\n%s = " % k, text, re.M), k


def test_unknown_key(data):
    data.write_config(data.config_text() + "frobnicate = 1\n")
    n = len(data.config_text().splitlines())
    assert_refused(data, n, "frobnicate")


def test_bad_integer(data):
    data.set_config(max_connections_per_ip="lots")
    assert_refused(data, line_of(data, r"max_connections_per_ip ="), "max_connections_per_ip")


def test_bad_duration(data):
    data.set_config(auth_penalty_initial="soon")
    assert_refused(data, line_of(data, r"auth_penalty_initial ="), "auth_penalty_initial")


def test_bad_bool_and_enum(data):
    data.set_config(allow_root="perhaps")
    assert_refused(data, line_of(data, r"allow_root ="), "allow_root")
    data.set_config(allow_root="no", tls_min_version="1.0")
    assert_refused(data, line_of(data, r"tls_min_version ="), "tls_min_version")


def test_bad_listen(data):
    text = data.config_text().replace("listen = mx ", "listen = smtp ", 1)
    data.write_config(text)
    assert_refused(data, line_of(data, r"listen = smtp"), "service")


def test_key_set_twice(data):
    data.write_config(data.config_text() + "io_threads = 1\n")
    n = len(data.config_text().splitlines())
    assert_refused(data, n, "io_threads")


def test_line_without_equals(data):
    data.write_config(data.config_text() + "just some words\n")
    n = len(data.config_text().splitlines())
    assert_refused(data, n)


def test_missing_file(e2e_root):
    path = e2e_root + "/does-not-exist/petrel.conf"
    for cmd in ("check", "serve"):
        r = petrel_cmd("-c", path, cmd)
        assert r.returncode != 0
        assert path in r.stderr, r.stderr


def test_port_in_use_stops_serve(data):
    port = data.ports["imap"]
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        r = petrel_cmd("-c", data.conf, "serve", timeout=20)
    finally:
        blocker.close()
    assert r.returncode != 0
    assert str(port) in r.stderr, r.stderr
    assert "line %d" % line_of(data, r"listen = imap ") in r.stderr, r.stderr
