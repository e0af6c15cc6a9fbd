"""`kill -USR1 <server pid>` writes every thread's Python stack to the server's stderr (its log).

Why: a session whose page never shows its content, while others on the same server do, leaves nothing in the
log; the stacks say whether its script run is stuck, and where. Imported once per server process by main.py
(a module's body runs once), so the handler is installed once; faulthandler writes from C, so it works even
when every Python thread is blocked.
"""
from __future__ import annotations

import faulthandler
import signal
import sys

if hasattr(signal, "SIGUSR1"):  # not on Windows
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
