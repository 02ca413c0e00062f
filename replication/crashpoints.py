"""Named crash points for the crash-safety trials: ``REPLICAST_CRASH_AT=before_rename:3``.

When the variable is set, the process SIGKILLs itself the 3rd time it reaches the
point ``before_rename``. Unset (always, outside trials) a crash point costs one
dictionary look-up.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "REPLICAST_CRASH_AT"
POINTS = ("before_write", "before_fsync", "before_rename", "before_dir_fsync", "before_journal")
_counts: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``$REPLICAST_CRASH_AT`` names this point and count."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        hit = _counts[name] == int(nth or 1)
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
