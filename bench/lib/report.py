"""Turns bench/run's results into a Markdown section and one PNG per scenario."""
import json
import os
import re
import subprocess

BEGIN = "<!-- bench/run: begin (generated; edit bench/lib/report.py instead) -->"
END = "<!-- bench/run: end -->"

# The figures of each kind of scenario: (key, label, higher is better, per-op key)
FIGURES = {
    "smtp": [("msgs_per_s", "messages/s delivered to mailboxes", True),
             ("mb_per_s", "MB/s", True),
             ("cpu_ms_per_op", "CPU ms per message", False)],
    "drain": [("msgs_per_s", "messages/s relayed", True),
              ("cpu_ms_per_op", "CPU ms per message", False)],
    "pop3": [("unit_per_s", "messages/s downloaded (RETR)", True),
             ("mb_per_s", "MB/s", True),
             ("op:retr:p50_ms", "RETR p50 ms", False),
             ("op:retr:p99_ms", "RETR p99 ms", False),
             ("op:login:p50_ms", "USER+PASS p50 ms", False),
             ("cpu_ms_per_op", "CPU ms per message", False)],
    "pop3-delete": [("msgs_per_s", "messages/s downloaded and deleted", True),
                    ("mb_per_s", "MB/s", True),
                    ("op:dele:p50_ms", "DELE p50 ms", False),
                    ("op:quit:p50_ms", "QUIT (commits the deletions) p50 ms", False),
                    ("cpu_ms_per_op", "CPU ms per message", False)],
    "imap-mix": [("ops_per_s", "commands/s", True),
                 ("sessions_per_s", "sessions/s", True),
                 ("mb_per_s", "MB/s", True),
                 ("op:login:p50_ms", "LOGIN p50 ms", False),
                 ("op:fetch_body:p50_ms", "FETCH BODY[] p50 ms", False),
                 ("op:fetch_body:p99_ms", "FETCH BODY[] p99 ms", False),
                 ("op:append:p50_ms", "APPEND p50 ms", False),
                 ("op:append:p99_ms", "APPEND p99 ms", False),
                 ("op:expunge:p50_ms", "EXPUNGE p50 ms", False),
                 ("cpu_ms_per_op", "CPU ms per command", False)],
    "imap-login": [("unit_per_s", "logins/s (TLS connect + LOGIN + LOGOUT)", True),
                   ("op:connect:p50_ms", "TLS connect + greeting p50 ms", False),
                   ("op:login:p50_ms", "LOGIN p50 ms", False),
                   ("op:login:p99_ms", "LOGIN p99 ms", False),
                   ("cpu_ms_per_op", "CPU ms per login", False)],
    "imap-10k": [("bodies_per_s", "bodies/s (FETCH BODY.PEEK[])", True),
                 ("body_mb_per_s", "MB/s of bodies", True),
                 ("mb_per_s", "MB/s over the wire (both ways)", True),
                 ("sessions_per_s", "sessions/s", True),
                 ("op:session:p50_ms", "session p50 ms (connect to LOGOUT)", False),
                 ("op:session:p99_ms", "session p99 ms", False),
                 ("op:select:p50_ms", "SELECT p50 ms", False),
                 ("op:fetch_flags:p50_ms", "FETCH 1:* (FLAGS) p50 ms", False),
                 ("op:fetch_body:p50_ms", "FETCH BODY.PEEK[] p50 ms", False),
                 ("cpu_ms_per_op", "CPU ms per session", False)],
    "idle": [("kib_per_conn", "KiB per idle connection (PSS)", False),
             ("rss_kib_per_conn", "KiB per idle connection (RSS)", False),
             ("conn_per_s", "connections/s while opening", True),
             ("cpu_ms_per_op", "CPU ms per connection opened", False),
             ("processes", "server processes while held", False)],
}

UNITS = {"smtp": "messages", "drain": "messages", "pop3": "RETR",
         "pop3-delete": "messages",
         "imap-mix": "commands", "imap-login": "logins", "imap-10k": "sessions",
         "idle": "connections"}


def value(median, key):
    if median is None:
        return None
    if key.startswith("op:"):
        _, op, k = key.split(":")
        return median.get("per_op", {}).get(op, {}).get(k)
    return median.get(key)


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def brief(sc, r):
    key, label, _ = FIGURES[sc["kind"]][0]
    cpu = r.get("cpu_ms_per_op")
    return f"{label} {fmt(value(r, key))}" + (f", CPU ms/op {fmt(cpu)}" if cpu else "")


def cell(st, key):
    if st["status"] == "unsupported":
        return "not supported yet"
    if st["status"] == "failed":
        return "failed"
    return fmt(value(st.get("median"), key))


def ratio(stack, petrel, key, higher):
    a = value(stack.get("median"), key) if stack["status"] == "ok" else None
    b = value(petrel.get("median"), key) if petrel["status"] == "ok" else None
    if a is None or b is None or a == 0:
        return "—"
    r = b / a
    better = (r > 1) == higher if abs(r - 1) >= 0.02 else None
    mark = "" if better is None else (" (better)" if better else " (worse)")
    return f"{r:.2f}×{mark}"


def chart(sc, res, path):
    """Two panels: the scenario's first figure and its CPU cost."""
    figs = FIGURES[sc["kind"]]
    panels = [figs[0], next(f for f in figs if f[0] == "cpu_ms_per_op")]
    script = [
        "set terminal pngcairo size 900,380 font 'Sans,10'",
        f"set output '{path}'",
        f"set multiplot layout 1,2 title \"{sc['title']}\" font 'Sans,12'",
        "set style fill solid 0.85 border -1", "set boxwidth 0.55",
        "set yrange [0:*]", "set grid ytics", "unset key", "set xrange [-0.6:1.6]",
        "set offsets 0,0,graph 0.12,0",
    ]
    for i, (key, label, higher) in enumerate(panels):
        rows = []
        for j, name in enumerate(("stack", "petrel")):
            st = res[name]
            v = value(st.get("median"), key) if st["status"] == "ok" else None
            text = fmt(v) if v is not None else ("not supported yet"
                                                  if st["status"] == "unsupported"
                                                  else "failed")
            color = "0x4c72b0" if name == "stack" else "0xdd8452"
            lab = "Postfix+Dovecot" if name == "stack" else "Petrel"
            rows.append(f"{j} \"{lab}\" {v if v is not None else 0} {color} \"{text}\"")
        better = "higher is better" if higher else "lower is better"
        script += [f"$d{i} << EOD", *rows, "EOD",
                   f"set title \"{label}\\n({better})\"",
                   f"plot $d{i} using 1:3:4:xtic(2) with boxes lc rgb variable, "
                   f"'' using 1:3:5 with labels offset 0,0.8"]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True,
                   capture_output=True)


METHOD = """\
### How each figure is measured

- **Servers.** Postfix + Dovecot is the stack Petrel replaces: Postfix
  (its own `main.cf`/`master.cf`, queue and data directories in the work
  directory, `postfix -c DIR start`) accepts SMTP and hands each message to
  Dovecot over LMTP (a Unix socket); Dovecot stores it in Maildir and serves
  IMAP and POP3 (`dovecot -c FILE`, everything under the work directory).
  Durability settings are the shipped ones on both sides (Postfix fsyncs the
  queue file before its `250`; Dovecot's `mail_fsync = optimized`). For the
  idle tests Dovecot runs its login processes in high-performance mode and
  hibernates IDLE sessions (`imap_hibernate_timeout = 5s`), as its
  documentation advises for many IDLE clients, and the run raises
  `fs.inotify.max_user_instances` (restored afterwards), since all mailboxes
  belong to one system user. Petrel is `petrel init` in the work directory,
  `max_connections` raised to 20,000. Both have the same 10,000 accounts
  (one passwd-file, SHA512-CRYPT hashes, imported into Petrel with `petrel
  import passwd-file`) and the same RSA certificate. Users 1–50 hold 20
  messages each (2–100 KiB), delivered over SMTP before the scenarios run.
- **Order.** Each scenario runs against Postfix+Dovecot, then Petrel, then
  again, for the number of rounds shown (A B A B …); each figure is the
  median over the rounds. Before each round the server under test is left
  until its processes use less than 3 % of a core over a second (at most
  300 s): work an earlier scenario left in the background (Petrel indexes
  new mail's text once it has stopped arriving for 30 s) is not measured in
  a later one. The wait and the CPU it took are in results.json
  (`settle_s`, `settle_cpu_s`).
- **SMTP ingest.** Postfix's `smtp-source` (1, 20 or 100 parallel sessions,
  one message per connection, split over up to 10 processes each with its own
  recipient among 10 mailboxes) sends the messages in plain SMTP to port 25's
  equivalent. The clock stops when every message is in its mailbox: for
  Petrel at the last `250` (delivery is inside the SMTP transaction); for
  Postfix when its queue is empty (delivered through LMTP), then the
  mailboxes' message counts are checked. "messages/s" is messages over that
  time; MB/s counts the message bodies.
- **Queue drain.** 20 `smtp-source` sessions queue the messages for
  `remote.test` while delivery is held back, then the clock runs from the
  flush to an empty queue, every message received by `smtp-sink` (its
  counters are checked). Postfix relays from `mynetworks` with the `relay`
  transport deferred (`defer_transports`), then `postqueue -f`. Petrel
  takes them for forwarders (`fwdN@bench.test` → `sinkN@remote.test`, as
  aliases) with its relay host (`queue_relayhost`) on a closed port, then
  restarts with smtp-sink as relay host, then `petrel queue flush`. Both
  deliver with their default connection limits and without TLS (smtp-sink
  offers none).
- **POP3 download.** 10 clients over implicit TLS, each looping USER, PASS,
  STAT, LIST, RETR of all 20 messages, QUIT (nothing deleted).
- **POP3 download and delete.** Before each round, users 3001–3010 get
  the same 2,000 messages each (2–100 KiB) over SMTP on both servers; then 10
  clients over implicit TLS, one per user, each USER, PASS, STAT, LIST, RETR
  and DELE of every message, QUIT. The clock stops when every QUIT has its
  `+OK` (the deletions are committed at QUIT); a second login per user must
  then see `STAT` 0. MB/s counts the bytes over the wire.
- **IMAP session mix.** N clients over implicit TLS, each its own user,
  looping: LOGIN, SELECT INBOX, FETCH 1:* (FLAGS), five FETCH BODY.PEEK[] of
  random messages, STORE ±FLAGS (\\Flagged), APPEND of 4 KiB, UID STORE
  +FLAGS (\\Deleted) on it, EXPUNGE, LOGOUT. "commands/s" counts every
  command (not the connect).
- **IMAP 10,000-message INBOX** (issue 7). One account (user 7001) whose
  INBOX holds 10,000 messages, 2–100 KiB (2 KiB × 50^(u²) for uniform u:
  median about 5 KiB, mean about 15 KiB, 155 MB in all; the larger ones a
  short text and a base64 attachment), most `\\Seen`, some `\\Answered`,
  `\\Flagged` or `$Forwarded`. They are written as a Maildir into Dovecot's
  mail location (file names as Dovecot's deliveries write them), indexed by
  one Dovecot session, and that Maildir is imported into Petrel (`petrel
  import maildir`, which keeps Dovecot's UIDs, flags and dates): the same
  bytes in the same order on both. One unmeasured session on each before
  the rounds. 10 or 50 clients over implicit TLS, all logged in as that
  account, each looping: connect, LOGIN, SELECT INBOX, FETCH 1:* (FLAGS)
  (exactly 10,000 FETCH responses), 10 × FETCH n (BODY.PEEK[]) of random
  messages (each one literal whose size matches the size the message states
  in its `X-Bench-Size` header), LOGOUT. "bodies/s" counts those FETCHes;
  "MB/s of bodies" their literals; session time runs from connect to the
  LOGOUT's OK. Dovecot's `mail_max_userip_connections` is raised to 100
  for the 50 clients; its index and Petrel's are warm (no restart).
- **IMAP login rate.** 10 clients looping TLS connect, LOGIN, LOGOUT over
  200 users. Both
  servers run with their defaults: Dovecot checks the SHA512-CRYPT hash at
  every login (its auth cache is off by default); Petrel checks Argon2id
  and remembers a successful check for 60 s (`auth_cache_ttl`).
- **Warm-up.** Before the scenarios, every user a scenario logs in as logs
  in once on each server, unmeasured: Petrel replaces an imported hash with
  Argon2id (and derives its SCRAM keys) at a user's first login, a one-time
  cost that is not its steady state.
- **Idle connections.** N connections over implicit TLS (8 or 16 opener
  threads; opening stops after 75 s, and a server that could not take all N
  by then is measured with those it holds, which the notes say), 10 per user (N/10 users: a user's devices and folders), each
  LOGIN, SELECT INBOX, IDLE, held. Each round restarts the server and
  logs in 20 times before the baseline reading (memory freed by an earlier
  round stays with the processes and would hide the growth). The memory
  figure is the growth of
  the summed PSS (proportional set size, from `/proc/PID/smaps_rollup`) of
  all the server's processes between before the first connection and 7 s
  after the last, divided by N; RSS is shown too (it counts shared pages
  once per process, so it overstates a multi-process server). At the end
  every connection is checked to be still open.
- **Every response is checked** by the load generator (`bench-loadgen`,
  C, in `bench/loadgen/`): an IMAP command must end in a tagged `OK`, a POP3
  one in `+OK`, `smtp-source` must exit 0; any error fails that server's
  scenario (shown as "failed"), it is never counted as work.
- **Latency** p50/p99 are over every operation of every round's clients
  (medians of the per-round figures).
- **CPU per operation** is the user + system time of all the server's
  processes over the measured interval, from `/proc/PID/stat` (utime + stime
  of every live process of the server's process trees, plus cutime + cstime,
  the time of the children they reaped: processes forked and gone during the
  run count too), divided by the operations. The load generator,
  `smtp-source` and `smtp-sink` are not included. For the SMTP scenarios the
  stack is Postfix and Dovecot (delivery); for IMAP and POP3, Dovecot.
- **Scenarios Petrel cannot run yet** are probed with a one-operation run
  and shown as "not supported yet", with the server's answer below the table.
"""


def limits_md(results):
    out = ["### Physical limits of this machine", ""]
    fs = results.get("fsync", {})
    if fs:
        out.append(f"- **fsync rate**: {fmt(fs.get('file'))} fsync/s writing and "
                   f"fsyncing 4 KiB files one after another; {fmt(fs.get('file+dir'))}/s "
                   "when the directory is fsynced too (a durable file creation). A server "
                   "that fsyncs once per message, one message at a time, cannot ingest "
                   "faster than this; group commit and concurrency are the way past it.")
    ceil = results.get("ceiling", {})
    if ceil:
        out.append("- **SMTP ceiling** (`smtp-source` into `smtp-sink`, which stores "
                   "nothing), same clients and sizes as the ingest scenarios:")
        out.append("")
        out.append("  | scenario | messages/s | MB/s |")
        out.append("  |---|---|---|")
        for name, c in ceil.items():
            if c["status"] == "ok":
                m = c["median"]
                out.append(f"  | {name} | {fmt(m['msgs_per_s'])} | {fmt(m['mb_per_s'])} |")
            else:
                out.append(f"  | {name} | failed: {c.get('reason', '')} | |")
    out.append("")
    return out


def section(results, scenarios, chart_dir_rel):
    m = results["machine"]
    v = results.get("versions", {})
    la = results.get("load_before", [0, 0, 0])
    lb = results.get("load_after", [0, 0, 0])
    lines = [BEGIN, "", "## Petrel beside Postfix + Dovecot (`bench/run`)", ""]
    if results["quick"]:
        lines += ["**Quick mode (smoke test): these figures are not measurements.**", ""]
    lines += [
        f"- **Date**: {results['date']}; {results['rounds']} rounds, medians.",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['mem_mib']:,} MiB RAM, "
        f"Linux {m['kernel']}, Debian {m['debian']}, work directory on "
        f"{' '.join(m['fs'].split())}.",
        f"- **Load average** (1/5/15 min) before: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; "
        f"after: {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f} (other work on the machine "
        "shows here and makes figures noisier).",
        f"- **Versions**: {v.get('petrel', '?')} (commit {m['petrel_commit']}); "
        f"{v.get('stack', '?')}; {m['openssl']}.",
        "- **Reproduce**: `sudo bench/run` (about 20 minutes); `bench/run --quick` to "
        "smoke-test; `bench/run SCENARIO...` for some.",
        "",
    ]
    if results.get("dovecot_tuned"):
        lines[-1:-1] = ["- **Dovecot tuned** (`--dovecot-tuned`), not its defaults: "
                        "`auth_cache_size = 10M`, and `service imap` with "
                        "`service_count = 1000`, `process_min_avail = 4`."]
    lines += limits_md(results)
    lines += ["### Results", "",
              "Ratio = Petrel ÷ Postfix+Dovecot; \"(better)\" or \"(worse)\" says which "
              "way it goes for that figure.", "",
              "| scenario | figure | Postfix+Dovecot | Petrel | ratio |",
              "|---|---|---|---|---|"]
    notes = []
    for sc in scenarios:
        res = results["scenarios"].get(sc["name"])
        if res is None:
            continue
        for key, label, higher in FIGURES[sc["kind"]]:
            lines.append(f"| {sc['title']} | {label} | {cell(res['stack'], key)} | "
                         f"{cell(res['petrel'], key)} | "
                         f"{ratio(res['stack'], res['petrel'], key, higher)} |")
        if res.get("note"):  # e.g. measured in a separate run, merged in
            notes.append(f"- {sc['title']}: {res['note']}.")
        for name, lab in (("stack", "Postfix+Dovecot"), ("petrel", "Petrel")):
            st = res[name]
            if st["status"] != "ok":
                word = "not supported yet" if st["status"] == "unsupported" else "failed"
                notes.append(f"- {sc['title']}: {lab} {word}: `{st.get('reason', '')}`")
            if st.get("note"):
                notes.append(f"- {sc['title']}: {lab}: {st['note']}.")
    lines.append("")
    if notes:
        lines += ["Notes:", "", *notes, ""]
    lines += ["### Charts", ""]
    for sc in scenarios:
        if sc["name"] in results["scenarios"]:
            lines.append(f"![{sc['title']}]({chart_dir_rel}/{sc['name']}.png)")
    lines += ["", METHOD, END, ""]
    return "\n".join(lines)


def write(results, scenarios, work, root, to_docs):
    if to_docs:
        md_path = os.path.join(root, "docs", "BENCHMARKS.md")
        chart_dir = os.path.join(root, "docs", "bench")
        rel = "bench"
    else:
        out = os.path.join(work, "report")
        os.makedirs(out, exist_ok=True)
        md_path = os.path.join(out, "BENCHMARKS.md")
        chart_dir = os.path.join(out, "bench")
        rel = "bench"
    os.makedirs(chart_dir, exist_ok=True)
    with open(os.path.join(chart_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    for sc in scenarios:
        res = results["scenarios"].get(sc["name"])
        if res is not None:
            try:
                chart(sc, res, os.path.join(chart_dir, sc["name"] + ".png"))
            except (OSError, subprocess.CalledProcessError) as e:
                print(f"bench: chart {sc['name']}: {e}")
    text = section(results, scenarios, rel)
    old = open(md_path).read() if os.path.exists(md_path) else "# Benchmarks\n"
    if BEGIN in old and END in old:
        new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END) + "\n?",
                     lambda _: text, old, flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    with open(md_path, "w") as f:
        f.write(new)
