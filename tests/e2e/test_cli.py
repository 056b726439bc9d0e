"""The command line: init, check, and the directory commands' round trips
(domain, account, alias, catch-all, import), plain and --json, and that their
changes reach a running server without a restart."""
import json
import re
import sqlite3
import subprocess
import time
import warnings

with warnings.catch_warnings():
    # Deprecated in 3.11, still the simplest SHA512-CRYPT / BLF-CRYPT maker.
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

import pytest

from conftest import (DEMO_PASSWORD, DEMO_USER, IS_ROOT, PORT_OFFSETS, Petrel,
                      petrel_cmd, petrel_uid_gid, plain_response, run, walk_json)


@pytest.fixture
def data(e2e_root):
    """An initialised data directory (no daemon)."""
    p = Petrel(e2e_root, "cli")
    p.init()
    return p


def jlist(p, *args):
    r = p.cli(*args, json=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        pytest.fail("--json %s did not print JSON:\n%s" % (" ".join(args), r.stdout))


def jstrings(p, *args):
    return set(walk_json(jlist(p, *args)))


def find_object(doc, value):
    """The innermost dict of doc that has value among its values."""
    if isinstance(doc, dict):
        for v in doc.values():
            found = find_object(v, value)
            if found is not None:
                return found
        if value in doc.values():
            return doc
    elif isinstance(doc, list):
        for v in doc:
            found = find_object(v, value)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------- init / check

def test_init_makes_config_db_and_certificate(data):
    for f in ("petrel.conf", "petrel.db", "tls/cert.pem", "tls/key.pem"):
        assert (data.dir / f).is_file(), f
    r = run(["openssl", "x509", "-in", str(data.cert), "-noout", "-ext",
             "subjectAltName"])
    assert r.returncode == 0, r.stderr
    san = r.stdout
    assert "DNS:localhost" in san
    assert "IP Address:127.0.0.1" in san
    assert "IP Address:0:0:0:0:0:0:0:1" in san
    # The key is not readable by everyone.
    assert data.key.stat().st_mode & 0o077 == 0
    if IS_ROOT:
        uid, gid = petrel_uid_gid()
        assert data.dir.stat().st_uid == uid
        assert (data.dir / "petrel.db").stat().st_uid == uid


def test_init_hostname_in_certificate_and_config(e2e_root):
    p = Petrel(e2e_root, "cli-host")
    r = petrel_cmd("init", p.dir, "--hostname", "mail.example.test", "--bind",
                   "127.0.0.1,::1", "--port-base", "1000")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^hostname = mail\.example\.test$", p.config_text(), re.M)
    san = run(["openssl", "x509", "-in", str(p.cert), "-noout", "-ext",
               "subjectAltName"]).stdout
    for name in ("DNS:mail.example.test", "DNS:localhost", "IP Address:127.0.0.1"):
        assert name in san
    # Both addresses get all eight listeners.
    listens = re.findall(r"^listen = .*$", p.config_text(), re.M)
    assert len(listens) == 16
    assert any("[::1]:1143" in l for l in listens)


def test_init_refuses_to_overwrite(data):
    before = data.config_text()
    r = petrel_cmd("init", data.dir, "--hostname", "localhost")
    assert r.returncode != 0
    assert "exists" in r.stderr
    assert data.config_text() == before


def test_init_usage_errors(e2e_root):
    assert petrel_cmd("init").returncode == 2
    assert petrel_cmd("init", e2e_root + "/x", "--port-base", "99999").returncode != 0
    assert petrel_cmd("init", e2e_root + "/y", "--hostname", "bad host!").returncode != 0


def test_check_lists_effective_listeners(data):
    r = data.cli("check")
    lines = [l.split() for l in r.stdout.splitlines() if l.startswith("listen ")]
    got = {(l[1], l[2], " ".join(l[3:])) for l in lines}
    n = data.port_base
    expect = {
        ("mx", "127.0.0.1:%d" % (n + 25), "STARTTLS"),
        ("submission", "127.0.0.1:%d" % (n + 587), "STARTTLS"),
        ("submissions", "127.0.0.1:%d" % (n + 465), "implicit TLS"),
        ("submission", "127.0.0.1:%d" % (n + 2525), "STARTTLS"),
        ("imap", "127.0.0.1:%d" % (n + 143), "STARTTLS"),
        ("imaps", "127.0.0.1:%d" % (n + 993), "implicit TLS"),
        ("pop3", "127.0.0.1:%d" % (n + 110), "STARTTLS"),
        ("pop3s", "127.0.0.1:%d" % (n + 995), "implicit TLS"),
    }
    assert got == expect, r.stdout
    assert len(lines) == len(PORT_OFFSETS)


def test_check_reports_broken_certificate(data):
    data.cert.write_text("not a certificate\n")
    r = data.cli("check", expect=None)
    assert r.returncode != 0
    assert str(data.cert) in r.stderr


def test_help_and_unknown_command():
    r = petrel_cmd("--help")
    assert r.returncode == 0 and "usage" in r.stdout
    r = petrel_cmd("frobnicate")
    assert r.returncode == 2 and "frobnicate" in r.stderr
    r = petrel_cmd("--version")
    assert r.returncode == 0 and r.stdout.startswith("petrel ")


# ---------------------------------------------------------------- domains

def test_domain_round_trip(data):
    data.cli("domain", "add", "Example.ORG")
    data.cli("domain", "add", "two.test")
    out = data.cli("domain", "list").stdout
    assert "example.org" in out and "two.test" in out
    assert {"example.org", "two.test"} <= jstrings(data, "domain", "list")
    # A second add of the same domain is an error.
    r = data.cli("domain", "add", "example.org", expect=None)
    assert r.returncode != 0 and r.stderr.strip()
    # Bad names are refused.
    assert data.cli("domain", "add", "bad..name", expect=None).returncode != 0
    assert data.cli("domain", "add", "-x.test", expect=None).returncode != 0
    data.cli("domain", "remove", "two.test")
    assert "two.test" not in data.cli("domain", "list").stdout
    assert "two.test" not in jstrings(data, "domain", "list")
    assert data.cli("domain", "remove", "two.test", expect=None).returncode != 0


def test_domain_remove_with_accounts_needs_force(data):
    data.cli("domain", "add", "full.test")
    data.cli("account", "add", "a@full.test", "--password-stdin", input="pw-a-123\n")
    r = data.cli("domain", "remove", "full.test", expect=None)
    assert r.returncode != 0
    assert "full.test" in data.cli("domain", "list").stdout
    data.cli("domain", "remove", "--force", "full.test")
    assert "full.test" not in data.cli("domain", "list").stdout
    assert "a@full.test" not in data.cli("account", "list").stdout


# ---------------------------------------------------------------- accounts

def test_account_round_trip(data):
    data.cli("domain", "add", "example.test")
    data.cli("account", "add", "Alice@Example.test", "--password-stdin",
             input="alice-pw-1\n")
    data.cli("account", "add", "bob@example.test", "--password-stdin", "--quota", "10M",
             input="bob-pw-1\n")
    out = data.cli("account", "list").stdout
    assert "alice@example.test" in out and "bob@example.test" in out
    doc = jlist(data, "account", "list")
    bob = find_object(doc, "bob@example.test")
    assert bob is not None, doc
    assert 10 * 1024 * 1024 in bob.values(), bob
    # Listing by domain.
    assert "bob@example.test" in data.cli("account", "list", "example.test").stdout
    # No password or hash ever appears in the output.
    assert "bob-pw-1" not in json.dumps(doc)
    assert not any(s.startswith("{ARGON2ID}") or s.startswith("$argon2")
                   for s in walk_json(doc))
    # Quota change.
    data.cli("account", "quota", "bob@example.test", "1G")
    bob = find_object(jlist(data, "account", "list"), "bob@example.test")
    assert 1 << 30 in bob.values(), bob
    assert data.cli("account", "quota", "bob@example.test", "lots",
                    expect=None).returncode != 0
    # Duplicate, unknown domain, remove.
    assert data.cli("account", "add", "bob@example.test", "--password-stdin",
                    input="x-pw-123\n", expect=None).returncode != 0
    assert data.cli("account", "add", "carol@nowhere.test", "--password-stdin",
                    input="x-pw-123\n", expect=None).returncode != 0
    data.cli("account", "remove", "bob@example.test")
    assert "bob@example.test" not in data.cli("account", "list").stdout
    assert data.cli("account", "remove", "bob@example.test",
                    expect=None).returncode != 0


def test_account_password_stdin_errors(data):
    data.cli("domain", "add", "example.test")
    # Empty standard input: refused, nothing created.
    r = data.cli("account", "add", "e@example.test", "--password-stdin", input="",
                 expect=None)
    assert r.returncode != 0
    assert "e@example.test" not in data.cli("account", "list").stdout
    assert data.cli("account", "passwd", "nobody@example.test", "--password-stdin",
                    input="pw-123456\n", expect=None).returncode != 0


def test_account_passwd_changes_hash(data):
    data.cli("domain", "add", "example.test")
    data.cli("account", "add", "p@example.test", "--password-stdin", input="first-pw\n")
    before = db_password(data, "p@example.test")
    data.cli("account", "passwd", "p@example.test", "--password-stdin",
             input="second-pw\n")
    after = db_password(data, "p@example.test")
    assert before and after and before != after
    assert after.startswith("{ARGON2ID}")
    assert "second-pw" not in after


def db_password(p, address):
    """Reads the stored hash (the only way to see it: the CLI never prints it)."""
    con = sqlite3.connect("file:%s?mode=ro" % (p.dir / "petrel.db"), uri=True)
    try:
        row = con.execute("SELECT password FROM accounts WHERE address = ?",
                          (address,)).fetchone()
    finally:
        con.close()
    return row[0] if row else None


# ---------------------------------------------------------------- aliases, catch-all

def test_alias_round_trip(data):
    data.cli("domain", "add", "example.test")
    data.cli("account", "add", "real@example.test", "--password-stdin", input="pw-12345\n")
    data.cli("alias", "add", "info@example.test", "real@example.test", "out@elsewhere.test")
    out = data.cli("alias", "list").stdout
    assert "info@example.test" in out
    assert "real@example.test" in out and "out@elsewhere.test" in out
    strings = jstrings(data, "alias", "list")
    assert {"info@example.test", "real@example.test", "out@elsewhere.test"} <= strings
    # An alias in a domain not hosted here is refused.
    assert data.cli("alias", "add", "x@nothosted.test", "real@example.test",
                    expect=None).returncode != 0
    # Remove one target, then the rest.
    data.cli("alias", "remove", "info@example.test", "out@elsewhere.test")
    strings = jstrings(data, "alias", "list")
    assert "out@elsewhere.test" not in strings and "info@example.test" in strings
    data.cli("alias", "remove", "info@example.test")
    assert "info@example.test" not in jstrings(data, "alias", "list")


def test_catchall_round_trip(data):
    data.cli("domain", "add", "example.test")
    data.cli("account", "add", "sink@example.test", "--password-stdin", input="pw-12345\n")
    data.cli("catchall", "set", "example.test", "sink@example.test")
    doc = jlist(data, "domain", "list")
    dom = find_object(doc, "example.test")
    assert dom is not None and "sink@example.test" in dom.values(), doc
    assert "sink@example.test" in data.cli("domain", "list").stdout
    data.cli("catchall", "clear", "example.test")
    dom = find_object(jlist(data, "domain", "list"), "example.test")
    assert "sink@example.test" not in dom.values(), dom
    assert data.cli("catchall", "set", "nothosted.test", "sink@example.test",
                    expect=None).returncode != 0


# ---------------------------------------------------------------- import

def passwd_file_lines():
    """(address, password, dovecot line) for each supported scheme."""
    sha512 = crypt.crypt("sha-pw", crypt.mksalt(crypt.METHOD_SHA512))
    blf = crypt.crypt("blf-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    blf = "$2y$" + blf[4:]  # what Dovecot writes
    argon = subprocess.run(["argon2", "somesaltsalt", "-id", "-t", "2", "-m", "12", "-e"],
                           input=b"argon-pw", capture_output=True, check=True)
    argon = argon.stdout.decode().strip()
    return [
        ("sha@imported.test", "sha-pw", "sha@imported.test:{SHA512-CRYPT}%s::::::" % sha512),
        ("blf@imported.test", "blf-pw", "blf@imported.test:{BLF-CRYPT}%s::::::" % blf),
        ("argon@imported.test", "argon-pw", "argon@imported.test:{ARGON2ID}%s::::::" % argon),
        ("plain@imported.test", "plain-pw", "plain@imported.test:{PLAIN}plain-pw::::::"),
    ]


def write_passwd_file(p, lines):
    path = p.dir.parent / "users.passwd"
    path.write_text("# Dovecot passwd-file\n" + "\n".join(l for _, _, l in lines) + "\n")
    path.chmod(0o644)
    return path


def test_import_passwd_file_lists_accounts(data):
    lines = passwd_file_lines()
    path = write_passwd_file(data, lines)
    r = data.cli("import", "passwd-file", path)
    strings = jstrings(data, "account", "list")
    for address, _, _ in lines:
        assert address in strings, r.stdout
    assert "imported.test" in data.cli("domain", "list").stdout
    # Hashes are stored as they came until the next login.
    assert db_password(data, "sha@imported.test").startswith("{SHA512-CRYPT}$6$")
    # Importing the same file again is not an error (updates in place).
    data.cli("import", "passwd-file", path)


def test_import_rejects_unknown_scheme(data):
    path = data.dir.parent / "bad.passwd"
    path.write_text("x@imported.test:{MD5-CRYPT}$1$abc$def::::::\n")
    path.chmod(0o644)
    r = data.cli("import", "passwd-file", path, expect=None)
    assert r.returncode != 0 or "MD5" in r.stderr + r.stdout
    assert "x@imported.test" not in data.cli("account", "list").stdout


# ---------------------------------------------------------------- live changes

def smtp_auth_plain(p, user, password, source=None):
    with p.smtp_tls("submissions", source=source) as c:
        code, lines = c.smtp("AUTH PLAIN " + plain_response(user, password))
        return code


@pytest.fixture(scope="module")
def live(module_factory):
    return module_factory(config={"auth_penalty_initial": "50ms",
                                  "auth_penalty_max": "100ms"})


def test_import_then_login_and_rehash(live):
    lines = passwd_file_lines()
    live.cli("import", "passwd-file", write_passwd_file(live, lines))
    argon_before = db_password(live, "argon@imported.test")
    for address, password, _ in lines:
        assert smtp_auth_plain(live, address, password) == 235, address
        # Rehashed to Argon2id at the successful login (done in the
        # background: give it a moment).
        for _ in range(100):
            stored = db_password(live, address) or ""
            if stored.startswith("{ARGON2ID}") and (
                    address != "argon@imported.test" or stored != argon_before):
                break
            time.sleep(0.1)
        assert stored.startswith("{ARGON2ID}"), (address, stored)
        if address == "argon@imported.test":
            # Other Argon2id parameters than ours: rehashed as well.
            assert stored != argon_before
        # The old password still works after the rehash (and SCRAM may be
        # offered from now on, but that is not promised for imports).
        assert smtp_auth_plain(live, address, password) == 235, address
        assert smtp_auth_plain(live, address, password + "x") == 535, address


def test_changes_take_effect_without_restart(live):
    live.cli("domain", "add", "live.test")
    live.cli("account", "add", "new@live.test", "--password-stdin", input="new-pw-1\n")
    assert smtp_auth_plain(live, "new@live.test", "new-pw-1") == 235
    # The login cache must not keep an old password alive.
    live.cli("account", "passwd", "new@live.test", "--password-stdin", input="new-pw-2\n")
    assert smtp_auth_plain(live, "new@live.test", "new-pw-1") == 535
    assert smtp_auth_plain(live, "new@live.test", "new-pw-2") == 235
    live.cli("account", "remove", "new@live.test")
    assert smtp_auth_plain(live, "new@live.test", "new-pw-2") == 535
    # The demo account is untouched.
    assert smtp_auth_plain(live, DEMO_USER, DEMO_PASSWORD) == 235
