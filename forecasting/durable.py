"""Durability primitives: the one atomic writer every writer of a file uses (no heavy imports).

A writer writes to a temp file beside the target, fsyncs it, renames it over the target
and fsyncs the directory, so a crash at any moment leaves the old file or the new one,
never half of each, and the rename survives a power loss.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Literal, overload

#: Suffix of the temp files of :func:`atomic_write` (a killed writer leaves them behind).
TMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    """fsync a directory so that a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(path: Path) -> None:
    """Create ``path`` and its missing parents, fsyncing each parent that got a new entry."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_dir(created.parent)


def temp_path(path: Path) -> Path:
    """A unique hidden temp name beside ``path`` (same directory, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")


@overload
def atomic_write(path: Path, mode: Literal["wb"] = ...) -> AbstractContextManager[IO[bytes]]: ...
@overload
def atomic_write(path: Path, mode: Literal["w"]) -> AbstractContextManager[IO[str]]: ...


@contextmanager
def atomic_write(path: Path, mode: Literal["wb", "w"] = "wb") -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on a clean exit fsync it, rename it over ``path``
    and fsync the directory. On an error the temp file is removed and ``path`` is untouched.

    Example::

        with atomic_write(path, "w") as fh:
            fh.write(text)
    """
    make_dirs_durable(path.parent)
    tmp = temp_path(path)
    try:
        with open(tmp, mode, encoding="utf-8" if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
