"""
End-to-end harness: starts the real `petrel serve` on loopback with a fresh
data directory and gives tests small helpers to talk to it.

- PETREL_BIN names the binary (default: <repo>/build/petrel).
- Every daemon gets its own port base (all eight ports checked free), its own
  data directory made by `petrel init --hostname localhost --bind 127.0.0.1`,
  a demo domain and account added through the CLI, and a log file (stderr).
- On teardown the daemon gets SIGTERM and must exit 0; a failing test gets
  the tail of every running daemon's log in its report.
- Tests that count failed logins take a fresh client address (127.1.x.y, see
  the src_ip fixture) so that the per-IP penalties of one test never slow
  another.

Run with: /usr/bin/python3 -m pytest tests/e2e -q
"""
import base64
import hashlib
import hmac
import os
import pwd
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PETREL_BIN = os.environ.get("PETREL_BIN", str(REPO / "build" / "petrel"))
IS_ROOT = os.geteuid() == 0

DEMO_DOMAIN = "example.test"
DEMO_USER = "demo@example.test"
DEMO_PASSWORD = "correct horse battery staple"

# Service name -> offset from the port base (as `petrel init` writes them).
PORT_OFFSETS = {
    "mx": 25,
    "submission": 587,
    "submissions": 465,
    "submission_alt": 2525,
    "imap": 143,
    "imaps": 993,
    "pop3": 110,
    "pop3s": 995,
}
IMPLICIT_TLS = ("submissions", "imaps", "pop3s")
READY_TIMEOUT = 20
IO_TIMEOUT = 20

# A log line is key=value pairs; these are events the harness waits for.
READY_RE = re.compile(r"\bevent=ready\b")


# ---------------------------------------------------------------- utilities

def run(args, input=None, check=False, timeout=60, **kw):
    """Runs a command, returns CompletedProcess with text output."""
    return subprocess.run(args, input=input, capture_output=True, text=True,
                          timeout=timeout, check=check, **kw)


def petrel_cmd(*args, input=None, timeout=60):
    return run([PETREL_BIN, *map(str, args)], input=input, timeout=timeout)


_used_ports = set()
_rng = random.Random(os.getpid() * 7919 + int(time.time()))


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def allocate_port_base():
    """A base N whose eight ports are free and below the ephemeral range."""
    candidates = list(range(11000, 32767 - 2525, 10))
    _rng.shuffle(candidates)
    for base in candidates:
        ports = [base + off for off in PORT_OFFSETS.values()]
        if any(p in _used_ports for p in ports):
            continue
        if all(_port_free(p) for p in ports):
            _used_ports.update(ports)
            return base
    raise RuntimeError("no free port base")


_src_counter = [0]


def next_source_ip():
    """A loopback address no other test of this run uses (127.1.x.y)."""
    _src_counter[0] += 1
    n = _src_counter[0] + (os.getpid() % 50) * 1000
    return "127.%d.%d.%d" % (1 + n // 62500, (n // 250) % 250, n % 250 + 2)


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


def plain_response(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def walk_json(obj):
    """Every string in a JSON document (keys and values)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from walk_json(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk_json(v)
    elif isinstance(obj, str):
        yield obj


# ---------------------------------------------------------------- SCRAM

class ScramClient:
    """Client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), no channel binding."""

    def __init__(self, user, password, nonce=None):
        self.user = user
        self.password = password
        self.nonce = nonce or b64(os.urandom(18))
        self.gs2 = "n,,"
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.bare = "n=%s,r=%s" % (name, self.nonce)
        self.server_signature = None
        self.salt = None
        self.iterations = None

    def first(self):
        return self.gs2 + self.bare

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        r = attrs["r"]
        assert r.startswith(self.nonce) and len(r) > len(self.nonce), server_first
        self.salt = unb64(attrs["s"])
        self.iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), self.salt,
                                     self.iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=%s,r=%s" % (b64(self.gs2), r)
        auth_message = ",".join((self.bare, server_first, without_proof)).encode()
        client_sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message,
                                         hashlib.sha256).digest()
        return "%s,p=%s" % (without_proof, b64(proof))

    def verify(self, server_final):
        assert server_final.startswith("v="), server_final
        return hmac.compare_digest(unb64(server_final[2:]), self.server_signature)


# ---------------------------------------------------------------- clients

class LineClient:
    """A line-oriented client (SMTP, POP3, IMAP) that can switch to TLS."""

    def __init__(self, port, host="127.0.0.1", source=None, tls=None,
                 server_hostname="localhost", timeout=IO_TIMEOUT):
        addr = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=addr)
        self.buf = b""
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname)

    # raw I/O
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def sendline(self, line):
        self.send(line + "\r\n")

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_eof(self, timeout=IO_TIMEOUT):
        """Reads until the server closes; returns what came."""
        self.sock.settimeout(timeout)
        data = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace")

    def starttls(self, ctx, server_hostname="localhost"):
        assert self.buf == b"", "unread data before TLS: %r" % self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # SMTP
    def smtp_reply(self):
        """(code, [text lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            line = self.readline()
            assert re.match(r"^\d{3}[ -]", line) or re.match(r"^\d{3}$", line), line
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), lines

    def smtp(self, line):
        self.sendline(line)
        return self.smtp_reply()

    def ehlo(self, name="client.test"):
        code, lines = self.smtp("EHLO " + name)
        assert code == 250, lines
        return [l.upper() for l in lines[1:]]

    # POP3
    def pop3(self, line):
        self.sendline(line)
        return self.readline()

    def pop3_multi(self, line):
        first = self.pop3(line)
        if not first.startswith("+OK"):
            return first, []
        lines = []
        while True:
            l = self.readline()
            if l == ".":
                return first, lines
            lines.append(l[1:] if l.startswith("..") else l)

    # IMAP
    _tag = 0

    def imap(self, command):
        """Sends `TAG command`; returns (tagged status line, untagged lines)."""
        LineClient._tag += 1
        tag = "T%d" % LineClient._tag
        self.sendline("%s %s" % (tag, command))
        return self.imap_wait(tag)

    def imap_wait(self, tag):
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + " "):
                return line[len(tag) + 1:], untagged
            untagged.append(line)


# ---------------------------------------------------------------- daemon

class Petrel:
    """One data directory and (optionally) its running daemon."""

    def __init__(self, root, name):
        parent = tempfile.mkdtemp(prefix=name + "-", dir=root)
        os.chmod(parent, 0o755)  # the daemon's user must reach data/
        self.dir = Path(parent) / "data"
        self.conf = self.dir / "petrel.conf"
        self.cert = self.dir / "tls" / "cert.pem"
        self.key = self.dir / "tls" / "key.pem"
        self.sni_dir = self.dir / "tls" / "sni"
        self.log_path = self.dir.parent / "petrel.log"
        self.proc = None
        self.port_base = None
        self.ports = {}
        self.name = name

    # set-up
    def init(self, hostname="localhost", bind="127.0.0.1"):
        self.port_base = allocate_port_base()
        r = petrel_cmd("init", self.dir, "--hostname", hostname, "--bind", bind,
                       "--port-base", self.port_base)
        assert r.returncode == 0, "petrel init failed:\n%s%s" % (r.stdout, r.stderr)
        self.ports = {k: self.port_base + v for k, v in PORT_OFFSETS.items()}
        return r

    def rebase(self):
        """Moves every listener to a new free port base (after losing a race
        for a port with another process)."""
        old = self.port_base
        self.port_base = allocate_port_base()
        self.ports = {k: self.port_base + v for k, v in PORT_OFFSETS.items()}

        def move(m):
            return "%s:%d" % (m.group(1), int(m.group(2)) - old + self.port_base)
        text = re.sub(r"^(listen\s*=.*):(\d+)\s*$", move, self.config_text(), flags=re.M)
        self.write_config(text)

    def config_text(self):
        return self.conf.read_text()

    def set_config(self, **keys):
        """Replaces `key = value` lines (appends keys that are missing)."""
        text = self.config_text()
        for key, value in keys.items():
            line = "%s = %s" % (key, value)
            pattern = re.compile(r"^%s\s*=.*$" % re.escape(key), re.M)
            if pattern.search(text):
                text = pattern.sub(lambda m: line, text, count=1)
            else:
                text += "\n" + line + "\n"
        self.write_config(text)

    def write_config(self, text):
        st = self.conf.stat()
        tmp = self.conf.with_suffix(".new")
        tmp.write_text(text)
        os.chmod(tmp, st.st_mode & 0o777)
        if IS_ROOT:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, self.conf)

    def give_to_daemon_user(self, path):
        """Files the tests add must be readable by the user the daemon
        runs as, as an administrator would arrange."""
        if IS_ROOT:
            st = self.dir.stat()
            os.chown(path, st.st_uid, st.st_gid)

    def cli(self, *args, input=None, json=False, expect=0, timeout=60):
        argv = ["-c", self.conf]
        if json:
            argv.append("--json")
        r = petrel_cmd(*argv, *args, input=input, timeout=timeout)
        if expect is not None:
            assert r.returncode == expect, (
                "petrel %s: exit %d (expected %d)\nstdout: %s\nstderr: %s" % (
                    " ".join(map(str, args)), r.returncode, expect, r.stdout, r.stderr))
        return r

    def add_account(self, address, password, quota=None):
        domain = address.split("@", 1)[1]
        listed = self.cli("domain", "list").stdout
        if not re.search(r"(^|\s)%s(\s|$)" % re.escape(domain), listed, re.M):
            self.cli("domain", "add", domain)
        args = ["account", "add", address, "--password-stdin"]
        if quota is not None:
            args += ["--quota", quota]
        self.cli(*args, input=password + "\n")

    # running
    def start(self, wait=True, nofile=None):
        """nofile: the daemon's descriptor limit (soft and hard), if given."""
        self.log_offset = self.log_size()
        self._logf = open(self.log_path, "ab")

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen([PETREL_BIN, "-c", str(self.conf), "serve"],
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=self._logf,
                                     preexec_fn=limit if nofile is not None else None)
        _running.append(self)
        if wait:
            self.wait_log(READY_RE, timeout=READY_TIMEOUT, what="event=ready")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_size(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_log(self, pattern, since=None, timeout=20, what=None):
        """Waits for a log line matching pattern (written after `since`)."""
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        since = self.log_offset if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            text = self.log(since)
            for line in text.splitlines():
                if pattern.search(line):
                    return line
            if self.proc is not None and self.proc.poll() is not None:
                # one last read: the line may have come with the exit
                if any(pattern.search(l) for l in self.log(since).splitlines()):
                    continue
                raise AssertionError("petrel exited (%s) before logging %s:\n%s" % (
                    self.proc.returncode, what or pattern.pattern, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("no %s within %ss:\n%s" % (
                    what or pattern.pattern, timeout, self.log_tail()))
            time.sleep(0.05)

    def reload(self, expect="reloaded", timeout=20):
        """SIGHUP; waits for event=reloaded (or event=reload-failed)."""
        since = self.log_size()
        os.kill(self.pid, signal.SIGHUP)
        return self.wait_log(r"\bevent=(reloaded|reload-failed)\b", since=since,
                             timeout=timeout, what="event=" + expect)

    def stop(self, sig=signal.SIGTERM, timeout=45):
        """Signals the daemon and returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("petrel did not exit within %ss of %s:\n%s" % (
                    timeout, signal.Signals(sig).name, self.log_tail()))
        self._logf.close()
        if self in _running:
            _running.remove(self)
        return self.proc.returncode

    def wait_exit(self, timeout=45):
        """Waits for a daemon the test signalled itself; returns its status."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("petrel still running after %ss:\n%s" % (
                timeout, self.log_tail()))
        return self.stop()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _running:
            _running.remove(self)

    # client helpers
    def context(self, alpn=None, minimum=None, maximum=None, verify=True, cafile=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            ctx.load_verify_locations(cafile=str(cafile or self.cert))
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
        if alpn is not None:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def connect(self, service, source=None, tls=None, alpn=None, **kw):
        """A LineClient on a service's port; implicit TLS ports get TLS
        (with the default context unless tls is given)."""
        if service in IMPLICIT_TLS and tls is None:
            tls = self.context(alpn=alpn)
        return LineClient(self.ports[service], source=source, tls=tls, **kw)

    def smtp_tls(self, service="submission", source=None, ehlo=True):
        """An SMTP session upgraded with STARTTLS (or implicit TLS) and EHLO'd."""
        c = self.connect(service, source=source)
        code, _ = c.smtp_reply()
        assert code == 220
        if service not in IMPLICIT_TLS:
            c.ehlo()
            code, lines = c.smtp("STARTTLS")
            assert code == 220, lines
            c.starttls(self.context())
        if ehlo:
            c.ehlo()
        return c


_running = []


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def e2e_root(request):
    if not os.access(PETREL_BIN, os.X_OK):
        pytest.exit("petrel binary not found at %s (build it: ninja -C build, or set "
                    "PETREL_BIN)" % PETREL_BIN, returncode=2)
    root = tempfile.mkdtemp(prefix="petrel-e2e-")
    # The daemon's user must be able to reach the data directories.
    os.chmod(root, 0o755)
    yield root
    if request.session.testsfailed == 0 and not os.environ.get("PETREL_KEEP"):
        shutil.rmtree(root, ignore_errors=True)
    else:
        print("\npetrel e2e data directories kept in %s" % root)


class Factory:
    def __init__(self, root, name):
        self.root = root
        self.name = name
        self.made = []

    def __call__(self, config=None, accounts=True, start=True):
        """A data directory with the demo account, optionally patched config
        keys (dict), started unless start=False."""
        p = Petrel(self.root, self.name)
        self.made.append(p)
        p.init()
        # Mail for other domains stays queued (tests look at the spool);
        # tests of the queue itself turn delivery on.
        base = {"log": "stderr", "log_level": "info", "queue_delivery": "no"}
        base.update(config or {})
        p.set_config(**base)
        if accounts:
            p.add_account(DEMO_USER, DEMO_PASSWORD)
        if start:
            for attempt in range(3):
                try:
                    p.start()
                    break
                except AssertionError:
                    # Another process took one of our ports meanwhile.
                    if attempt == 2 or "cannot listen" not in p.log(p.log_offset):
                        raise
                    p.stop()
                    p.rebase()
        return p

    def finish(self):
        failures = []
        for p in self.made:
            if p not in _running:
                continue  # never started, or stopped by the test itself
            was_running = p.running()
            rc = p.stop()
            if not was_running:
                failures.append("petrel (%s) had already exited with %s:\n%s" % (
                    p.dir, rc, p.log_tail()))
            elif rc != 0:
                failures.append("petrel (%s) exited %s after SIGTERM:\n%s" % (
                    p.dir, rc, p.log_tail()))
        assert not failures, "\n\n".join(failures)


def _safe_name(node_name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", node_name)[:40]


@pytest.fixture
def petrel_factory(e2e_root, request):
    """Makes daemons for one test; stops them (expecting exit 0) after it."""
    f = Factory(e2e_root, _safe_name(request.node.name))
    yield f
    f.finish()


@pytest.fixture(scope="module")
def module_factory(e2e_root, request):
    """Makes daemons shared by a test module."""
    f = Factory(e2e_root, _safe_name(request.module.__name__))
    yield f
    f.finish()


@pytest.fixture
def src_ip():
    """A client address of its own, so per-IP penalties stay within a test."""
    return next_source_ip()


# ---------------------------------------------------------------- reporting

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for p in list(_running):
            report.sections.append(("petrel log %s (last lines)" % p.log_path,
                                    p.log_tail(40)))


# ---------------------------------------------------------------- misc helpers

def make_cert(dirpath, cn, sans):
    """A self-signed certificate; returns (key_path, cert_path)."""
    key = Path(dirpath) / ("%s.key" % cn)
    cert = Path(dirpath) / ("%s.crt" % cn)
    r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=" + cn,
             "-addext", "subjectAltName=" + ",".join("DNS:" + s for s in sans),
             "-keyout", str(key), "-out", str(cert)])
    assert r.returncode == 0, r.stderr
    return key, cert


def cert_subject(der):
    """The subject line of a DER certificate, as openssl prints it."""
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject",
                        "-ext", "subjectAltName"], input=der, capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def petrel_uid_gid():
    pw = pwd.getpwnam("petrel")
    return pw.pw_uid, pw.pw_gid


def wait_for(predicate, timeout=10, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    return predicate()
