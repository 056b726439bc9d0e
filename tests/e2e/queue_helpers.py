"""
Helpers of the queue's end-to-end tests (test_queue.py, test_queue_remote.py):
the test DNS server (unbound on loopback), Petrels that send and receive on
given addresses, submission and mailbox and queue inspection.
"""
import email
import email.policy
import json
import os
import re
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import DEMO_PASSWORD, DEMO_USER, Petrel, wait_for

DNS_IP = "127.0.0.53"


def free_port(ips):
    """A TCP (and UDP) port free on every address of ips (IPv4 or IPv6)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for ip in ips:
            t = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
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



class Dns:
    """unbound on DNS_IP at a free port, authoritative for test. with the
    given records ("name. TYPE data" lines)."""

    def __init__(self, root, records):
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
        ] + ['  local-data: "%s"' % r for r in records] + [
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



def make_petrel(factory, name, hostname, mx_ip, mx_port, config=None, domains=(),
                accounts=(), start=True):
    """A Petrel whose MX listener is mx_ip:mx_port (other services on
    127.0.0.1 at its port base)."""
    p = Petrel(factory.root, name)
    factory.made.append(p)
    p.init(hostname=hostname)
    if mx_ip is not None:
        addr = "[%s]" % mx_ip if ":" in mx_ip else mx_ip
        text = re.sub(r"^listen = mx .*$", "listen = mx %s:%d" % (addr, mx_port),
                      p.config_text(), flags=re.M)
        p.write_config(text)
    base = {"log": "stderr", "log_level": "debug", "queue_delivery": "yes"}
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
    for attempt in range(50):
        r = p.cli("message", "list", address, json=True, expect=None)
        if r.returncode != 0:   # the store is busy with a delivery: again
            time.sleep(0.2)
            continue
        listing = json.loads(r.stdout)
        items = listing if isinstance(listing, list) else listing.get("messages", [])
        out = []
        for m in items:
            raw = p.cli("message", "show", address, str(m["uid"])).stdout
            out.append(email.message_from_string(raw, policy=email.policy.default))
        return out
    raise AssertionError("cannot list %s: %s" % (address, r.stderr))


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



def dsn_parts(msg):
    """(report status fields per recipient, the whole report) of a DSN."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    return blocks[0], blocks[1:]



def queue_ids(p):
    return [e["id"] for e in queue_list(p)]


def wait_deferred(p, address, timeout=30):
    def deferred():
        for e in queue_list(p):
            for r in e["recipients"]:
                if r["address"] == address and r["state"] == "deferred":
                    return e
        return None
    e = wait_for(deferred, timeout=timeout, interval=0.3)
    assert e, "no deferral for %s: %s\n%s" % (address, queue_list(p), p.log_tail())
    return e
