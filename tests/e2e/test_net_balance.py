"""Connections are shared evenly by the I/O threads (src/net/server.c): the
kernel's SO_REUSEPORT hashing alone often gives one thread most of a few
long connections (10 POP3 clients split 7 to 3)."""
import re
from collections import Counter

import pytest

from conftest import LineClient


@pytest.mark.parametrize("threads", [2, 3])
def test_connections_spread_over_io_threads(petrel_factory, threads):
    p = petrel_factory(config={"io_threads": str(threads)})
    since = p.log_size()
    conns = []
    try:
        for _ in range(24):
            c = p.connect("pop3")
            assert c.readline().startswith("+OK")
            conns.append(c)
        lines = [l for l in p.log(since).splitlines() if "event=connect " in l]
        per = Counter(re.search(r" io=(\d+)", l).group(1) for l in lines)
        assert sum(per.values()) == 24, lines
        assert len(per) == threads, per
        assert max(per.values()) - min(per.values()) <= 1, per
    finally:
        for c in conns:
            c.close()
