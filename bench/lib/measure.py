"""What bench/run reads from the kernel: CPU time and memory of a server's
process trees (from /proc), and the disk's fsync rate."""
import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, cstime field 17.
    return {"ppid": int(fields[1]), "utime": int(fields[11]), "stime": int(fields[12]),
            "cutime": int(fields[13]), "cstime": int(fields[14]), "state": fields[0]}


def _all():
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                procs[int(name)] = _stat(int(name))
            except (OSError, ValueError, IndexError):
                pass
    return procs


def tree(roots, procs=None):
    """The PIDs of roots and all their descendants."""
    procs = procs if procs is not None else _all()
    children = {}
    for pid, st in procs.items():
        children.setdefault(st["ppid"], []).append(pid)
    out, todo = [], [r for r in roots if r in procs]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(roots):
    """CPU time (user + system) of the trees under roots, including the
    children they have already reaped (cutime + cstime): a process that
    lived and exited between two readings is still counted, through the
    parent that waited for it."""
    procs = _all()
    total = 0
    for pid in tree(roots, procs):
        st = procs[pid]
        total += st["utime"] + st["stime"] + st["cutime"] + st["cstime"]
    return total / CLK_TCK


def memory_kib(roots):
    """(PSS, RSS) in KiB summed over the trees under roots. PSS divides each
    shared page among the processes mapping it, so the sum over many forked
    processes is not inflated by shared libraries; RSS counts them again in
    every process."""
    pss = rss = 0
    for pid in tree(roots):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            pass
    return pss, rss


def nprocs(roots):
    return len(tree(roots))


def fsync_rate(directory, seconds=3.0, max_files=20000):
    """Creates 4 KiB files, each written and fsynced, for `seconds`: fsyncs/s.
    A second pass also fsyncs the directory after each file (what a durable
    file creation costs: data, then the directory entry)."""
    os.makedirs(directory, exist_ok=True)
    buf = b"x" * 4096
    results = {}
    for mode in ("file", "file+dir"):
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        n = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds and n < max_files:
            path = os.path.join(directory, f"{mode}-{n}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, buf)
            os.fsync(fd)
            os.close(fd)
            if mode == "file+dir":
                os.fsync(dfd)
            n += 1
        results[mode] = n / (time.monotonic() - start)
        os.close(dfd)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    return results
