"""
The outbound queue against other servers: a whole Postfix instance, TLS
policies (queue_tls_policy), REQUIRETLS (RFC 8689), IPv6, and queue
settings reloaded on SIGHUP. A DNS server (unbound, queue_helpers.Dns)
publishes the MX records; a test CA made with the openssl CLI signs the
certificates that are meant to verify.

    127.0.0.1   Petrel A, the sender (submission), and the other senders
    127.0.0.21  Postfix: MX of pf.test (mx.pf.test, CA-signed certificate)
                and of rtpf.test
    127.0.0.22  Petrel V: MX of v.test and rtv.test (mx.v.test, CA-signed),
                and of alias.test under another name (mx.alias.test: the
                certificate does not name it)
    127.0.0.23  Petrel W: MX of w.test, wenc.test and rtw.test (mx.w.test,
                the self-signed certificate of `petrel init`)
    127.0.0.24  smtp-sink (no STARTTLS): MX of sink.test
    127.0.0.25  smtp-sink: the A record of mx.both.test (whose AAAA, ::1,
                has nothing listening on the port its sender uses)
    ::1         Petrel S6: MX of v6.test (mx.v6.test has an AAAA record only)
    127.0.0.29  nothing listens (the relay host before a reload)

Every destination of A listens on one port P (A's queue_smtp_port); the
IPv6 fallback has a sender of its own with another port.
"""
import email
import email.policy
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import DEMO_USER, run, wait_for
from queue_helpers import (Dns, dsn_parts, free_port, make_petrel, mailbox, queue_list,
                           sender_config, submit, wait_deferred, wait_mail, wait_queue_empty)

PF_IP, V_IP, W_IP, SINK_IP, BOTH_IP, DEAD_IP = (
    "127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25", "127.0.0.29")
V6_IP = "::1"


def zone():
    return [
        "pf.test. MX 10 mx.pf.test.",
        "rtpf.test. MX 10 mx.pf.test.",
        "mx.pf.test. A %s" % PF_IP,
        "v.test. MX 10 mx.v.test.",
        "rtv.test. MX 10 mx.v.test.",
        "mx.v.test. A %s" % V_IP,
        "alias.test. MX 10 mx.alias.test.",
        "mx.alias.test. A %s" % V_IP,
        "w.test. MX 10 mx.w.test.",
        "wenc.test. MX 10 mx.w.test.",
        "rtw.test. MX 10 mx.w.test.",
        "mx.w.test. A %s" % W_IP,
        "sink.test. MX 10 mx.sink.test.",
        "mx.sink.test. A %s" % SINK_IP,
        "v6.test. MX 10 mx.v6.test.",
        "mx.v6.test. AAAA ::1",
        "both.test. MX 10 mx.both.test.",
        "mx.both.test. AAAA ::1",
        "mx.both.test. A %s" % BOTH_IP,
    ]


# ---------------------------------------------------------------- a test CA

class CertAuthority:
    """A CA made with the openssl CLI; issues server certificates."""

    def __init__(self, root):
        self.dir = Path(tempfile.mkdtemp(prefix="ca-", dir=root))
        os.chmod(self.dir, 0o755)
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-days", "30", "-subj", "/CN=Petrel Test CA",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                     "-keyout", self.key, "-out", self.cert)
        os.chmod(self.cert, 0o644)

    def openssl(self, *args):
        r = run(["openssl", *map(str, args)])
        assert r.returncode == 0, r.stderr

    def issue(self, name):
        """(key, certificate) for a server called name, signed by the CA."""
        key, csr = self.dir / (name + ".key"), self.dir / (name + ".csr")
        cert, ext = self.dir / (name + ".pem"), self.dir / (name + ".ext")
        ext.write_text("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n"
                       "extendedKeyUsage=serverAuth\n" % name)
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-subj", "/CN=" + name, "-keyout", key, "-out", csr)
        self.openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                     "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", cert)
        os.chmod(key, 0o644)
        os.chmod(cert, 0o644)
        return key, cert


def use_certificate(p, key, cert):
    """Makes a (stopped) Petrel serve key and cert."""
    shutil.copy(cert, p.cert)
    shutil.copy(key, p.key)
    os.chmod(p.key, 0o600)
    p.give_to_daemon_user(p.cert)
    p.give_to_daemon_user(p.key)


# ---------------------------------------------------------------- Postfix

def postfix_master_cf(listen):
    """The master.cf Postfix ships, with chroot off (the instance's files
    are not in a jail) and its smtpd on listen instead of port 25."""
    out, skip = [], False
    for line in Path("/usr/share/postfix/master.cf.dist").read_text().splitlines():
        if line[:1] in (" ", "\t"):    # the continuation of an entry
            if not skip:
                out.append(line)
            continue
        fields, skip = line.split(), False
        if not line.startswith("#") and len(fields) >= 8:
            if fields[:2] == ["smtp", "inet"]:
                skip = True
                continue
            fields[4] = "n"
            line = " ".join(fields)
        out.append(line)
    out.append("%s inet n - n - 10 smtpd" % listen)
    return "\n".join(out) + "\n"


class Postfix:
    """A Postfix instance of its own (`postfix -c DIR`): smtpd on ip:port
    with STARTTLS (key, cert), delivering mail for `domain` into Maildirs
    under DIR/vmail through the virtual delivery agent."""

    def __init__(self, root, ip, port, hostname, domain, users, key, cert):
        self.dir = Path(tempfile.mkdtemp(prefix="postfix-", dir=root))
        os.chmod(self.dir, 0o755)
        self.etc, self.spool = self.dir / "etc", self.dir / "spool"
        self.data, self.vmail = self.dir / "data", self.dir / "vmail"
        self.log = self.dir / "postfix.log"
        self.domain = domain
        for d in (self.etc, self.spool, self.data, self.vmail):
            d.mkdir()
        postfix, nobody = pwd.getpwnam("postfix"), pwd.getpwnam("nobody")
        os.chown(self.data, postfix.pw_uid, postfix.pw_gid)
        os.chown(self.vmail, nobody.pw_uid, nobody.pw_gid)
        (self.etc / "vmailbox").write_text(
            "".join("%s@%s %s/%s/\n" % (u, domain, domain, u) for u in users))
        main_cf = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": self.data,
            "meta_directory": "/etc/postfix",
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": "postfix-petrel-test",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.dir,
            "myhostname": hostname,
            "mydomain": "pf.invalid",
            "myorigin": "$myhostname",
            "mydestination": "",
            # The listener's address is in master.cf; inet_interfaces only
            # takes addresses configured on an interface (127.0.0.21 is not,
            # it is only routed to lo).
            "inet_interfaces": "all",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtp_dns_support_level": "disabled",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": cert,
            "smtpd_tls_key_file": key,
            "smtpd_tls_received_header": "yes",
            "virtual_mailbox_domains": domain,
            "virtual_mailbox_maps": "texthash:%s" % (self.etc / "vmailbox"),
            "virtual_mailbox_base": self.vmail,
            "virtual_uid_maps": "static:%d" % nobody.pw_uid,
            "virtual_gid_maps": "static:%d" % nobody.pw_gid,
        }
        (self.etc / "main.cf").write_text(
            "# test_queue_remote.py: a private Postfix instance\n" +
            "".join("%s = %s\n" % kv for kv in main_cf.items()))
        (self.etc / "master.cf").write_text(postfix_master_cf("%s:%d" % (ip, port)))
        # `check` creates the queue directories with their owners.
        self.postfix("check")

    def postfix(self, verb):
        with open(self.dir / "postfix-cmd.log", "ab") as out:
            # Its daemons keep what they inherit: a file, never a pipe.
            r = subprocess.run(["postfix", "-c", str(self.etc), verb], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=out, timeout=60)
        assert r.returncode == 0, "postfix %s failed:\n%s\n%s" % (
            verb, (self.dir / "postfix-cmd.log").read_text(), self.log_text())

    def log_text(self):
        return self.log.read_text() if self.log.exists() else ""

    def start(self):
        self.postfix("start")

    def stop(self):
        self.postfix("stop")

    def messages(self, user):
        """The messages in user's Maildir (raw bytes)."""
        new = self.vmail / self.domain / user / "new"
        if not new.is_dir():
            return []
        return [f.read_bytes() for f in sorted(new.iterdir())]


class Sink:
    """Postfix's smtp-sink (no STARTTLS) dumping each message to a file."""

    def __init__(self, root, ip, port, hostname):
        self.dir = Path(tempfile.mkdtemp(prefix="sink-", dir=root))
        os.chmod(self.dir, 0o777)
        args = ["smtp-sink", "-c", "-d", str(self.dir) + "/%M.", "-h", hostname]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        self.stderr = open(self.dir.parent / (self.dir.name + ".log"), "wb")
        self.proc = subprocess.Popen(args + ["%s:%d" % (ip, port), "10"],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        assert wait_for(lambda: self._listening(ip, port), timeout=10), "smtp-sink did not start"

    @staticmethod
    def _listening(ip, port):
        import socket
        try:
            socket.create_connection((ip, port), timeout=1).close()
            return True
        except OSError:
            return False

    def received(self, marker):
        return [f for f in self.dir.iterdir() if f.is_file() and marker in f.read_bytes()]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.stderr.close()


# ---------------------------------------------------------------- fixtures

def need(program):
    if shutil.which(program) is None and not os.access("/usr/sbin/" + program, os.X_OK):
        pytest.fail("%s is not installed (scripts/setup.sh installs it)" % program)


@pytest.fixture(scope="module")
def dns(e2e_root):
    need("unbound")
    d = Dns(e2e_root, zone())
    yield d
    d.stop()


@pytest.fixture(scope="module")
def port():
    return free_port([PF_IP, V_IP, W_IP, SINK_IP, BOTH_IP, DEAD_IP, V6_IP])


@pytest.fixture(scope="module")
def ca(e2e_root):
    return CertAuthority(e2e_root)


@pytest.fixture(scope="module")
def postfix(e2e_root, port, ca):
    need("postfix")
    key, cert = ca.issue("mx.pf.test")
    pf = Postfix(e2e_root, PF_IP, port, "mx.pf.test", "pf.test", ["who", "other"], key, cert)
    pf.start()
    yield pf
    pf.stop()


@pytest.fixture(scope="module")
def sink(e2e_root, port):
    need("smtp-sink")
    s = Sink(e2e_root, SINK_IP, port, "mx.sink.test")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def hosts(module_factory, dns, port, ca):
    """(A, V, W): the sender, the CA-signed receiver, the self-signed one."""
    v = make_petrel(module_factory, "V", "mx.v.test", V_IP, port, start=False,
                    config={"queue_delivery": "no"},
                    domains=["v.test", "rtv.test", "alias.test"],
                    accounts=["ok@v.test", "ok@rtv.test", "ok@alias.test", "relayed@v.test"])
    use_certificate(v, *ca.issue("mx.v.test"))
    v.cli("alias", "add", "fwd@rtv.test", "far@elsewhere.test")
    v.start()
    w = make_petrel(module_factory, "W", "mx.w.test", W_IP, port,
                    domains=["w.test", "wenc.test", "rtw.test"],
                    accounts=["ok@w.test", "ok@wenc.test", "ok@rtw.test"])
    policy = ("v.test:verify, alias.test:verify, w.test:verify, wenc.test:encrypt, "
              "sink.test:encrypt, pf.test:verify")
    a = make_petrel(module_factory, "A", "a.test", None, None, accounts=[DEMO_USER],
                    config=sender_config(dns, port, queue_tls_ca_file=str(ca.cert),
                                         queue_tls_policy=policy))
    return a, v, w


def drop(p, qid):
    p.cli("queue", "delete", qid)
    assert wait_for(lambda: qid not in [e["id"] for e in queue_list(p)], timeout=10)


def rcpt_state(entry, address):
    return [r for r in entry["recipients"] if r["address"] == address][0]


# ---------------------------------------------------------------- Postfix

def test_delivers_to_postfix_intact(hosts, postfix):
    """Through MX lookup to a real Postfix (smtpd, cleanup, qmgr, virtual),
    over TLS verified against the test CA (pf.test:verify); the message
    arrives byte for byte (dot-stuffing, 8-bit text, long lines)."""
    a, v, w = hosts
    marker = os.urandom(6).hex()
    body = ("Line one %s\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\n"
            "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e\r\n%s\r\n\r\nlast line\r\n" % (
                marker, "x" * 900))
    msg = submit(a, ["who@pf.test"], subject="to postfix " + marker, body=body)
    got = wait_for(lambda: postfix.messages("who"), timeout=30, interval=0.3)
    assert got, "nothing in Postfix's Maildir:\n%s\n%s" % (postfix.log_text(), a.log_tail())
    wait_queue_empty(a)
    raw = got[0]
    # What we submitted (UTF-8) comes after the Received: lines the servers
    # added and the Date: the submission server added; Postfix stores LF
    # line ends.
    sent = msg.encode().replace(b"\r\n", b"\n")
    assert raw.endswith(sent), raw[-400:]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    received = " ".join(parsed.get_all("Received"))
    assert "mx.pf.test" in received and "ESMTPS" in received, received
    assert parsed["Delivered-To"] == "who@pf.test"
    assert re.search(r"event=delivered to=<who@pf\.test> relay=mx\.pf\.test", a.log())


# ---------------------------------------------------------------- TLS policy

def test_policy_verify_delivers_to_a_verified_server(hosts):
    a, v, w = hosts
    since = a.log_size()
    submit(a, ["ok@v.test"], subject="verified")
    assert wait_mail(v, "ok@v.test")[-1]["Subject"] == "verified"
    wait_queue_empty(a)
    assert re.search(r"event=queue-connected host=mx\.v\.test .*tls=1 verified=1",
                     a.log(since)), a.log(since)


def test_policy_verify_defers_on_a_wrong_name(hosts):
    """mx.alias.test is V, whose certificate names mx.v.test only."""
    a, v, w = hosts
    submit(a, ["ok@alias.test"], subject="wrong name")
    e = wait_deferred(a, "ok@alias.test")
    r = rcpt_state(e, "ok@alias.test")
    assert "not verified" in r["last_reply"] and "mismatch" in r["last_reply"], r
    assert mailbox(v, "ok@alias.test") == []
    drop(a, e["id"])


def test_policy_verify_defers_on_a_self_signed_certificate(hosts):
    a, v, w = hosts
    submit(a, ["ok@w.test"], subject="self-signed")
    e = wait_deferred(a, "ok@w.test")
    r = rcpt_state(e, "ok@w.test")
    assert "not verified" in r["last_reply"], r
    assert mailbox(w, "ok@w.test") == []
    drop(a, e["id"])


def test_policy_encrypt_takes_any_certificate(hosts):
    a, v, w = hosts
    submit(a, ["ok@wenc.test"], subject="encrypted")
    assert wait_mail(w, "ok@wenc.test")[-1]["Subject"] == "encrypted"
    wait_queue_empty(a)


def test_policy_encrypt_defers_without_starttls(hosts, sink):
    a, v, w = hosts
    marker = os.urandom(6).hex()
    submit(a, ["x@sink.test"], subject="never in clear " + marker)
    e = wait_deferred(a, "x@sink.test")
    r = rcpt_state(e, "x@sink.test")
    assert "offers no STARTTLS" in r["last_reply"], r
    # a flush tries again, and again does not send
    a.cli("queue", "flush", e["id"])
    e = wait_deferred(a, "x@sink.test")
    assert rcpt_state(e, "x@sink.test")["attempts"] >= 2
    assert sink.received(marker.encode()) == []
    drop(a, e["id"])


# ---------------------------------------------------------------- REQUIRETLS

def test_requiretls_goes_over_verified_tls_and_is_passed_on(hosts):
    """To V (verified, announces REQUIRETLS): delivered, and V keeps the
    requirement for the forward it queues."""
    a, v, w = hosts
    since = a.log_size()
    submit(a, ["ok@rtv.test", "fwd@rtv.test"], subject="require tls",
           mail_options=["REQUIRETLS"])
    assert wait_mail(v, "ok@rtv.test")[-1]["Subject"] == "require tls"
    wait_queue_empty(a)
    assert re.search(r'smtpc-send line="MAIL FROM:<[^>]*> .*REQUIRETLS"', a.log(since))
    queued = wait_for(lambda: [e for e in queue_list(v) if any(
        r["address"] == "far@elsewhere.test" for r in e["recipients"])], timeout=10)
    assert queued and queued[0]["requiretls"], queue_list(v)


def requiretls_bounce(a, rcpt, subject):
    before = len(mailbox(a, DEMO_USER))
    submit(a, [rcpt], subject=subject, body="secret body text\r\n",
           mail_options=["REQUIRETLS"])
    msgs = wait_mail(a, DEMO_USER, before + 1)
    wait_queue_empty(a)
    dsn = msgs[-1]
    head, rcpts = dsn_parts(dsn)
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Final-Recipient"].lower() == "rfc822;" + rcpt
    # the content does not come back (RFC 8689 5): headers only
    returned = list(dsn.iter_parts())[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert subject in returned.as_string()
    text = dsn.as_string()
    assert "secret body text" not in text
    return rcpts[0], text


def test_requiretls_bounces_when_the_server_lacks_it(hosts, postfix):
    """Postfix 3.7 verifies (CA-signed mx.pf.test) but has no REQUIRETLS."""
    a, v, w = hosts
    r, text = requiretls_bounce(a, "who@rtpf.test", "needs requiretls")
    assert r["Status"] == "5.7.30", r
    assert "mx.pf.test: REQUIRETLS not announced" in text, text
    assert not [m for m in postfix.messages("who") if b"needs requiretls" in m]


def test_requiretls_bounces_without_a_verified_certificate(hosts):
    a, v, w = hosts
    r, text = requiretls_bounce(a, "ok@rtw.test", "needs verified tls")
    assert r["Status"] == "5.7.10", r
    assert "mx.w.test: certificate not verified" in text, text
    assert mailbox(w, "ok@rtw.test") == []


# ---------------------------------------------------------------- IPv6

def test_delivers_over_ipv6(module_factory, hosts, port):
    """mx.v6.test has only an AAAA record (::1)."""
    a, v, w = hosts
    s6 = make_petrel(module_factory, "S6", "mx.v6.test", V6_IP, port,
                     domains=["v6.test"], accounts=["ok@v6.test"])
    since = a.log_size()
    submit(a, ["ok@v6.test"], subject="over ipv6")
    assert wait_mail(s6, "ok@v6.test")[-1]["Subject"] == "over ipv6"
    wait_queue_empty(a)
    assert re.search(r"event=smtpc-ready host=mx\.v6\.test ip=::1 ", a.log(since)), \
        a.log(since)
    assert re.search(r"event=connect ip=::1 ", s6.log())


def test_falls_back_from_a_dead_ipv6_address_to_ipv4(module_factory, e2e_root, dns):
    """mx.both.test: AAAA ::1 (nothing listens on that port) and A
    127.0.0.25 (smtp-sink): the first address fails, the second takes it."""
    need("smtp-sink")
    p2 = free_port([BOTH_IP, V6_IP])
    sink = Sink(e2e_root, BOTH_IP, p2, "mx.both.test")
    try:
        a2 = make_petrel(module_factory, "A2", "a2.test", None, None, accounts=[DEMO_USER],
                         config=sender_config(dns, p2))
        marker = os.urandom(6).hex()
        submit(a2, ["x@both.test"], subject="fallback " + marker)
        assert wait_for(lambda: sink.received(marker.encode()), timeout=30, interval=0.3), \
            a2.log_tail()
        wait_queue_empty(a2)
        log = a2.log()
        refused = log.find("connect to mx.both.test[::1]")
        sent = log.find("event=smtp-sent host=mx.both.test")
        assert 0 <= refused < sent, log
    finally:
        sink.stop()


# ---------------------------------------------------------------- SIGHUP

def test_sighup_reloads_queue_settings(module_factory, hosts, dns, port):
    """queue_relayhost changes on SIGHUP: mail deferred at a dead relay host
    goes to the new one at the next flush, without a restart. A reload with
    a queue setting that cannot work changes nothing."""
    a, v, w = hosts
    r = make_petrel(module_factory, "R", "r.test", None, None, accounts=[DEMO_USER],
                    config=sender_config(dns, port, queue_retry_initial="1h",
                                         queue_retry_max="2h",
                                         queue_relayhost="%s:%d" % (DEAD_IP, port)))
    submit(r, ["relayed@v.test"], subject="via the new relay")
    e = wait_deferred(r, "relayed@v.test")
    assert DEAD_IP in rcpt_state(e, "relayed@v.test")["last_reply"]
    # a CA file that does not exist: the reload fails, nothing changes
    r.set_config(queue_tls_ca_file="/nonexistent/ca.pem",
                 queue_relayhost="%s:%d" % (V_IP, port))
    line = r.reload(expect="reload-failed")
    assert "reload-failed" in line and "queue_tls_ca_file" in line, line
    r.cli("queue", "flush")
    e = wait_for(lambda: [x for x in queue_list(r)
                          if rcpt_state(x, "relayed@v.test")["attempts"] >= 2], timeout=20)
    assert e and DEAD_IP in rcpt_state(e[0], "relayed@v.test")["last_reply"], e
    r.set_config(queue_tls_ca_file="")
    since = r.log_size()
    r.reload()
    r.wait_log(r"event=queue-reloaded relayhost=127\.0\.0\.22:%d" % port, since=since)
    # the retry is an hour away: only the flush sends it now
    assert mailbox(v, "relayed@v.test") == []
    r.cli("queue", "flush")
    got = wait_mail(v, "relayed@v.test")
    assert got[-1]["Subject"] == "via the new relay"
    wait_queue_empty(r)
    assert re.search(r"event=delivered to=<relayed@v\.test> relay=127\.0\.0\.22", r.log(since))
    assert r.running()
