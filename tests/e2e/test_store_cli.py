"""The mail commands of the CLI: mailbox list/create/rename/delete, message
list/show, import maildir|mbox and export maildir|mbox (round trips byte for
byte, flags, keywords, dates, modified UTF-7 folder names, resuming an
interrupted import), and `account remove` taking the mail with it.

The Maildir is built here the way Dovecot lays one out (Maildir++ folders,
dovecot-uidlist, dovecot-keywords): the suite does not need Dovecot."""
import json
import os
import re
import signal
import subprocess
import time
from base64 import b64decode, b64encode

import pytest

from conftest import DEMO_USER, PETREL_BIN

UIDVALIDITY = 1700000000


@pytest.fixture
def data(petrel_factory):
    """A data directory with the demo account; no daemon."""
    return petrel_factory(start=False)


def jcli(p, *args):
    return json.loads(p.cli(*args, json=True).stdout)


def mailboxes(p):
    return {m["name"]: m for m in jcli(p, "mailbox", "list", DEMO_USER)["mailboxes"]}


def messages(p, mailbox="INBOX"):
    return jcli(p, "message", "list", DEMO_USER, "--mailbox", mailbox)["messages"]


def show(p, uid, mailbox="INBOX"):
    r = subprocess.run([PETREL_BIN, "-c", str(p.conf), "message", "show", DEMO_USER,
                        str(uid), "--mailbox", mailbox], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def workdir(p, name):
    """A directory beside the data directory (readable by the daemon's user)."""
    d = p.dir.parent / name
    d.mkdir(mode=0o755)
    return d


def msg(n, subject=None, body=None, crlf=False):
    text = ("From: Sender %d <sender%d@example.org>\n"
            "To: demo@example.test\n"
            "Subject: %s\n"
            "Date: Mon, 1 Jan 2024 10:00:%02d +0000\n"
            "Message-ID: <%d@example.org>\n"
            "\n"
            "%s") % (n, n, subject or "message %d" % n, n % 60, n,
                     body if body is not None else "Body of message %d.\n" % n)
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode()


# ---------------------------------------------------------------- mailboxes

def test_mailbox_create_rename_delete_list(data):
    boxes = mailboxes(data)
    for name in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert name in boxes, boxes.keys()
    assert "\\Sent" in boxes["Sent"]["special_use"]

    r = data.cli("mailbox", "create", DEMO_USER, "Projects/Petrel")
    assert "created" in r.stdout
    boxes = mailboxes(data)
    assert "Projects" in boxes and "Projects/Petrel" in boxes
    data.cli("mailbox", "create", DEMO_USER, "Café/Été")
    assert "Café/Été" in mailboxes(data)

    data.cli("mailbox", "create", DEMO_USER, "Projects/Petrel", expect=1)
    data.cli("mailbox", "rename", DEMO_USER, "Projects", "Work")
    boxes = mailboxes(data)
    assert "Work/Petrel" in boxes and "Projects" not in boxes
    assert "Projects/Petrel" not in boxes

    # A parent with children and INBOX stay.
    data.cli("mailbox", "delete", DEMO_USER, "Work", expect=1)
    data.cli("mailbox", "delete", DEMO_USER, "INBOX", expect=1)
    data.cli("mailbox", "delete", DEMO_USER, "Work/Petrel")
    data.cli("mailbox", "delete", DEMO_USER, "Work")
    assert "Work" not in mailboxes(data)
    data.cli("mailbox", "delete", DEMO_USER, "Nope", expect=1)

    text = data.cli("mailbox", "list", DEMO_USER).stdout
    assert re.search(r"^INBOX\s+messages=0", text, re.M), text
    # Errors: unknown account (1), bad usage (2).
    data.cli("mailbox", "list", "nobody@example.test", expect=1)
    data.cli("mailbox", "create", DEMO_USER, expect=2)
    data.cli("mailbox", "frobnicate", DEMO_USER, expect=2)
    data.cli("mailbox", "create", DEMO_USER, "bad//name", expect=1)


# ---------------------------------------------------------------- messages

def test_message_list_and_show(data):
    box = workdir(data, "mbox")
    body8 = "Grüße aus Köln\n".encode()
    raw = [msg(1), msg(2, subject="Zweite =?utf-8?q?Nachricht?="),
           msg(3, crlf=True), msg(4, body="") + body8]
    f = box / "in.mbox"
    f.write_bytes(b"".join(b"From someone@example.org Mon Jan  1 10:00:00 2024\n" + m
                           + b"\n" for m in raw))
    data.cli("import", "mbox", DEMO_USER, f)

    listed = messages(data)
    assert [m["uid"] for m in listed] == sorted(m["uid"] for m in listed)
    assert len(listed) == 4
    assert listed[0]["from"] == "Sender 1 <sender1@example.org>"
    assert listed[1]["subject"] == "Zweite =?utf-8?q?Nachricht?="
    assert [m["size"] for m in listed] == [len(m) for m in raw]
    assert all(m["internaldate"] == "2024-01-01T10:00:00Z" for m in listed)
    for m, want in zip(listed, raw):
        assert show(data, m["uid"]) == want

    text = data.cli("message", "list", DEMO_USER).stdout.splitlines()
    assert len(text) == 4
    assert text[0].split("\t")[0] == str(listed[0]["uid"])
    assert "message 1" in text[0]

    j = jcli(data, "message", "show", DEMO_USER, listed[3]["uid"])
    assert j["message"].encode() == raw[3]
    data.cli("message", "show", DEMO_USER, "999", expect=1)
    data.cli("message", "show", DEMO_USER, "x", expect=2)
    data.cli("message", "list", DEMO_USER, "--mailbox", "Nope", expect=1)


# ---------------------------------------------------------------- Maildir

def utf7_encode(name):
    """Modified UTF-7 (RFC 3501 5.1.3) as Dovecot writes folder names."""
    out, run = [], ""

    def flush():
        if run:
            b = run.encode("utf-16-be")
            out.append("&" + b64encode(b).decode().rstrip("=").replace("/", ",")
                       + "-")
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            run = ""
            out.append("&-" if ch == "&" else ch)
        else:
            run += ch
    flush()
    return "".join(out)


# (folder name as IMAP shows it, [(uid, letters, keywords, bytes, in_new)])
KEYWORDS = ["$Junk", "project-x", "later"]
FOLDERS = {
    "INBOX": [
        (1, "S", [], msg(1), False),
        (2, "RS", [], msg(2, crlf=True), False),
        (4, "FPS", ["project-x"], msg(4, body="From the start of a line.\n"), False),
        (7, "T", ["$Junk", "later"], msg(7, body="x" * 5000 + "\n"), False),
        (9, "", [], msg(9), True),
    ],
    "Sent": [(3, "S", [], msg(30), False)],
    "Archive/2023": [(10, "DS", [], msg(40), False), (11, "S", ["later"], msg(41), False)],
    "Été & co/Café": [(1, "", [], "Subject: caf\u00e9\n\nna\u00efve\n".encode(), True)],
}
# dovecot-uidlist's header: each folder its own UIDVALIDITY; UIDNEXT is the
# highest UID + 1 unless given here (messages expunged at the end).
FOLDER_UIDVALIDITY = {name: UIDVALIDITY + i for i, name in enumerate(FOLDERS)}
FOLDER_UIDNEXT = {"INBOX": 15}
SYSTEM_LETTERS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                  "T": "\\Deleted", "P": "$Forwarded"}


def folder_dir(root, name):
    if name == "INBOX":
        return root
    return root / ("." + ".".join(utf7_encode(part) for part in name.split("/")))


def folder_uidnext(name):
    return FOLDER_UIDNEXT.get(name, max(m[0] for m in FOLDERS[name]) + 1)


def build_maildir(root):
    """A Maildir++ tree as Dovecot writes it; returns {name: {base: info}}."""
    layout = {}
    t0 = 1704103200
    for name, msgs in FOLDERS.items():
        d = folder_dir(root, name)
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if name != "INBOX":
            (d / "maildirfolder").touch()
        kwfile = "".join("%d %s\n" % (i, k) for i, k in enumerate(KEYWORDS))
        (d / "dovecot-keywords").write_text(kwfile)
        uidlist = ["3 V%d N%d G0123456789abcdef0123456789abcdef\n"
                   % (FOLDER_UIDVALIDITY[name], folder_uidnext(name))]
        layout[name] = {}
        for uid, letters, kws, raw, in_new in msgs:
            base = "%d.M%dP%d.mailhost,S=%d,W=%d" % (t0 + uid, uid * 1000, 4242, len(raw),
                                                    len(raw) + raw.count(b"\n"))
            kwletters = "".join(sorted(chr(ord("a") + KEYWORDS.index(k)) for k in kws))
            fname = base if in_new else "%s:2,%s%s" % (base, letters, kwletters)
            path = d / ("new" if in_new else "cur") / fname
            path.write_bytes(raw)
            os.utime(path, (t0 + uid * 60, t0 + uid * 60))
            # Dovecot puts extension fields before the name in v3 lists.
            uidlist.append("%d W%d :%s\n" % (uid, len(raw) + 7, base) if uid % 2 else
                           "%d :%s\n" % (uid, base))
            layout[name][base] = (uid, letters, kws, raw, t0 + uid * 60)
        (d / "dovecot-uidlist").write_text("".join(uidlist))
    # A delivery in progress is not a message.
    (root / "tmp" / "1704103200.M1P1.mailhost").write_bytes(b"partial")
    return layout


def expected_flags(letters, kws):
    flags = {SYSTEM_LETTERS[c] for c in letters}
    return flags | set(kws)


def read_uidlist(d):
    """(UIDVALIDITY, UIDNEXT, {uid: message bytes}) of a Maildir folder."""
    lines = (d / "dovecot-uidlist").read_text().splitlines()
    fields = {f[0]: f[1:] for f in lines[0].split()[1:]}
    files = {}
    for sub in ("cur", "new"):
        for f in (d / sub).iterdir():
            files[f.name.split(":2,", 1)[0]] = f.read_bytes()
    by_uid = {}
    for line in lines[1:]:
        uid, base = line.split(" :", 1)
        by_uid[int(uid.split()[0])] = files[base]
    return int(fields["V"]), int(fields["N"]), by_uid


def read_exported_maildir(root):
    """{name: [(uid, flags, bytes, mtime)]} from an exported Maildir++ tree."""
    out = {}
    dirs = [("INBOX", root)] + [(d.name, d) for d in root.iterdir()
                                if d.is_dir() and d.name.startswith(".")]
    for name, d in dirs:
        if name != "INBOX":
            name = "/".join(decode_utf7(p) for p in name[1:].split("."))
        kws = {}
        if (d / "dovecot-keywords").exists():
            for line in (d / "dovecot-keywords").read_text().splitlines():
                i, k = line.split(" ", 1)
                kws[chr(ord("a") + int(i))] = k
        lines = (d / "dovecot-uidlist").read_text().splitlines()
        header = lines[0].split()
        assert header[0] == "3" and header[1].startswith("V"), lines[0]
        uids = {}
        for line in lines[1:]:
            uid, base = line.split(" :", 1)
            uids[base] = int(uid)
        files = []
        for f in (d / "cur").iterdir():
            base, info = f.name.split(":2,", 1)
            flags = {SYSTEM_LETTERS[c] if c.isupper() else kws[c] for c in info}
            files.append((uids[base], flags, f.read_bytes(), int(f.stat().st_mtime)))
        assert not list((d / "new").iterdir()) and not list((d / "tmp").iterdir())
        out[name] = sorted(files, key=lambda x: x[0])
        out[name + "#uidvalidity"] = int(header[1][1:])
    return out


def decode_utf7(s):
    out, i = "", 0
    while i < len(s):
        if s[i] != "&":
            out += s[i]
            i += 1
            continue
        j = s.index("-", i)
        if j == i + 1:
            out += "&"
        else:
            b64 = s[i + 1:j].replace(",", "/")
            out += b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")
        i = j + 1
    return out


def test_maildir_import_export_round_trip(data):
    src = workdir(data, "Maildir")
    layout = build_maildir(src)
    r = data.cli("import", "maildir", DEMO_USER, src)
    total = sum(len(v) for v in FOLDERS.values())
    assert "%d messages imported" % total in r.stdout, r.stdout
    assert "import maildir: %d messages" % total in r.stderr, r.stderr

    boxes = mailboxes(data)
    for name, msgs in FOLDERS.items():
        assert name in boxes, boxes.keys()
        # New or empty mailboxes take the folder's UIDVALIDITY and UIDNEXT.
        assert boxes[name]["uidvalidity"] == FOLDER_UIDVALIDITY[name], name
        assert boxes[name]["uidnext"] == folder_uidnext(name), name
        listed = messages(data, name)
        # Stored in dovecot-uidlist order, under their UIDs, with their
        # flags, keywords, dates.
        want = sorted(layout[name].values())
        assert len(listed) == len(want)
        for m, (uid, letters, kws, raw, mtime) in zip(listed, want):
            assert m["uid"] == uid, name
            assert m["size"] == len(raw)
            assert set(m["flags"]) == expected_flags(letters, kws), (name, uid, m)
            assert m["internaldate"] == time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                      time.gmtime(mtime))
            assert show(data, m["uid"], name) == raw

    # Running it again imports nothing twice.
    r = data.cli("import", "maildir", DEMO_USER, src)
    assert "0 messages imported" in r.stdout and "%d already" % total in r.stdout, r.stdout
    assert len(messages(data)) == len(FOLDERS["INBOX"])

    # A '.' in a name must not become a level in Maildir++.
    data.cli("mailbox", "create", DEMO_USER, "Releases/v1.2")
    out = data.dir.parent / "export-maildir"
    j = jcli(data, "export", "maildir", DEMO_USER, out)
    assert j["messages"] == total and j["failed"] == 0
    exported = read_exported_maildir(out)
    for name, msgs in FOLDERS.items():
        got = exported[name]
        listed = messages(data, name)
        assert [g[0] for g in got] == [m["uid"] for m in listed]
        assert exported[name + "#uidvalidity"] == boxes[name]["uidvalidity"]
        want = sorted(layout[name].values())
        for g, (uid, letters, kws, raw, mtime) in zip(got, want):
            assert g[2] == raw, name            # byte for byte
            assert g[1] == expected_flags(letters, kws)
            assert g[3] == mtime
    # UIDVALIDITY, UIDNEXT and every UID survive import and export.
    for name in FOLDERS:
        assert read_uidlist(folder_dir(out, name)) == read_uidlist(folder_dir(src, name))
    # Folder names are written as Dovecot writes them.
    names = {d.name for d in out.iterdir() if d.name.startswith(".")}
    assert ".&AMk-t&AOk- &- co.Caf&AOk-" in names, names
    assert ".Archive.2023" in names
    assert ".Releases.v1&AC4-2" in names

    # And the export imports back into another account: same messages, same
    # UIDs, same UIDVALIDITY.
    data.add_account("copy@example.test", "pw")
    r = data.cli("import", "maildir", "copy@example.test", out)
    assert "new UIDs" not in r.stderr, r.stderr
    copy_boxes = {m["name"]: m for m in jcli(data, "mailbox", "list",
                                              "copy@example.test")["mailboxes"]}
    for name in FOLDERS:
        mine = [(m["uid"], m["size"], sorted(m["flags"]), m["internaldate"])
                for m in messages(data, name)]
        copy = [(m["uid"], m["size"], sorted(m["flags"]), m["internaldate"])
                for m in jcli(data, "message", "list", "copy@example.test",
                              "--mailbox", name)["messages"]]
        assert copy == mine, name
        for k in ("uidvalidity", "uidnext"):
            assert copy_boxes[name][k] == boxes[name][k], (name, k)
    assert "Releases/v1.2" in copy_boxes and "Été & co/Café" in copy_boxes


def test_maildir_import_merge_gives_new_uids(data):
    """A mailbox that already has messages keeps its UIDVALIDITY: the
    imported messages get new UIDs, and the import says so. So does an
    import whose UIDs are taken (run again with --no-resume)."""
    src = workdir(data, "Maildir")
    build_maildir(src)
    mbox = workdir(data, "mbox") / "one"
    mbox.write_bytes(b"From x Mon Jan  1 10:00:00 2024\n" + msg(100) + b"\n")
    data.cli("import", "mbox", DEMO_USER, mbox)
    before = mailboxes(data)["INBOX"]
    r = data.cli("import", "maildir", DEMO_USER, src)
    assert re.search(r"mailbox INBOX already holds messages .*new UIDs", r.stderr), r.stderr
    boxes = mailboxes(data)
    assert boxes["INBOX"]["uidvalidity"] == before["uidvalidity"]
    uids = [m["uid"] for m in messages(data)]
    assert uids == list(range(1, len(FOLDERS["INBOX"]) + 2)), uids
    # The other folders were empty: theirs are kept.
    assert boxes["Sent"]["uidvalidity"] == FOLDER_UIDVALIDITY["Sent"]
    assert [m["uid"] for m in messages(data, "Sent")] == [3]

    r = data.cli("import", "maildir", DEMO_USER, src, "--no-resume")
    assert "mailbox Sent: UID 3 is taken" in r.stderr, r.stderr
    assert [m["uid"] for m in messages(data, "Sent")] == [3, 4]
    assert mailboxes(data)["Sent"]["uidvalidity"] == FOLDER_UIDVALIDITY["Sent"]


def test_maildir_refuses_non_maildir(data):
    d = workdir(data, "notmaildir")
    data.cli("import", "maildir", DEMO_USER, d, expect=1)
    data.cli("import", "maildir", DEMO_USER, d / "missing", expect=1)
    data.cli("import", "maildir", DEMO_USER, d, "--mailbox", "X", expect=2)


# ---------------------------------------------------------------- mbox

MBOX = (
    b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n"
    + msg(1, body="Hello.\n>From quoted once\n>>From quoted twice\nFrom\n").replace(
        b"Message-ID: <1@example.org>\n",
        b"Message-ID: <1@example.org>\nStatus: RO\n")
    + b"\n"
    b"From MAILER-DAEMON Tue Jan  2 11:30:00 2024\n"
    + msg(2, body="").replace(b"\n\n", b"\nX-Status: AF\n"
                              b"X-Keywords: $Forwarded project-x\n\n")
    + b"\n"
    b"From MAILER-DAEMON Wed Jan  3 12:00:00 2024\n"
    + msg(3, crlf=True, body="Line\r\n\r\n").replace(
        b"\r\n\r\n", b"\r\nStatus: RO\r\nX-Status: T\r\n\r\n", 1)
    + b"\n"
    b"From MAILER-DAEMON Thu Jan  4 13:00:00 2024\n"
    + msg(4, body="ends with a blank line\n\n")
    + b"\n"
)


def test_mbox_import_export_round_trip(data):
    src = workdir(data, "mbox") / "archive.mbox"
    src.write_bytes(MBOX)
    r = data.cli("import", "mbox", DEMO_USER, src, "--mailbox", "Old/2024")
    assert "4 messages imported" in r.stdout, r.stdout + r.stderr
    listed = messages(data, "Old/2024")
    assert [set(m["flags"]) for m in listed] == [
        {"\\Seen"}, {"\\Answered", "\\Flagged", "$Forwarded", "project-x"},
        {"\\Seen", "\\Draft"}, set()]
    assert [m["internaldate"] for m in listed] == [
        "2024-01-01T10:00:00Z", "2024-01-02T11:30:00Z", "2024-01-03T12:00:00Z",
        "2024-01-04T13:00:00Z"]
    # Stored without the mbox's own header fields, From_ lines unquoted.
    first = show(data, listed[0]["uid"], "Old/2024")
    assert b"Status:" not in first
    assert b"\nFrom quoted once\n>From quoted twice\nFrom\n" in first
    assert show(data, listed[3]["uid"], "Old/2024").endswith(b"blank line\n\n")

    out = data.dir.parent / "export-mbox"
    data.cli("export", "mbox", DEMO_USER, out)
    assert (out / "Old.sbd" / "2024").read_bytes() == MBOX   # byte for byte
    assert (out / "INBOX").read_bytes() == b""
    # Again: nothing new; with --no-resume: everything again.
    r = data.cli("import", "mbox", DEMO_USER, src, "--mailbox", "Old/2024")
    assert "0 messages imported" in r.stdout and "4 already imported" in r.stdout
    data.cli("import", "mbox", DEMO_USER, src, "--mailbox", "Old/2024", "--no-resume")
    assert len(messages(data, "Old/2024")) == 8
    # Into an existing non-empty directory: refused.
    data.cli("export", "mbox", DEMO_USER, out, expect=1)
    data.cli("export", "tar", DEMO_USER, out, expect=2)


def test_mbox_mboxo_and_other_writers(data):
    """An mboxo file (From in bodies unquoted where no blank line precedes),
    a From_ line with a time zone, Status elsewhere in the header."""
    src = workdir(data, "mbox") / "old"
    src.write_bytes(
        b"From alice@example.org Fri Mar  1 08:00:00 +0100 2019\n"
        b"Status: R\nSubject: one\n\nbody\nFrom here on, text\n\n"
        b"From bob@example.org Sat Mar  2 09:00:00 2019\n"
        b"Subject: two\nX-Status: F\n\nlast line without newline")
    data.cli("import", "mbox", DEMO_USER, src)
    listed = messages(data)
    assert len(listed) == 2
    assert listed[0]["internaldate"] == "2019-03-01T07:00:00Z"
    assert set(listed[0]["flags"]) == {"\\Seen"}
    assert set(listed[1]["flags"]) == {"\\Flagged"}
    assert show(data, listed[0]["uid"]) == b"Subject: one\n\nbody\nFrom here on, text\n"
    assert show(data, listed[1]["uid"]) == b"Subject: two\n\nlast line without newline"

    bad = workdir(data, "bad") / "x"
    bad.write_bytes(b"Subject: not an mbox\n\n")
    data.cli("import", "mbox", DEMO_USER, bad, expect=1)


def test_mbox_import_resumes_after_kill(data):
    n = 1500
    src = workdir(data, "big") / "big.mbox"
    with open(src, "wb") as f:
        for i in range(n):
            f.write(b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n")
            f.write(msg(i, body=("line %d\n" % i) * (i % 50)))
            f.write(b"\n")
    proc = subprocess.Popen([PETREL_BIN, "-c", str(data.conf), "import", "mbox",
                             DEMO_USER, str(src)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    # Killed once the first progress line is out: mid-stream.
    line = proc.stderr.readline()
    assert b"1000 messages" in line, line
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(messages(data))
    assert 1000 <= partial < n, partial

    r = data.cli("import", "mbox", DEMO_USER, src, timeout=300)
    listed = messages(data)
    subjects = [m["subject"] for m in listed]
    assert len(listed) == n, (len(listed), r.stdout)
    assert len(set(subjects)) == n          # no duplicates
    assert "already imported" in r.stdout
    m = re.search(r"(\d+) messages imported", r.stdout)
    assert partial + int(m.group(1)) == n, r.stdout
    # Each message is whole.
    for uid_i in (0, n // 2, n - 1):
        raw = show(data, listed[uid_i]["uid"])
        i = int(listed[uid_i]["subject"].split()[1])
        assert raw == msg(i, body=("line %d\n" % i) * (i % 50))



def test_import_settles_a_commit_the_journal_did_not_record(data):
    """Killed after the store committed a message but before the journal
    said so: the next run finds the message (size and SHA-256) instead of
    storing it twice."""
    src = workdir(data, "mbox") / "two"
    src.write_bytes(b"From x Mon Jan  1 10:00:00 2024\n" + msg(1) + b"\n"
                    b"From x Mon Jan  1 10:00:00 2024\n" + msg(2) + b"\n")
    data.cli("import", "mbox", DEMO_USER, src)
    journals = list((data.dir / "import").glob("*.journal"))
    assert len(journals) == 1
    lines = journals[0].read_text().splitlines(keepends=True)
    assert lines[-1].startswith("D ") and lines[-2].startswith("P "), lines
    journals[0].write_text("".join(lines[:-1]))
    r = data.cli("import", "mbox", DEMO_USER, src)
    assert "0 messages imported" in r.stdout and "2 already" in r.stdout, r.stdout
    assert len(messages(data)) == 2


# ---------------------------------------------------------------- accounts

def test_account_remove_deletes_mail(data):
    src = workdir(data, "mbox") / "m"
    src.write_bytes(b"From x Mon Jan  1 10:00:00 2024\n" + msg(1) + b"\n")
    data.add_account("gone@example.test", "pw")
    data.cli("import", "mbox", "gone@example.test", src)
    data.cli("mailbox", "create", "gone@example.test", "Keep")
    assert len(jcli(data, "message", "list", "gone@example.test")["messages"]) == 1
    r = data.cli("account", "remove", "gone@example.test")
    assert "removed" in r.stdout
    data.cli("message", "list", "gone@example.test", expect=1)
    # A new account of the same name starts empty.
    data.add_account("gone@example.test", "pw")
    assert jcli(data, "message", "list", "gone@example.test")["messages"] == []
    names = {m["name"] for m in jcli(data, "mailbox", "list",
                                      "gone@example.test")["mailboxes"]}
    assert "Keep" not in names
