"""What the commands print: the consoles, progress bars, number formats and JSON files.

Tables go to :data:`console` (stdout), progress bars and errors to :data:`err_console`
(stderr), so a command's output stays clean when redirected. Rich resolves
``sys.stdout``/``sys.stderr`` when it writes, so test runners that swap them see it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from forecasting import jsonio

console = Console()
err_console = Console(stderr=True)


def progress(*, bytes: bool = False, disable: bool = False) -> Progress:
    """A transient progress bar on stderr; update each task's description, completed, total.

    Args:
        bytes: the tasks count bytes: show size done, rate and time left instead of
            done/total and time elapsed.
        disable: show nothing (the bar still accepts updates).
    """
    columns: tuple[ProgressColumn, ...]
    if bytes:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
    else:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
    return Progress(*columns, console=err_console, transient=True, disable=disable)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: ``digits`` decimals, whole numbers without, 5+ digits as ``%.4g``;
    ``-`` for missing, non-numeric or non-finite values."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(number):
        return "-"
    if abs(number) >= 1e5:
        return f"{number:.4g}"
    return f"{int(number)}" if number.is_integer() else f"{number:.{digits}f}"


def human_bytes(n: float) -> str:
    """``n`` bytes in binary units: ``512 B``, ``1.5 MiB``, ``2.0 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` as JSON (atomic; NaN as null) and say so."""
    jsonio.write_json(path, value)
    console.print(f"wrote {path}")
