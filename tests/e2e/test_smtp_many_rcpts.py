"""A message for hundreds of local accounts is stored in all of them even
when the daemon may hold few descriptors: delivery opens a bounded number
of accounts at a time (DELIVERY_ACCOUNTS_AT_ONCE), not all at once."""
import re
import smtplib

from conftest import IO_TIMEOUT
from test_smtp_helpers import HOLD_QUEUE, inbox_count, message

ACCOUNTS = 300
NOFILE = 1024     # all at once would need ~6 per account


def test_many_local_recipients_low_descriptor_limit(petrel_factory):
    p = petrel_factory(config=HOLD_QUEUE, start=False)
    rcpts = ["m%d@example.test" % i for i in range(ACCOUNTS)]
    for a in rcpts:
        p.cli("account", "add", a)
    p.start(nofile=NOFILE)
    since = p.log_size()
    with smtplib.SMTP("127.0.0.1", p.ports["mx"], local_hostname="sender.test",
                      timeout=IO_TIMEOUT * 3) as s:
        refused = s.sendmail("sender@remote.test", rcpts,
                             message(subject="to many", to="list@example.test").encode())
    assert refused == {}
    line = p.wait_log(r"event=accepted .*rcpts=%d " % ACCOUNTS, since=since)
    assert re.search(r"stored=%d failed=0" % ACCOUNTS, line), line
    for a in (rcpts[0], rcpts[63], rcpts[64], rcpts[-1]):
        assert inbox_count(p, a) == 1, a
