"""Real clients on every SMTP port: Python's smtplib, swaks, curl and msmtp,
each on the MX port (plaintext), submission (STARTTLS), submissions
(implicit TLS) and the alternate submission port (STARTTLS), each message
to a local user, an alias, a forwarder to another domain (the queue), a
catch-all and a +tag. The results are read back from the store with
`petrel message list/show` and from the queue's spool."""
import json
import shutil
import smtplib
import subprocess

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, IO_TIMEOUT, run
from test_smtp_helpers import HOLD_QUEUE, inbox, message, queued

ALIASED = "aliased@example.test"
TAGGED = "tagged@example.test"
CATCHER = "catcher@example.test"
FAR = "far@elsewhere.test"

# The recipient as sent -> the account whose INBOX gets it (None: queued).
RECIPIENTS = {
    DEMO_USER: DEMO_USER,
    "alias@example.test": ALIASED,
    "tagged+lists.petrel@example.test": TAGGED,
    "whoever@catch.test": CATCHER,
    "fwd@example.test": None,
}
PORTS = ["mx", "submission", "submissions", "submission_alt"]
CLIENTS = ["smtplib", "swaks", "curl", "msmtp"]


@pytest.fixture(scope="module")
def srv(module_factory):
    p = module_factory(config=HOLD_QUEUE, start=False)
    for acct in (ALIASED, TAGGED, CATCHER):
        p.add_account(acct, "password of " + acct)
    p.cli("alias", "add", "alias@example.test", ALIASED)
    p.cli("alias", "add", "fwd@example.test", FAR)
    p.cli("domain", "add", "catch.test")
    p.cli("catchall", "set", "catch.test", CATCHER)
    p.start()
    return p


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed" % tool)


# ---------------------------------------------------------------- senders

def send_smtplib(p, port, sender, rcpts, data):
    port_no = p.ports[port]
    if port == "submissions":
        s = smtplib.SMTP_SSL("localhost", port_no, context=p.context(), timeout=IO_TIMEOUT)
    else:
        s = smtplib.SMTP("localhost", port_no, timeout=IO_TIMEOUT)
    with s:
        if port in ("submission", "submission_alt"):
            s.starttls(context=p.context())
        if port != "mx":
            s.login(DEMO_USER, DEMO_PASSWORD)
        assert s.sendmail(sender, rcpts, data) == {}


def send_swaks(p, port, sender, rcpts, data, tmp_path):
    need("swaks")
    f = tmp_path / "swaks.eml"
    f.write_bytes(data)
    args = ["swaks", "--server", "localhost", "--port", str(p.ports[port]), "--from", sender,
            "--to", ",".join(rcpts), "--data", "@" + str(f)]
    if port != "mx":
        args += ["--tlsc" if port == "submissions" else "--tls", "--tls-verify",
                 "--tls-ca-path", str(p.cert), "--auth", "PLAIN", "--auth-user", DEMO_USER,
                 "--auth-password", DEMO_PASSWORD]
    r = run(args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued" in r.stdout


def send_curl(p, port, sender, rcpts, data, tmp_path):
    need("curl")
    f = tmp_path / "curl.eml"
    f.write_bytes(data)
    scheme = "smtps" if port == "submissions" else "smtp"
    args = ["curl", "-sS", "%s://localhost:%d" % (scheme, p.ports[port]), "--mail-from",
            sender, "-T", str(f)]
    for r in rcpts:
        args += ["--mail-rcpt", r]
    if port != "mx":
        args += ["--cacert", str(p.cert), "--user", "%s:%s" % (DEMO_USER, DEMO_PASSWORD)]
        if port != "submissions":
            args.append("--ssl-reqd")
    r = run(args)
    assert r.returncode == 0, r.stderr


def send_msmtp(p, port, sender, rcpts, data, tmp_path):
    need("msmtp")
    rc = tmp_path / "msmtprc"
    lines = ["defaults", "account default", "host localhost", "port %d" % p.ports[port],
             "from %s" % sender, "domain client.test", "timeout 20"]
    if port == "mx":
        lines += ["tls off", "auth off"]
    else:
        lines += ["tls on", "tls_trust_file %s" % p.cert,
                  "tls_starttls %s" % ("off" if port == "submissions" else "on"),
                  "auth plain", "user %s" % DEMO_USER, "password %s" % DEMO_PASSWORD]
    rc.write_text("\n".join(lines) + "\n")
    rc.chmod(0o600)
    r = subprocess.run(["msmtp", "-C", str(rc), "--", *rcpts], input=data,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")


def send(client, p, port, sender, rcpts, data, tmp_path):
    if client == "smtplib":
        send_smtplib(p, port, sender, rcpts, data)
    else:
        globals()["send_" + client](p, port, sender, rcpts, data, tmp_path)


# ---------------------------------------------------------------- the matrix

@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("client", CLIENTS)
def test_client_to_every_kind_of_recipient(srv, client, port, tmp_path):
    subject = "%s on %s" % (client, port)
    token = "token-%s-%s" % (client, port)
    submission = port != "mx"
    sender = DEMO_USER if submission else "sender@remote.test"
    body = "Hello from %s.\r\n.a line with a leading dot\r\n%s\r\n" % (client, token)
    data = message(frm=sender, to="many@example.test", subject=subject, body=body).encode()
    send(client, srv, port, sender, list(RECIPIENTS), data, tmp_path)

    for rcpt, account in RECIPIENTS.items():
        if account is None:
            continue
        got = [m for m in inbox(srv, account) if ("Subject: %s\r\n" % subject).encode() in m]
        assert len(got) == 1, (rcpt, account, len(got))
        m = got[0]
        assert m.startswith(b"Return-Path: <%s>\r\nReceived: from " % sender.encode()), m[:200]
        # (swaks adds an empty line at the end)
        assert m.rstrip(b"\r\n").endswith(body.encode().rstrip(b"\r\n")), m[-200:]
        head = m.split(b"\r\n\r\n", 1)[0]
        if port == "mx":
            assert b" with ESMTP id " in head or b" with ESMTPS id " in head
        else:
            assert b" with ESMTPSA id " in head and b"(using TLSv1" in head
    # The +tag went to the INBOX (not a folder of that name).
    r = srv.cli("mailbox", "list", TAGGED, json=True)
    assert "lists.petrel" not in r.stdout
    # The forwarder's copy is in the queue, for the outside address only.
    envs = [e for e in queued(srv) if ("Subject: %s\r\n" % subject).encode() in e["message"]]
    assert len(envs) == 1, envs
    assert [r["to"] for r in envs[0]["rcpt"]] == [FAR]
    assert envs[0]["sender"] == sender
    assert envs[0]["message"].rstrip(b"\r\n").endswith(body.encode().rstrip(b"\r\n"))


def test_every_message_listed_once(srv):
    """After the matrix (or alone): message list --json agrees with show."""
    r = srv.cli("message", "list", DEMO_USER, json=True)
    msgs = json.loads(r.stdout)["messages"]
    assert len(msgs) == len(inbox(srv, DEMO_USER))
