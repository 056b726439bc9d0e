"""TLS on every listener: versions, ciphers, ALPN, SNI (and its reload),
checked with Python's ssl, openssl s_client and curl."""
import os
import re
import socket
import ssl

import pytest

from conftest import (IMPLICIT_TLS, LineClient, cert_subject, make_cert, run)

GREETING = {"smtp": "220 ", "imap": "* OK", "pop3": "+OK"}
PROTO = {"mx": "smtp", "submission": "smtp", "submissions": "smtp",
         "submission_alt": "smtp", "imap": "imap", "imaps": "imap", "pop3": "pop3",
         "pop3s": "pop3"}
STARTTLS_CMD = {"smtp": "STARTTLS", "imap": "a STARTTLS", "pop3": "STLS"}


@pytest.fixture(scope="module")
def srv(module_factory):
    return module_factory()


_landed = {}


def require_session(p, service):
    """Skips when the protocol's session has not landed yet (no greeting)."""
    proto = PROTO[service]
    if proto not in _landed:
        try:
            with p.connect(service, timeout=5) as c:
                _landed[proto] = c.readline().startswith(GREETING[proto])
        except (EOFError, socket.timeout, ConnectionError, ssl.SSLError):
            _landed[proto] = False
    if not _landed[proto]:
        pytest.skip("%s session not available in this build yet" % proto)


def upgrade(p, service, ctx, server_hostname="localhost"):
    """Connects to a service and gets TLS, whichever way it offers it.
    Returns the client after the greeting (over TLS)."""
    proto = PROTO[service]
    if service in IMPLICIT_TLS:
        c = LineClient(p.ports[service], tls=ctx, server_hostname=server_hostname)
        assert c.readline().startswith(GREETING[proto])
        return c
    c = LineClient(p.ports[service])
    try:
        assert c.readline().startswith(GREETING[proto])
        if proto == "smtp":
            c.ehlo()
            code, lines = c.smtp("STARTTLS")
            assert code == 220, lines
        elif proto == "imap":
            status, _ = c.imap("STARTTLS")
            assert status.startswith("OK"), status
        else:
            assert c.pop3("STLS").startswith("+OK")
        c.starttls(ctx, server_hostname=server_hostname)
    except BaseException:
        c.close()
        raise
    return c


def old_tls_context(p, version):
    ctx = p.context(verify=False, minimum=version, maximum=version)
    # The client's default security level forbids TLS 1.0/1.1 on its own;
    # lower it so that the refusal seen is the server's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def assert_handshake_refused(p, service, ctx, server_hostname="localhost"):
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError)) as exc:
        c = upgrade(p, service, ctx, server_hostname)
        # TLS 1.3 client-side errors may show only at the first read.
        try:
            c.sendline("NOOP")
            c.readline()
        finally:
            c.close()
    text = str(exc.value)
    assert "NO_PROTOCOLS_AVAILABLE" not in text and "no protocols available" not in text, \
        "the client refused on its own: %s" % text
    return text


ALL_SERVICES = ["mx", "submission", "submissions", "submission_alt", "imap", "imaps",
                "pop3", "pop3s"]


@pytest.mark.parametrize("service", ALL_SERVICES)
@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls12_and_13_accepted(srv, service, version):
    require_session(srv, service)
    v = getattr(ssl.TLSVersion, version)
    ctx = srv.context(minimum=v, maximum=v)
    c = upgrade(srv, service, ctx)
    with c:
        assert c.sock.version() == version.replace("_", ".")
        # Certificate verified against DIR/tls/cert.pem for the name localhost.
        assert c.sock.getpeercert()["subject"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("service", ALL_SERVICES)
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls10_and_11_refused(srv, service, version):
    require_session(srv, service)
    since = srv.log_size()
    text = assert_handshake_refused(srv, service,
                                    old_tls_context(srv, getattr(ssl.TLSVersion, version)))
    assert "protocol version" in text.lower(), text
    srv.wait_log(r"event=tls-failed", since=since, timeout=10)


@pytest.mark.parametrize("service", ["submissions", "imaps", "pop3s"])
def test_weak_tls12_cipher_refused(srv, service):
    require_session(srv, service)
    ctx = srv.context(verify=False, maximum=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("AES128-SHA:@SECLEVEL=0")  # RSA key exchange, CBC: not "intermediate"
    assert_handshake_refused(srv, service, ctx)


# ---------------------------------------------------------------- ALPN

ALPN_CASES = [
    ("submissions", ["smtp"], "smtp"),
    ("submissions", ["http/1.1", "smtp"], "smtp"),
    ("submissions", None, None),
    ("imaps", ["imap"], "imap"),
    ("imaps", None, None),
    ("pop3s", ["pop3"], "pop3"),
    ("pop3s", ["http/1.1", "pop3"], "pop3"),
    ("submission", ["smtp"], "smtp"),
]


@pytest.mark.parametrize("service,offer,selected", ALPN_CASES)
def test_alpn_accepted(srv, service, offer, selected):
    require_session(srv, service)
    with upgrade(srv, service, srv.context(alpn=offer)) as c:
        assert c.sock.selected_alpn_protocol() == selected


ALPN_REFUSED = [
    ("submissions", ["http/1.1"]),
    ("submissions", ["imap"]),
    ("imaps", ["http/1.1"]),
    ("imaps", ["smtp"]),
    ("pop3s", ["imap"]),
    ("submission", ["imap"]),
    ("mx", ["http/1.1"]),
]


@pytest.mark.parametrize("service,offer", ALPN_REFUSED)
def test_alpn_foreign_protocol_refused(srv, service, offer):
    require_session(srv, service)
    text = assert_handshake_refused(srv, service, srv.context(alpn=offer))
    assert "no application protocol" in text.lower(), text


# ---------------------------------------------------------------- SNI

def peer_subject(p, service, name):
    with upgrade(p, service, p.context(verify=False), server_hostname=name) as c:
        return cert_subject(c.sock.getpeercert(binary_form=True))


def test_sni_certificate_and_reload(srv, tmp_path):
    # Before: every name gets the default certificate.
    assert "CN = localhost" in peer_subject(srv, "submissions", "other.test")
    key, cert = make_cert(tmp_path, "other.test", ["other.test"])
    srv.sni_dir.mkdir(exist_ok=True)
    pem = srv.sni_dir / "other.test.pem"
    pem.write_bytes(key.read_bytes() + cert.read_bytes())
    os.chmod(pem, 0o600)
    srv.give_to_daemon_user(srv.sni_dir)
    srv.give_to_daemon_user(pem)
    line = srv.reload()
    assert "event=reloaded" in line, line
    # After SIGHUP, without a restart: the name gets its certificate...
    for service in ("submissions", "submission", "mx"):
        assert "CN = other.test" in peer_subject(srv, service, "other.test"), service
    # ... verifiable by a client that trusts it, for that name only.
    ctx = srv.context(cafile=cert)
    with upgrade(srv, "submissions", ctx, server_hostname="other.test") as c:
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    # ... and other names still get the default one.
    assert "CN = localhost" in peer_subject(srv, "submissions", "localhost")
    assert "CN = localhost" in peer_subject(srv, "submissions", "unknown.test")
    for service in ("imaps", "pop3s"):
        if PROTO[service] in _landed and _landed[PROTO[service]]:
            assert "CN = other.test" in peer_subject(srv, service, "other.test")
    # check counts it.
    assert "1 TLS SNI certificate" in srv.cli("check").stdout


def test_certificate_reload_replaces_default(srv, tmp_path):
    """SIGHUP re-reads the default certificate too."""
    key, cert = make_cert(tmp_path, "localhost", ["localhost"])
    old_cert, old_key = srv.cert.read_bytes(), srv.key.read_bytes()
    try:
        srv.key.write_bytes(key.read_bytes())
        srv.cert.write_bytes(cert.read_bytes())
        assert "event=reloaded" in srv.reload()
        ctx = srv.context(cafile=cert)
        with upgrade(srv, "submissions", ctx) as c:
            assert c.sock.version()
    finally:
        srv.key.write_bytes(old_key)
        srv.cert.write_bytes(old_cert)
        assert "event=reloaded" in srv.reload()
    with upgrade(srv, "submissions", srv.context()) as c:
        assert c.sock.version()


def test_broken_certificate_reload_keeps_old(srv):
    bad = srv.sni_dir / "broken.pem"
    srv.sni_dir.mkdir(exist_ok=True)
    bad.write_text("-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
    srv.give_to_daemon_user(bad)
    try:
        line = srv.reload()
        assert "event=reload-failed" in line, line
        with upgrade(srv, "submissions", srv.context()) as c:
            assert c.sock.version()
    finally:
        bad.unlink()
        assert "event=reloaded" in srv.reload()


@pytest.mark.parametrize("service,quit", [("submissions", "QUIT"), ("imaps", "a LOGOUT"),
                                          ("pop3s", "QUIT")])
def test_tls_close_notify(srv, service, quit):
    """The server ends TLS with close_notify before closing the socket
    (OpenSSL 3 clients report a bare EOF as an error)."""
    require_session(srv, service)
    ctx = srv.context()
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    sock = socket.create_connection(("127.0.0.1", srv.ports[service]), timeout=20)
    with ctx.wrap_socket(sock, server_hostname="localhost",
                         suppress_ragged_eofs=False) as t:
        greeting = b""
        while b"\n" not in greeting:
            greeting += t.recv(4096)
        t.sendall(quit.encode() + b"\r\n")
        data = b""
        try:
            while True:
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ssl.SSLEOFError as e:
            pytest.fail("connection closed without close_notify after %r (got %r): %s"
                        % (quit, data, e))


# ---------------------------------------------------------------- real clients

def test_openssl_s_client_implicit_and_starttls(srv):
    base = ["openssl", "s_client", "-CAfile", str(srv.cert), "-verify_return_error",
            "-servername", "localhost", "-verify_hostname", "localhost"]
    for extra in (["-connect", "127.0.0.1:%d" % srv.ports["submissions"], "-tls1_3"],
                  ["-connect", "127.0.0.1:%d" % srv.ports["submissions"], "-tls1_2"],
                  ["-connect", "127.0.0.1:%d" % srv.ports["submission"], "-starttls",
                   "smtp"],
                  ["-connect", "127.0.0.1:%d" % srv.ports["mx"], "-starttls", "smtp",
                   "-alpn", "smtp"]):
        # -ign_eof: s_client reads until the server closes after QUIT,
        # which it must do cleanly (close_notify) for s_client to exit 0.
        r = run(base + ["-ign_eof"] + extra, input="NOOP\r\nQUIT\r\n", timeout=30)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "Verify return code: 0 (ok)" in out, out
        assert re.search(r"New, TLSv1\.[23]", out), out
        assert "221 2.0.0" in out, out
    r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.ports["submissions"],
             "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], input="", timeout=30)
    assert r.returncode != 0


def test_curl_smtp_starttls_and_smtps(srv):
    for url, extra in (("smtp://localhost:%d/" % srv.ports["submission"], ["--ssl-reqd"]),
                       ("smtps://localhost:%d/" % srv.ports["submissions"], []),
                       ("smtp://localhost:%d/" % srv.ports["submission_alt"],
                        ["--ssl-reqd"])):
        # Without a recipient, curl asks for HELP: enough to prove TLS works.
        r = run(["curl", "-sS", "--cacert", str(srv.cert), *extra, url], timeout=30)
        assert r.returncode == 0, r.stderr
        assert "214" in r.stdout or "EHLO" in r.stdout.upper(), r.stdout
