"""POP3 up to authentication (RFC 1939, 2449, 2595, 5034): CAPA, STLS,
USER/PASS and AUTH only under TLS, with our client, poplib and curl."""
import poplib

import pytest

from conftest import (DEMO_PASSWORD, DEMO_USER, ScramClient, b64, plain_response, run,
                      unb64)


@pytest.fixture(scope="module")
def srv(module_factory):
    p = module_factory(config={"auth_penalty_initial": "100ms",
                               "auth_penalty_max": "200ms"})
    with p.connect("pop3", timeout=5) as c:
        greeting = c.readline()
    assert greeting.startswith("+OK"), greeting
    return p


def capa(c):
    first, lines = c.pop3_multi("CAPA")
    assert first.startswith("+OK"), first
    return [l.upper() for l in lines]


def pop3_tls(p, service="pop3", source=None):
    c = p.connect(service, source=source)
    assert c.readline().startswith("+OK")
    if service == "pop3":
        assert c.pop3("STLS").startswith("+OK")
        c.starttls(p.context())
    return c


def test_capa_before_tls(srv):
    with srv.connect("pop3") as c:
        c.readline()
        caps = capa(c)
        assert "STLS" in caps
        # No way to send a password in clear is offered.
        assert not any(cap.startswith("SASL") and len(cap.split()) > 1 for cap in caps), caps


def test_no_password_before_tls(srv, src_ip):
    with srv.connect("pop3", source=src_ip) as c:
        c.readline()
        c.pop3("USER " + DEMO_USER)
        assert c.pop3("PASS " + DEMO_PASSWORD).startswith("-ERR")
        assert c.pop3("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD)).startswith("-ERR")
        # The session is still usable and can upgrade.
        assert c.pop3("STLS").startswith("+OK")
        c.starttls(srv.context())
        c.pop3("USER " + DEMO_USER)
        assert c.pop3("PASS " + DEMO_PASSWORD).startswith("+OK")


@pytest.mark.parametrize("service", ["pop3", "pop3s"])
def test_capa_after_tls(srv, service):
    with pop3_tls(srv, service) as c:
        caps = capa(c)
        assert "STLS" not in caps
        assert "USER" in caps
        sasl = [cap for cap in caps if cap.startswith("SASL ")]
        assert sasl and {"PLAIN", "SCRAM-SHA-256"} <= set(sasl[0].split()[1:]), caps


def test_stls_discards_pipelined_plaintext(srv, src_ip):
    with srv.connect("pop3", source=src_ip) as c:
        c.readline()
        c.send("STLS\r\nUSER %s\r\n" % DEMO_USER)
        assert c.readline().startswith("+OK")
        assert c.buf == b""
        c.starttls(srv.context())
        # Had the injected USER been run, this PASS would log in.
        reply = c.pop3("PASS " + DEMO_PASSWORD)
        assert reply.startswith("-ERR"), reply


@pytest.mark.parametrize("service", ["pop3", "pop3s"])
def test_user_pass(srv, service):
    with pop3_tls(srv, service) as c:
        assert c.pop3("USER " + DEMO_USER).startswith("+OK")
        assert c.pop3("PASS " + DEMO_PASSWORD).startswith("+OK")
        assert c.pop3("QUIT").startswith("+OK")


def test_wrong_password_and_unknown_user_look_alike(srv, src_ip):
    replies = []
    for user, pw in ((DEMO_USER, "wrong"), ("nobody@example.test", DEMO_PASSWORD)):
        with pop3_tls(srv, source=src_ip) as c:
            c.pop3("USER " + user)
            replies.append(c.pop3("PASS " + pw))
    assert replies[0].startswith("-ERR")
    assert replies[0] == replies[1], replies


def test_auth_plain(srv):
    with pop3_tls(srv) as c:
        reply = c.pop3("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
        assert reply.startswith("+OK"), reply
    with pop3_tls(srv, "pop3s") as c:
        assert c.pop3("AUTH PLAIN").startswith("+")
        assert c.pop3(plain_response(DEMO_USER, DEMO_PASSWORD)).startswith("+OK")


def test_auth_errors(srv, src_ip):
    with pop3_tls(srv, source=src_ip) as c:
        assert c.pop3("AUTH PLAIN " + plain_response(DEMO_USER, "bad")).startswith("-ERR")
        assert c.pop3("AUTH PLAIN").startswith("+")
        assert c.pop3("*").startswith("-ERR")
        assert c.pop3("AUTH PLAIN ###").startswith("-ERR")
        assert c.pop3("AUTH NOSUCHMECH").startswith("-ERR")
        assert c.pop3("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD)).startswith("+OK")


def test_auth_scram(srv, src_ip):
    with pop3_tls(srv) as c:
        sc = ScramClient(DEMO_USER, DEMO_PASSWORD)
        reply = c.pop3("AUTH SCRAM-SHA-256 " + b64(sc.first()))
        assert reply.startswith("+ "), reply
        reply = c.pop3(b64(sc.final(unb64(reply[2:]).decode())))
        assert reply.startswith("+ "), reply
        assert sc.verify(unb64(reply[2:]).decode())
        assert c.pop3("").startswith("+OK")
    with pop3_tls(srv, source=src_ip) as c:
        sc = ScramClient(DEMO_USER, "wrong")
        reply = c.pop3("AUTH SCRAM-SHA-256 " + b64(sc.first()))
        reply = c.pop3(b64(sc.final(unb64(reply[2:]).decode())))
        assert reply.startswith("-ERR"), reply


def test_poplib(srv, src_ip):
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=20)
    try:
        p.stls(context=srv.context())
        assert p.user(DEMO_USER).startswith(b"+OK")
        assert p.pass_(DEMO_PASSWORD).startswith(b"+OK")
    finally:
        p.close()
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], timeout=20, context=srv.context())
    try:
        p.user(DEMO_USER)
        with pytest.raises(poplib.error_proto):
            p.pass_("wrong")
    finally:
        p.close()


@pytest.mark.parametrize("scheme,service,extra", [("pop3", "pop3", ["--ssl-reqd"]),
                                                  ("pop3s", "pop3s", [])])
def test_curl_login(srv, scheme, service, extra):
    url = "%s://localhost:%d/" % (scheme, srv.ports[service])
    base = ["curl", "-sS", "--cacert", str(srv.cert), *extra]
    bad = run(base + ["-u", "%s:%s" % (DEMO_USER, "wrong"), url], timeout=30)
    assert bad.returncode == 67, (bad.returncode, bad.stderr)   # login denied
    good = run(base + ["-u", "%s:%s" % (DEMO_USER, DEMO_PASSWORD), url], timeout=30)
    assert good.returncode != 67, good.stderr
    assert good.returncode not in (35, 60, 64), good.stderr      # TLS trouble
