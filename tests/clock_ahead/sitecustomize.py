"""Run this Python process with its wall clock ahead (scripts/test-future puts it on PYTHONPATH).

Python imports ``sitecustomize`` at start-up, so pytest, its xdist workers and every
gateway, mock and CLI process the tests start see the same future date. Only the wall
clock moves (``time.time``, ``datetime.now``, ...): the monotonic clock, which timeouts
and deadlines use, is left alone. Redis and PostgreSQL keep the real clock, so nothing
may depend on the gateway's clock agreeing with theirs either.
"""

import os
import time

import time_machine

_AHEAD_DAYS = float(os.environ.get("TEST_CLOCK_AHEAD_DAYS", "365"))
time_machine.travel(time.time() + _AHEAD_DAYS * 86400, tick=True).start()
# A ticking traveller starts its clock at the first reading, not at start(): read it now,
# so every process runs the same distance ahead (a late first reading would lag behind).
time.time()
