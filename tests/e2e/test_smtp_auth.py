"""SMTP up to AUTH: EHLO, STARTTLS (and the injection it must resist), the
SASL mechanisms PLAIN, LOGIN and SCRAM-SHA-256, failures and their penalty,
with our own client, smtplib and swaks."""
import os
import smtplib
import threading
import time

import pytest

from conftest import (DEMO_PASSWORD, DEMO_USER, ScramClient, b64, plain_response, run,
                      unb64)


@pytest.fixture(scope="module")
def srv(module_factory):
    # Penalties are the subject of one test only (its own daemon below).
    return module_factory(config={"auth_penalty_initial": "100ms",
                                  "auth_penalty_max": "200ms"})


# ---------------------------------------------------------------- EHLO / STARTTLS

@pytest.mark.parametrize("service", ["submission", "submission_alt", "mx"])
def test_ehlo_before_tls_offers_starttls_not_auth(srv, service):
    with srv.connect(service) as c:
        code, lines = c.smtp_reply()
        assert code == 220 and "localhost" in lines[0]
        caps = c.ehlo()
        assert "STARTTLS" in caps
        assert not any(cap.startswith("AUTH") for cap in caps), caps


@pytest.mark.parametrize("service", ["submission", "submission_alt"])
def test_auth_before_tls_is_538(srv, service):
    with srv.connect(service) as c:
        c.smtp_reply()
        c.ehlo()
        code, lines = c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
        assert code == 538, lines
        code, _ = c.smtp("AUTH LOGIN")
        assert code == 538


@pytest.mark.parametrize("service", ["submission", "submissions", "submission_alt"])
def test_ehlo_after_tls_offers_auth(srv, service):
    with srv.smtp_tls(service, ehlo=False) as c:
        caps = c.ehlo()
        assert "STARTTLS" not in caps
        auth = [cap for cap in caps if cap.startswith("AUTH ")]
        assert len(auth) == 1, caps
        assert set(auth[0].split()[1:]) >= {"PLAIN", "LOGIN", "SCRAM-SHA-256"}, auth


def test_mx_never_offers_auth(srv):
    with srv.smtp_tls("mx", ehlo=False) as c:
        caps = c.ehlo()
        assert not any(cap.startswith("AUTH") for cap in caps), caps
        code, _ = c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
        assert code == 503


def test_ehlo_required_again_after_starttls(srv):
    with srv.smtp_tls("submission", ehlo=False) as c:
        code, _ = c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
        assert code == 503
        c.ehlo()
        code, _ = c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
        assert code == 235


def test_starttls_twice_refused(srv):
    with srv.smtp_tls("submission") as c:
        code, _ = c.smtp("STARTTLS")
        assert code == 503


@pytest.mark.parametrize("service", ["submission", "mx"])
def test_starttls_discards_pipelined_plaintext(srv, service):
    """Commands sent in the same packet as STARTTLS must not be executed
    after the handshake (CVE-2011-0411 class)."""
    with srv.connect(service) as c:
        c.smtp_reply()
        c.ehlo()
        c.send("STARTTLS\r\nNOOP\r\nRSET\r\n")
        code, lines = c.smtp_reply()
        assert code == 220, lines
        # Our own reader must not hold the injected bytes either.
        assert c.buf == b""
        c.starttls(srv.context())
        # The first reply over TLS answers what we send now (HELP: 214), not
        # the injected NOOP (250).
        code, lines = c.smtp("HELP")
        assert code == 214, (code, lines)
        code, _ = c.smtp("NOOP")
        assert code == 250


@pytest.mark.parametrize("service", ["submission", "submissions", "mx"])
def test_quit_reply_arrives_over_tls(srv, service):
    """The last reply before the server closes (221 to QUIT) reaches the
    client, whether TLS came from STARTTLS or implicit TLS."""
    with srv.smtp_tls(service) as c:
        code, lines = c.smtp("QUIT")
        assert code == 221, lines
        assert c.read_eof() == ""


def test_mail_needs_authentication_on_submission(srv):
    with srv.smtp_tls("submission") as c:
        code, lines = c.smtp("MAIL FROM:<demo@example.test>")
        assert code == 530, lines
        assert c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))[0] == 235
        assert c.smtp("MAIL FROM:<demo@example.test>")[0] == 250
        assert c.smtp("RSET")[0] == 250
        assert c.smtp("NOOP")[0] == 250


def test_misc_commands(srv):
    with srv.connect("mx") as c:
        c.smtp_reply()
        assert c.smtp("NOOP")[0] == 250
        assert c.smtp("MAIL FROM:<a@b.test>")[0] == 503  # EHLO first
        assert c.smtp("HELO client.test")[0] == 250
        assert c.smtp("VRFY demo")[0] == 252
        assert c.smtp("EXPN list")[0] == 502
        assert c.smtp("FROB")[0] == 500
        assert c.smtp("EHLO")[0] == 501
        assert c.smtp("X" * 5000)[0] == 500
        assert c.smtp("RSET")[0] == 250
        assert c.smtp("QUIT")[0] == 221
        assert c.read_eof() == ""


# ---------------------------------------------------------------- PLAIN / LOGIN

@pytest.mark.parametrize("service", ["submission", "submissions", "submission_alt"])
def test_auth_plain_initial_response(srv, service):
    with srv.smtp_tls(service) as c:
        code, lines = c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))
        assert code == 235, lines
        assert c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))[0] == 503
        # No AUTH offered once authenticated.
        assert not any(cap.startswith("AUTH") for cap in c.ehlo())


def test_auth_plain_with_challenge_and_authzid(srv):
    with srv.smtp_tls() as c:
        code, lines = c.smtp("AUTH PLAIN")
        assert code == 334 and lines == [""], lines
        code, lines = c.smtp(plain_response(DEMO_USER, DEMO_PASSWORD, authzid=DEMO_USER))
        assert code == 235, lines


def test_auth_plain_case_insensitive_user(srv):
    with srv.smtp_tls() as c:
        assert c.smtp("auth plain " + plain_response(DEMO_USER.upper(), DEMO_PASSWORD))[0] == 235


def test_auth_login(srv):
    with srv.smtp_tls() as c:
        code, lines = c.smtp("AUTH LOGIN")
        assert code == 334, lines
        assert unb64(lines[0]).lower().startswith(b"user")
        code, lines = c.smtp(b64(DEMO_USER))
        assert code == 334 and unb64(lines[0]).lower().startswith(b"pass"), lines
        code, lines = c.smtp(b64(DEMO_PASSWORD))
        assert code == 235, lines
    with srv.smtp_tls() as c:
        # With the user name as initial response.
        code, lines = c.smtp("AUTH LOGIN " + b64(DEMO_USER))
        assert code == 334, lines
        assert c.smtp(b64(DEMO_PASSWORD))[0] == 235


def test_wrong_password_and_unknown_user_look_alike(srv, src_ip):
    replies = []
    for user, pw in ((DEMO_USER, "wrong password"), ("nobody@example.test", DEMO_PASSWORD),
                     ("nobody@nowhere.test", "x")):
        with srv.smtp_tls(source=src_ip) as c:
            replies.append(c.smtp("AUTH PLAIN " + plain_response(user, pw)))
    assert replies[0][0] == 535
    assert replies[0] == replies[1] == replies[2], replies
    # LOGIN fails the same way.
    with srv.smtp_tls(source=src_ip) as c:
        c.smtp("AUTH LOGIN")
        c.smtp(b64("nobody@example.test"))
        assert c.smtp(b64("pw")) == replies[0]


def test_bad_sasl_input_is_a_protocol_error(srv, src_ip):
    with srv.smtp_tls(source=src_ip) as c:
        assert c.smtp("AUTH PLAIN !!!notbase64")[0] == 501
        assert c.smtp("AUTH PLAIN")[0] == 334
        assert c.smtp("*")[0] == 501                       # cancelled
        assert c.smtp("AUTH LOGIN")[0] == 334
        assert c.smtp("%%%")[0] == 501
        assert c.smtp("AUTH PLAIN " + b64("no-nuls-at-all"))[0] in (501, 535)
        assert c.smtp("AUTH CRAM-MD5")[0] == 504
        assert c.smtp("AUTH")[0] == 501
        # An over-long exchange line: an error, and the session stays in sync.
        assert c.smtp("AUTH PLAIN")[0] == 334
        code, _ = c.smtp("A" * 20000)
        assert code in (500, 501)
        assert c.smtp("NOOP")[0] == 250
        assert c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, DEMO_PASSWORD))[0] == 235


@pytest.mark.parametrize("service", ["submissions", "submission"])
def test_too_many_failures_close_the_connection(srv, src_ip, service):
    with srv.smtp_tls(service, source=src_ip) as c:
        for _ in range(2):
            assert c.smtp("AUTH PLAIN " + plain_response(DEMO_USER, "bad"))[0] == 535
        c.sendline("AUTH PLAIN " + plain_response(DEMO_USER, "bad"))
        assert c.smtp_reply()[0] == 535
        code, lines = c.smtp_reply()
        assert code == 421, lines
        assert c.read_eof() == ""


# ---------------------------------------------------------------- SCRAM-SHA-256

def scram_exchange(c, user, password, initial=True):
    """Runs AUTH SCRAM-SHA-256; returns (final code, ScramClient, server_final)."""
    sc = ScramClient(user, password)
    if initial:
        code, lines = c.smtp("AUTH SCRAM-SHA-256 " + b64(sc.first()))
    else:
        code, lines = c.smtp("AUTH SCRAM-SHA-256")
        assert code == 334 and lines == [""], lines
        code, lines = c.smtp(b64(sc.first()))
    assert code == 334, lines
    server_first = unb64(lines[0]).decode()
    code, lines = c.smtp(b64(sc.final(server_first)))
    if code != 334:
        return code, sc, None
    server_final = unb64(lines[0]).decode()
    code, lines = c.smtp("")
    return code, sc, server_final


@pytest.mark.parametrize("service,initial", [("submission", True), ("submission", False),
                                             ("submissions", True)])
def test_scram_sha256(srv, service, initial):
    with srv.smtp_tls(service) as c:
        code, sc, server_final = scram_exchange(c, DEMO_USER, DEMO_PASSWORD, initial)
        assert code == 235
        assert sc.verify(server_final), "bad server signature: %s" % server_final
        assert sc.iterations >= 4096
        assert len(sc.salt) >= 16


def test_scram_wrong_password_and_unknown_user(srv, src_ip):
    with srv.smtp_tls(source=src_ip) as c:
        code, _, _ = scram_exchange(c, DEMO_USER, "not the password")
        assert code == 535
    salts = []
    for _ in range(2):
        with srv.smtp_tls(source=src_ip) as c:
            code, sc, _ = scram_exchange(c, "ghost@example.test", "whatever")
            assert code == 535
            salts.append((sc.salt, sc.iterations))
    # An unknown user gets a salt that does not change between attempts (it
    # would give away that the user does not exist).
    assert salts[0] == salts[1]


def test_scram_bad_messages(srv, src_ip):
    with srv.smtp_tls(source=src_ip) as c:
        # Channel binding asked for: we offer no -PLUS mechanism.
        assert c.smtp("AUTH SCRAM-SHA-256 " + b64("p=tls-unique,,n=%s,r=abc" % DEMO_USER))[0] \
            in (501, 535)
        assert c.smtp("AUTH SCRAM-SHA-256 " + b64("garbage"))[0] == 501
        # A client-final with the wrong nonce.
        sc = ScramClient(DEMO_USER, DEMO_PASSWORD)
        code, lines = c.smtp("AUTH SCRAM-SHA-256 " + b64(sc.first()))
        assert code == 334
        code, _ = c.smtp(b64("c=biws,r=wrongnonce,p=" + b64(b"x" * 32)))
        assert code in (501, 535)
        assert c.smtp("NOOP")[0] == 250


# ---------------------------------------------------------------- real clients

def test_smtplib_starttls_and_ssl_login(srv):
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=20) as s:
        s.starttls(context=srv.context())
        code, _ = s.login(DEMO_USER, DEMO_PASSWORD)
        assert code == 235
    with smtplib.SMTP_SSL("127.0.0.1", srv.ports["submissions"], timeout=20,
                          context=srv.context(), local_hostname="client.test") as s:
        s.ehlo()
        # smtplib sends the hostname "127.0.0.1" for SNI: fine, unknown names
        # get the default certificate; context checks it for 127.0.0.1 (SAN).
        assert s.login(DEMO_USER, DEMO_PASSWORD)[0] == 235
    with smtplib.SMTP("127.0.0.1", srv.ports["submission_alt"], timeout=20) as s:
        s.starttls(context=srv.context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
            s.login(DEMO_USER, "wrong")
        assert exc.value.smtp_code == 535


def swaks(srv, *args):
    return run(["swaks", "--server", "127.0.0.1", "--from", DEMO_USER, "--to",
                "someone@example.test", "--quit-after", "AUTH", "--tls-verify",
                "--tls-ca-path", str(srv.cert), "--tls-sni", "localhost", *args],
               timeout=60)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_starttls_auth(srv, mech):
    r = swaks(srv, "--port", str(srv.ports["submission"]), "--tls", "--auth", mech,
              "--auth-user", DEMO_USER, "--auth-password", DEMO_PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 " in r.stdout


def test_swaks_implicit_tls_and_failure(srv, src_ip):
    r = swaks(srv, "--port", str(srv.ports["submissions"]), "--tlsc", "--auth", "PLAIN",
              "--auth-user", DEMO_USER, "--auth-password", DEMO_PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    r = swaks(srv, "--port", str(srv.ports["submissions"]), "--tlsc", "--auth", "PLAIN",
              "--auth-user", DEMO_USER, "--auth-password", "wrong", "--local-interface",
              src_ip)
    assert r.returncode != 0
    assert "535 " in r.stdout


# ---------------------------------------------------------------- penalty timing

def timed_auth(c, user, password):
    t = time.monotonic()
    reply = c.smtp("AUTH PLAIN " + plain_response(user, password))
    return reply, time.monotonic() - t


def test_failure_penalty_doubles_and_does_not_lock_out(petrel_factory, src_ip):
    """Default penalties (2 s doubling): lower bounds only, generous upper ones."""
    p = petrel_factory()
    other_ip = src_ip.rsplit(".", 1)[0] + ".253"
    results = {}

    def unknown_user():
        with p.smtp_tls(source=other_ip) as c:
            results["unknown"] = timed_auth(c, "nobody@example.test", DEMO_PASSWORD)

    t = threading.Thread(target=unknown_user)
    t.start()
    with p.smtp_tls(source=src_ip) as c:
        first, t1 = timed_auth(c, DEMO_USER, "wrong-1")
        second, t2 = timed_auth(c, DEMO_USER, "wrong-2")
        ok, t3 = timed_auth(c, DEMO_USER, DEMO_PASSWORD)
    t.join(60)
    assert first[0] == 535 and second[0] == 535
    assert t1 >= 1.8, t1
    assert t2 >= 3.8, t2
    assert t1 < 15 and t2 < 20
    # The real user is not locked out by someone else's failures.
    assert ok[0] == 235, ok
    assert t3 < 30
    unknown, tu = results["unknown"]
    assert unknown == first, (unknown, first)
    assert tu >= 1.8, tu


def test_scram_unknown_user_salt_survives_restart(petrel_factory, src_ip):
    """The fake salt of an unknown user is keyed by a secret kept in the data
    directory: were it new at each start, a restart would tell unknown users
    (salt changes) from real ones (salt stays)."""
    p = petrel_factory()
    salts = []
    for attempt in range(2):
        with p.smtp_tls(source=src_ip) as c:
            code, sc, _ = scram_exchange(c, "ghost@example.test", "whatever")
            assert code == 535
            salts.append(sc.salt)
        if attempt == 0:
            assert p.stop() == 0
            p.start()
    assert salts[0] == salts[1]
    assert os.stat(os.path.join(p.dir, "auth.secret")).st_mode & 0o077 == 0
