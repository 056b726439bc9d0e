"""
The outbound queue end to end: several "hosts" on loopback addresses, a DNS
server (unbound) on 127.0.0.53 publishing their MX records, Petrel A sending
to a second Petrel B (and to Postfix when it is installed).

    127.0.0.1   Petrel A (submission, MX for example.test), the test's sender
    127.0.0.3   Petrel B: MX of dest.test, nomx.test (A record only)
    127.0.0.4   Postfix (pf.test), when installed
    127.0.0.5   a hostile SMTP server (hostile.test)
    127.0.0.6   down.test: nothing listens until the test starts Petrel C
    127.0.0.9   down.multi.test: nothing listens (multi.test's first MX)

Every destination listens on the same port P (A's queue_smtp_port).
"""
import email
import email.policy
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (DEMO_PASSWORD, DEMO_USER, Petrel, allocate_port_base, run,
                      wait_for, _running)

DNS_IP = "127.0.0.53"
B_IP, PF_IP, HOSTILE_IP, DOWN_IP, DEAD_IP = (
    "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.9")


def free_port(ips):
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for ip in ips:
            t = socket.socket()
            try:
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                t.bind((ip, port))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            return port
    raise RuntimeError("no free port")


def zone(port_unused=None):
    return [
        "dest.test. MX 10 mx.dest.test.",
        "mx.dest.test. A %s" % B_IP,
        "nomx.test. A %s" % B_IP,
        "multi.test. MX 5 down.multi.test.",
        "multi.test. MX 10 mx.dest.test.",
        "down.multi.test. A %s" % DEAD_IP,
        "nullmx.test. MX 0 .",
        "pf.test. MX 10 mx.pf.test.",
        "mx.pf.test. A %s" % PF_IP,
        "hostile.test. MX 10 mx.hostile.test.",
        "mx.hostile.test. A %s" % HOSTILE_IP,
        "down.test. MX 10 mx.down.test.",
        "mx.down.test. A %s" % DOWN_IP,
    ]


class Dns:
    def __init__(self, root):
        self.dir = Path(tempfile.mkdtemp(prefix="dns-", dir=root))
        self.port = free_port([DNS_IP])
        conf = self.dir / "unbound.conf"
        lines = [
            "server:",
            "  interface: %s@%d" % (DNS_IP, self.port),
            "  do-daemonize: no", '  username: ""', '  chroot: ""',
            '  directory: "%s"' % self.dir, '  pidfile: ""', "  use-syslog: no",
            '  logfile: ""', "  verbosity: 0", "  access-control: 127.0.0.0/8 allow",
            "  do-ip6: no", '  module-config: "iterator"',
            '  local-zone: "test." static',
        ] + ['  local-data: "%s"' % r for r in zone()] + [
            "remote-control:", "  control-enable: no"]
        conf.write_text("\n".join(lines) + "\n")
        self.log = open(self.dir / "unbound.log", "wb")
        self.proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._answers():
                return
            time.sleep(0.1)
        raise RuntimeError("unbound did not start: %s" %
                           (self.dir / "unbound.log").read_text())

    def _answers(self):
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + \
            b"\x04dest\x04test\x00\x00\x0f\x00\x01"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(q, (DNS_IP, self.port))
            return len(s.recv(512)) > 12
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def dns(e2e_root):
    if shutil.which("unbound") is None:
        pytest.skip("unbound is not installed (apt-get install unbound)")
    d = Dns(e2e_root)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def mx_port():
    return free_port([B_IP, PF_IP, HOSTILE_IP, DOWN_IP, DEAD_IP])


def make_petrel(factory, name, hostname, mx_ip, mx_port, config=None, domains=(),
                accounts=(), start=True):
    """A Petrel whose MX listener is mx_ip:mx_port (other services on
    127.0.0.1 at its port base)."""
    p = Petrel(factory.root, name)
    factory.made.append(p)
    p.init(hostname=hostname)
    text = re.sub(r"^listen = mx .*$", "listen = mx %s:%d" % (mx_ip, mx_port),
                  p.config_text(), flags=re.M)
    p.write_config(text)
    base = {"log": "stderr", "log_level": "debug"}
    base.update(config or {})
    p.set_config(**base)
    for d in domains:
        p.cli("domain", "add", d)
    for a in accounts:
        p.add_account(a, DEMO_PASSWORD)
    if start:
        p.start()
    return p


def sender_config(dns, mx_port, **extra):
    cfg = {
        "queue_dns_resolver": "%s:%d" % (DNS_IP, dns.port),
        "queue_smtp_port": mx_port,
        "queue_retry_initial": "1s",
        "queue_retry_max": "2s",
        "queue_connect_timeout": "3s",
        "queue_command_timeout": "5s",
        "queue_data_timeout": "10s",
    }
    cfg.update(extra)
    return cfg


def submit(p, rcpts, subject="hello", body="Hello there.\r\n", sender=DEMO_USER,
           extra_headers="", mail_options=(), rcpt_options=()):
    """Sends through p's submission port (STARTTLS + AUTH as demo)."""
    msg = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.test>\r\n%s"
           "\r\n%s" % (sender, ", ".join("<%s>" % r for r in rcpts), subject,
                       os.urandom(8).hex(), extra_headers, body))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", p.ports["submission"], timeout=20) as s:
        s.starttls(context=ctx)
        s.login(DEMO_USER, DEMO_PASSWORD)
        refused = s.sendmail(sender, rcpts, msg.encode(), mail_options=list(mail_options),
                             rcpt_options=list(rcpt_options))
    assert not refused, refused
    return msg


def mailbox(p, address):
    """The messages in address's INBOX, as email.message objects."""
    r = p.cli("message", "list", address, json=True)
    listing = json.loads(r.stdout)
    items = listing if isinstance(listing, list) else listing.get("messages", [])
    out = []
    for m in items:
        raw = p.cli("message", "show", address, str(m["uid"])).stdout
        out.append(email.message_from_string(raw, policy=email.policy.default))
    return out


def wait_mail(p, address, count=1, timeout=30):
    msgs = wait_for(lambda: (lambda m: m if len(m) >= count else None)(mailbox(p, address)),
                    timeout=timeout, interval=0.3)
    assert msgs and len(msgs) >= count, "no mail for %s:\n%s" % (address, p.log_tail())
    return msgs


def queue_list(p):
    return json.loads(p.cli("queue", "list", json=True).stdout)


def wait_queue_empty(p, timeout=30):
    ok = wait_for(lambda: queue_list(p) == [], timeout=timeout, interval=0.3)
    assert ok, "queue not empty: %s\n%s" % (queue_list(p), p.log_tail())


# ---------------------------------------------------------------- the hosts

@pytest.fixture(scope="module")
def hosts(module_factory, dns, mx_port):
    b = make_petrel(module_factory, "B", "mx.dest.test", B_IP, mx_port,
                    domains=["dest.test", "nomx.test"],
                    accounts=["rcpt@dest.test", "other@dest.test", "relay@dest.test",
                              "a@nomx.test"])
    a = make_petrel(module_factory, "A", "a.test", "127.0.0.1", allocate_port_base() + 25,
                    config=sender_config(dns, mx_port), accounts=[DEMO_USER])
    return a, b


def dsn_parts(msg):
    """(report status fields per recipient, the whole report) of a DSN."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    return blocks[0], blocks[1:]


# ---------------------------------------------------------------- tests

def test_delivers_to_second_petrel(hosts):
    a, b = hosts
    since = b.log_size()
    submit(a, ["rcpt@dest.test", "other@dest.test"], subject="to B")
    msgs = wait_mail(b, "rcpt@dest.test")
    assert msgs[-1]["Subject"] == "to B"
    wait_mail(b, "other@dest.test")
    wait_queue_empty(a)
    # one transaction for both recipients of the domain, over TLS
    log = b.log(since)
    assert re.search(r"event=accepted .*rcpts=2 .*stored=2", log), log
    assert "event=tls" in log


def test_a_record_fallback(hosts):
    a, b = hosts
    submit(a, ["a@nomx.test"], subject="no mx")
    assert wait_mail(b, "a@nomx.test")[-1]["Subject"] == "no mx"
    wait_queue_empty(a)


def test_second_mx_when_first_is_down(hosts):
    a, b = hosts
    # multi.test: its first MX (127.0.0.9) refuses; the second is B, which
    # does not host multi.test and refuses the recipient: a 5xx from B
    # proves the second MX was reached.
    submit(a, ["x@multi.test"], subject="multi")
    msgs = wait_mail(a, DEMO_USER)
    head, rcpts = dsn_parts(msgs[-1])
    assert rcpts[0]["Remote-MTA"].endswith("mx.dest.test")
    wait_queue_empty(a)


def test_550_bounces_to_local_sender(hosts):
    a, b = hosts
    before = len(mailbox(a, DEMO_USER))
    submit(a, ["nobody@dest.test"], subject="will bounce")
    msgs = wait_mail(a, DEMO_USER, before + 1)
    dsn = msgs[-1]
    assert dsn["Subject"].startswith("Undelivered")
    head, rcpts = dsn_parts(dsn)
    assert head["Reporting-MTA"] == "dns; a.test"
    r = rcpts[0]
    assert r["Action"] == "failed"
    assert r["Final-Recipient"].lower() == "rfc822;nobody@dest.test"
    assert r["Status"].startswith("5.")
    assert r["Diagnostic-Code"].startswith("smtp; 550")
    assert r["Remote-MTA"] == "dns; mx.dest.test"
    # the original message comes back
    orig = list(dsn.iter_parts())[2]
    assert orig.get_content_type() in ("message/rfc822", "text/rfc822-headers")
    assert "will bounce" in orig.as_string()
    wait_queue_empty(a)


def test_null_mx_bounces_at_once(hosts):
    a, b = hosts
    before = len(mailbox(a, DEMO_USER))
    submit(a, ["x@nullmx.test"], subject="null mx")
    msgs = wait_mail(a, DEMO_USER, before + 1)
    head, rcpts = dsn_parts(msgs[-1])
    assert rcpts[0]["Status"] == "5.1.10"
    assert rcpts[0]["Action"] == "failed"
    wait_queue_empty(a)
