"""Named crash points for the crash-safety and fault trials: ``REPLICAST_CRASH_AT=before_rename:3``.

When the variable is set, the process SIGKILLs itself the 3rd time it reaches the
point ``before_rename``. With a third field, ``before_dir_fsync:2:error``, the point
raises ``OSError(EIO)`` instead, the 2nd time it is reached and every time after
(a failing disk keeps failing). Unset (always, outside trials) a crash point costs one
dictionary look-up.
"""

from __future__ import annotations

import errno
import os
import signal
import threading

ENV = "REPLICAST_CRASH_AT"
POINTS = ("before_write", "before_fsync", "before_rename", "before_dir_fsync", "before_journal")
_counts: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL (or raise ``OSError(EIO)``) if ``$REPLICAST_CRASH_AT``
    names this point and count."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    nth, _, mode = rest.partition(":")
    with _lock:
        _counts[spec] = _counts.get(spec, 0) + 1
        count = _counts[spec]
    if mode == "error":
        if count >= int(nth or 1):
            raise OSError(errno.EIO, f"{os.strerror(errno.EIO)} (crash point {name})")
    elif count == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Forget how often each point was reached (a new trial in the same process)."""
    with _lock:
        _counts.clear()
