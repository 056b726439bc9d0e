"""The servers under test, each run from its own directory in the work dir.

- Stack: Postfix (own config directory, queue and data directories in the
  work dir, smtpd on a loopback port) delivering through Dovecot LMTP to
  Maildir, and Dovecot (own dovecot.conf, base_dir and state in the work
  dir) serving IMAP and POP3. Durability settings as shipped.
- Petrel: `petrel init` in the work dir, the same accounts imported.

Both use the same self-signed RSA certificate (the one `petrel init` made)
and the same accounts with the same SHA512-CRYPT password hash. Every
process started here is stopped by PID.
"""
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import time

DOMAIN = "bench.test"
REMOTE = "remote.test"
PASSWORD = "bench-pass"
NUSERS = 10000


def user(i):
    return f"u{i:05d}@{DOMAIN}"


def wait_port(port, timeout=20.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid, timeout=30.0):
    """SIGTERM, wait, then SIGKILL: only this PID (its own children are its job)."""
    if pid is None or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.time() + timeout
    while time.time() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_pidfile(path, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path) as f:
                pid = int(f.read().split()[0])
            if pid_alive(pid):
                return pid
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no live PID in {path}")


def nofile_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def write_accounts(work):
    """One passwd-file for every server: NUSERS accounts, one SHA512-CRYPT hash."""
    path = os.path.join(work, "users.passwd")
    h = subprocess.run(["openssl", "passwd", "-6", "-salt", "benchsalt00", PASSWORD],
                       check=True, capture_output=True, text=True).stdout.strip()
    with open(path, "w") as f:
        for i in range(1, NUSERS + 1):
            f.write(f"{user(i)}:{{SHA512-CRYPT}}{h}::::::\n")
    os.chmod(path, 0o644)
    return path


class Petrel:
    name = "petrel"
    label = "Petrel"

    def __init__(self, work, binary, port_base):
        self.dir = os.path.join(work, "petrel")
        self.bin = binary
        self.base = port_base
        self.ports = {"smtp": port_base + 25, "imap": port_base + 143,
                      "imaps": port_base + 993, "pop3": port_base + 110,
                      "pop3s": port_base + 995}
        self.proc = None
        self.conf = os.path.join(self.dir, "petrel.conf")
        self.log = os.path.join(work, "petrel.log")

    def all_ports(self):
        return [self.base + p for p in (25, 587, 465, 2525, 143, 993, 110, 995)]

    def version(self):
        r = subprocess.run([self.bin, "--version"], capture_output=True, text=True)
        out = (r.stdout or r.stderr).strip().splitlines()
        return out[0] if out else "petrel (unknown version)"

    def cli(self, *args, stdin=None):
        return subprocess.run([self.bin, "-c", self.conf, *args], check=True,
                              capture_output=True, text=True, input=stdin)

    def setup(self, accounts):
        subprocess.run([self.bin, "init", self.dir, "--hostname", "localhost",
                        "--bind", "127.0.0.1", "--port-base", str(self.base)],
                       check=True, capture_output=True, text=True)
        text = open(self.conf).read()
        for key, value in (("max_connections", "20000"),
                           ("max_connections_per_ip", "20000"),
                           ("log_level", "warn"), ("log", "stderr")):
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if line.split("=")[0].strip() == key:
                    lines[i] = f"{key} = {value}"
            text = "\n".join(lines) + "\n"
        with open(self.conf, "w") as f:
            f.write(text)
        self.cli("domain", "add", DOMAIN)
        self.cli("import", "passwd-file", accounts)
        # Forwarders to another domain: the queue-drain scenario's mail.
        for i in range(10):
            self.cli("alias", "add", f"fwd{i}@{DOMAIN}", f"sink{i}@{REMOTE}")

    def set_relayhost(self, port):
        """Sends remote mail to 127.0.0.1:port (takes effect at the next start)."""
        lines = open(self.conf).read().splitlines()
        lines = [line for line in lines if line.split("=")[0].strip() != "queue_relayhost"]
        lines.append(f"queue_relayhost = 127.0.0.1:{port}")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cert(self):
        return (os.path.join(self.dir, "tls", "cert.pem"),
                os.path.join(self.dir, "tls", "key.pem"))

    def start(self):
        log = open(self.log, "a")
        self.proc = subprocess.Popen([self.bin, "-c", self.conf, "serve"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     preexec_fn=nofile_limit)
        for p in self.ports.values():
            wait_port(p, proc=self.proc)

    def roots(self, role):
        return [self.proc.pid] if self.proc else []

    def stop(self):
        if self.proc is not None:
            stop_pid(self.proc.pid)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None


POSTFIX_MASTER_CF = """\
# bench/run: Postfix services of the benchmark instance (no chroot).
{smtp_addr} inet  n       -       n       -       200     smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

DOVECOT_CONF = """\
# bench/run: the Dovecot instance of the benchmark. Everything it writes is
# under {d}. Durability settings (mail_fsync, maildir) are the shipped ones.
base_dir = {d}/run
state_dir = {d}/state
instance_name = bench-dovecot
protocols = imap pop3 lmtp
listen = 127.0.0.1
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = {accounts}
}}
{auth_tuning}userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%d/%n
}}
mail_location = maildir:~/Maildir
# Raised from 20: the imap-10k scenarios log 50 clients into one account.
mail_max_userip_connections = 100
namespace inbox {{
  inbox = yes
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
# Many connections: login processes in high-performance mode and IDLE
# sessions hibernated, as the Dovecot documentation advises for many IDLE
# clients; process limits high enough for the idle scenario.
default_process_limit = 200
default_client_limit = 20000
imap_hibernate_timeout = 5s
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = 5000
  vsz_limit = 1G
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = 5000
  vsz_limit = 1G
}}
service imap {{
  process_limit = 12000
{imap_tuning}  unix_listener imap-master {{
    mode = 0666
  }}
}}
service imap-hibernate {{
  unix_listener imap-hibernate {{
    mode = 0666
  }}
  process_limit = 4
  client_limit = 10000
}}
service pop3 {{
  process_limit = 1000
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  client_limit = 15000
}}
service auth {{
  client_limit = 15000
}}
"""


class Stack:
    """Postfix -> Dovecot LMTP -> Maildir, Dovecot IMAP/POP3."""
    name = "stack"
    label = "Postfix+Dovecot"

    # --dovecot-tuned: Dovecot's own advice for speed over its defaults:
    # successful logins cached (no hash per login) and imap processes
    # reused by one client after another instead of one per session.
    TUNED_AUTH = "auth_cache_size = 10M\n"
    TUNED_IMAP = "  service_count = 1000\n  process_min_avail = 4\n"

    def __init__(self, work, port_base, sink_port, tuned=False):
        self.work = work
        self.pdir = os.path.join(work, "postfix")
        self.etc = os.path.join(self.pdir, "etc")
        self.spool = os.path.join(self.pdir, "spool")
        self.ddir = os.path.join(work, "dovecot")
        self.dconf = os.path.join(self.ddir, "dovecot.conf")
        self.ports = {"smtp": port_base + 25, "imap": port_base + 143,
                      "imaps": port_base + 993, "pop3": port_base + 110,
                      "pop3s": port_base + 995}
        self.sink_port = sink_port
        self.tuned = tuned
        self.postfix_pid = None
        self.dovecot_pid = None

    def all_ports(self):
        return list(self.ports.values())

    def version(self):
        pf = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                            text=True).stdout.strip()
        dv = subprocess.run(["dovecot", "--version"], capture_output=True,
                            text=True).stdout.strip()
        return f"Postfix {pf}, Dovecot {dv}"

    def mail_dir(self, addr):
        local, domain = addr.split("@")
        return os.path.join(self.ddir, "mail", domain, local, "Maildir")

    def setup(self, accounts, cert, key):
        # Dovecot
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(self.ddir, sub), exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(os.path.join(self.ddir, "mail"), nobody.pw_uid, nobody.pw_gid)
        tls = os.path.join(self.ddir, "tls")
        os.makedirs(tls, exist_ok=True)
        shutil.copy(cert, os.path.join(tls, "cert.pem"))
        shutil.copy(key, os.path.join(tls, "key.pem"))
        os.chmod(os.path.join(tls, "key.pem"), 0o600)
        with open(self.dconf, "w") as f:
            f.write(DOVECOT_CONF.format(
                d=self.ddir, cert=os.path.join(tls, "cert.pem"),
                key=os.path.join(tls, "key.pem"), accounts=accounts, domain=DOMAIN,
                imap=self.ports["imap"], imaps=self.ports["imaps"],
                pop3=self.ports["pop3"], pop3s=self.ports["pop3s"],
                auth_tuning=self.TUNED_AUTH if self.tuned else "",
                imap_tuning=self.TUNED_IMAP if self.tuned else ""))
        # Postfix
        for sub in (self.etc, self.spool, os.path.join(self.pdir, "data")):
            os.makedirs(sub, exist_ok=True)
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            for i in range(1, NUSERS + 1):
                f.write(f"{user(i)} OK\n")
        with open(os.path.join(self.etc, "transport"), "w") as f:
            f.write(f"{REMOTE} relay:[127.0.0.1]:{self.sink_port}\n")
        main_cf = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": os.path.join(self.pdir, "data"),
            "meta_directory": "/etc/postfix",
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": "postfix-bench",
            "maillog_file": os.path.join(self.pdir, "postfix.log"),
            "maillog_file_prefixes": self.pdir,
            "myhostname": "stack.localhost",
            "mydomain": "localhost",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_maps": "texthash:" + os.path.join(self.etc, "vmailbox"),
            "virtual_transport": "lmtp:unix:" + os.path.join(self.ddir, "run", "lmtp"),
            "transport_maps": "texthash:" + os.path.join(self.etc, "transport"),
            "relay_domains": REMOTE,
            "message_size_limit": "52428800",
        }
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("# bench/run: the Postfix instance of the benchmark\n")
            for k, v in main_cf.items():
                f.write(f"{k} = {v}\n")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(smtp_addr=f"127.0.0.1:{self.ports['smtp']}"))
        pf = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.pdir, "data"), pf.pw_uid, pf.pw_gid)
        # Postfix creates its queue directories with the right owners.
        subprocess.run(["postfix", "-c", self.etc, "check"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def postconf(self, setting):
        subprocess.run(["postconf", "-c", self.etc, "-e", setting], check=True)

    def postfix_reload(self):
        subprocess.run(["postfix", "-c", self.etc, "reload"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def start(self):
        # Daemons inherit stdout/stderr: send them to a file, not to a pipe.
        log = open(os.path.join(self.work, "stack-start.log"), "a")
        r = subprocess.run(["dovecot", "-c", self.dconf], stdin=subprocess.DEVNULL,
                           stdout=log, stderr=log, preexec_fn=nofile_limit)
        if r.returncode != 0:
            raise RuntimeError(f"dovecot failed to start: see {log.name}")
        self.dovecot_pid = read_pidfile(os.path.join(self.ddir, "run", "master.pid"))
        r = subprocess.run(["postfix", "-c", self.etc, "start"], stdin=subprocess.DEVNULL,
                           stdout=log, stderr=log, preexec_fn=nofile_limit)
        if r.returncode != 0:
            raise RuntimeError(f"postfix failed to start: see {log.name} and "
                               f"{self.pdir}/postfix.log")
        self.postfix_pid = read_pidfile(os.path.join(self.spool, "pid", "master.pid"))
        for p in self.ports.values():
            wait_port(p)

    def roots(self, role):
        """The processes that serve a role: smtp = Postfix and Dovecot (LMTP
        delivery), imap/pop3 = Dovecot alone."""
        if role == "smtp":
            return [p for p in (self.postfix_pid, self.dovecot_pid) if p]
        return [self.dovecot_pid] if self.dovecot_pid else []

    def queue_count(self):
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.spool, sub)):
                n += len(files)
        return n

    def deferred_count(self):
        n = 0
        for _, _, files in os.walk(os.path.join(self.spool, "deferred")):
            n += len(files)
        return n

    def stop(self):
        stop_pid(self.postfix_pid)
        self.postfix_pid = None
        stop_pid(self.dovecot_pid)
        self.dovecot_pid = None
