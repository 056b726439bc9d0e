"""IMAP up to authentication (RFC 9051/3501, 2595, 4959): CAPABILITY,
STARTTLS, LOGINDISABLED before TLS, LOGIN and AUTHENTICATE after, with our
client, imaplib and curl."""
import imaplib

import pytest

from conftest import (DEMO_PASSWORD, DEMO_USER, ScramClient, b64, plain_response, run,
                      unb64)


@pytest.fixture(scope="module")
def srv(module_factory):
    p = module_factory(config={"auth_penalty_initial": "100ms",
                               "auth_penalty_max": "200ms"})
    with p.connect("imap", timeout=5) as c:
        greeting = c.readline()
    assert greeting.startswith("* OK"), greeting
    return p


def quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def capabilities(c):
    status, untagged = c.imap("CAPABILITY")
    assert status.startswith("OK"), status
    caps = [l for l in untagged if l.upper().startswith("* CAPABILITY ")]
    assert len(caps) == 1, untagged
    return caps[0].upper().split()[2:]


def imap_tls(p, service="imap", source=None):
    c = p.connect(service, source=source)
    assert c.readline().startswith("* OK")
    if service == "imap":
        status, _ = c.imap("STARTTLS")
        assert status.startswith("OK"), status
        c.starttls(p.context())
    return c


def test_capability_before_tls(srv):
    with srv.connect("imap") as c:
        c.readline()
        caps = capabilities(c)
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps, caps
        assert "IMAP4REV1" in caps or "IMAP4REV2" in caps
        assert not any(cap.startswith("AUTH=") for cap in caps), caps


def test_no_login_before_tls(srv, src_ip):
    with srv.connect("imap", source=src_ip) as c:
        c.readline()
        status, _ = c.imap("LOGIN %s %s" % (quote(DEMO_USER), quote(DEMO_PASSWORD)))
        assert status.startswith("NO") or status.startswith("BAD"), status
        status, _ = c.imap("AUTHENTICATE PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
        assert not status.startswith("OK"), status
        status, _ = c.imap("STARTTLS")
        assert status.startswith("OK")
        c.starttls(srv.context())
        status, _ = c.imap("LOGIN %s %s" % (quote(DEMO_USER), quote(DEMO_PASSWORD)))
        assert status.startswith("OK"), status


@pytest.mark.parametrize("service", ["imap", "imaps"])
def test_capability_after_tls(srv, service):
    with imap_tls(srv, service) as c:
        caps = capabilities(c)
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        assert {"AUTH=PLAIN", "AUTH=SCRAM-SHA-256"} <= set(caps), caps


def test_starttls_discards_pipelined_plaintext(srv, src_ip):
    with srv.connect("imap", source=src_ip) as c:
        c.readline()
        c.send("s1 STARTTLS\r\ns2 LOGIN %s %s\r\n" % (quote(DEMO_USER), quote(DEMO_PASSWORD)))
        line = c.readline()
        assert line.startswith("s1 OK"), line
        assert c.buf == b""
        c.starttls(srv.context())
        status, untagged = c.imap("CAPABILITY")
        assert status.startswith("OK")
        # Nothing answers the injected s2, and we are not logged in.
        assert not any(l.startswith("s2 ") for l in untagged), untagged
        caps = [l for l in untagged if l.upper().startswith("* CAPABILITY")]
        assert caps and "AUTH=PLAIN" in caps[0].upper(), untagged


@pytest.mark.parametrize("service", ["imap", "imaps"])
def test_login(srv, service):
    with imap_tls(srv, service) as c:
        status, _ = c.imap("LOGIN %s %s" % (quote(DEMO_USER), quote(DEMO_PASSWORD)))
        assert status.startswith("OK"), status
        status, untagged = c.imap("LOGOUT")
        assert status.startswith("OK")
        assert any(l.startswith("* BYE") for l in untagged)


def test_wrong_password_and_unknown_user_look_alike(srv, src_ip):
    replies = []
    for user, pw in ((DEMO_USER, "wrong"), ("nobody@example.test", DEMO_PASSWORD)):
        with imap_tls(srv, source=src_ip) as c:
            status, _ = c.imap("LOGIN %s %s" % (quote(user), quote(pw)))
            replies.append(status)
    assert replies[0].startswith("NO"), replies
    assert replies[0] == replies[1], replies


def test_authenticate_plain(srv):
    with imap_tls(srv) as c:
        caps = capabilities(c)
        if "SASL-IR" in caps:
            status, _ = c.imap("AUTHENTICATE PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
            assert status.startswith("OK"), status
    with imap_tls(srv, "imaps") as c:
        c.sendline("a1 AUTHENTICATE PLAIN")
        line = c.readline()
        assert line.startswith("+"), line
        c.sendline(plain_response(DEMO_USER, DEMO_PASSWORD))
        status, _ = c.imap_wait("a1")
        assert status.startswith("OK"), status


def test_authenticate_errors(srv, src_ip):
    with imap_tls(srv, source=src_ip) as c:
        c.sendline("a1 AUTHENTICATE PLAIN")
        assert c.readline().startswith("+")
        c.sendline("*")
        status, _ = c.imap_wait("a1")
        assert status.startswith("BAD") or status.startswith("NO"), status
        status, _ = c.imap("AUTHENTICATE NOSUCHMECH")
        assert status.startswith("NO") or status.startswith("BAD"), status
        c.sendline("a2 AUTHENTICATE PLAIN")
        assert c.readline().startswith("+")
        c.sendline("@@@not-base64")
        status, _ = c.imap_wait("a2")
        assert status.startswith("BAD") or status.startswith("NO"), status
        status, _ = c.imap("NOOP")
        assert status.startswith("OK")


def test_authenticate_scram(srv, src_ip):
    for password, ok in ((DEMO_PASSWORD, True), ("wrong", False)):
        with imap_tls(srv, source=src_ip) as c:
            sc = ScramClient(DEMO_USER, password)
            c.sendline("s1 AUTHENTICATE SCRAM-SHA-256")
            line = c.readline()
            assert line.startswith("+"), line
            c.sendline(b64(sc.first()))
            line = c.readline()
            assert line.startswith("+ "), line
            c.sendline(b64(sc.final(unb64(line[2:]).decode())))
            line = c.readline()
            if ok:
                assert line.startswith("+ "), line
                assert sc.verify(unb64(line[2:]).decode())
                c.sendline("")
                status, _ = c.imap_wait("s1")
                assert status.startswith("OK"), status
            else:
                assert line.startswith("s1 NO"), line


def test_imaplib(srv):
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=20)
    try:
        m.starttls(ssl_context=srv.context())
        typ, _ = m.login(DEMO_USER, DEMO_PASSWORD)
        assert typ == "OK"
    finally:
        m.shutdown()
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=srv.context(),
                          timeout=20)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(DEMO_USER, "wrong")
    finally:
        m.shutdown()


@pytest.mark.parametrize("scheme,service,extra", [("imap", "imap", ["--ssl-reqd"]),
                                                  ("imaps", "imaps", [])])
def test_curl_login(srv, scheme, service, extra):
    url = "%s://localhost:%d/" % (scheme, srv.ports[service])
    base = ["curl", "-sS", "--cacert", str(srv.cert), *extra]
    bad = run(base + ["-u", "%s:%s" % (DEMO_USER, "wrong"), url], timeout=30)
    assert bad.returncode == 67, (bad.returncode, bad.stderr)   # login denied
    good = run(base + ["-u", "%s:%s" % (DEMO_USER, DEMO_PASSWORD), url], timeout=30)
    assert good.returncode != 67, good.stderr
    assert good.returncode not in (35, 60, 64), good.stderr
