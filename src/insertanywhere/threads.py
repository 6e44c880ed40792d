"""Thread helpers shared by the stages that overlap work on background threads."""

from __future__ import annotations

import contextlib
import os
import sys
import threading


def lower_thread_priority() -> None:
    """Run the calling thread at a lower scheduling priority (Linux: threads are scheduled entities with their
    own nice value; elsewhere a no-op).

    Background work (the scene's save, the full-resolution flows) then takes the cores the foreground loop
    leaves idle instead of slowing it: on 2 cores the scene's save had cost the mask stage 0.7 s of its 3.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
