"""Paths under a root: every relative path a sync touches is resolved and checked here.

A path that is absolute, contains ``..`` or resolves (through a symlink) outside
its root is refused with :class:`forecasting.errors.PathEscapeError`.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from forecasting.errors import ConfigError, PathEscapeError

_REMOTE = re.compile(r"^(?P<host>(?:[^@/:\s]+@)?[A-Za-z0-9_.\-]+|\[[0-9a-fA-F:]+\]):(?P<path>.*)$")


@dataclass(frozen=True)
class Endpoint:
    """A sync target: a local directory, or ``host:path`` reached over ssh."""

    path: str
    host: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.host is not None

    def __str__(self) -> str:
        return f"{self.host}:{self.path}" if self.host else self.path


def parse_endpoint(spec: str) -> Endpoint:
    """Split ``host:path`` from a local path (a path containing ``/`` before ``:`` is local).

    Args:
        spec: ``/srv/replica``, ``./replica``, ``db2:/srv/replica`` or ``user@db2:replica``.
    """
    if not spec:
        raise PathEscapeError("target: empty path; give a directory or host:path")
    if spec.startswith("-"):
        raise ConfigError(
            f"target {spec!r}: may not start with '-' (it would read as an option of rsync "
            f"or ssh); write ./{spec} for a local directory of that name"
        )
    match = _REMOTE.match(spec)
    if match and not spec.startswith(("/", "./", "../")) and not Path(spec).exists():
        return Endpoint(path=match["path"] or ".", host=match["host"])
    return Endpoint(path=spec)


def check_relative(rel: str | os.PathLike[str], *, what: str = "path") -> PurePosixPath:
    """Refuse absolute paths and ``..`` components; return the normalised relative path."""
    text = os.fspath(rel)
    pure = PurePosixPath(text)
    if not text or pure.is_absolute() or text.startswith("\\"):
        raise PathEscapeError(
            f"{what} {text!r}: absolute or empty paths are refused; "
            "give a path relative to the root"
        )
    if any(part == ".." for part in pure.parts):
        raise PathEscapeError(f"{what} {text!r}: '..' components are refused (path escape)")
    return pure


def resolve_under(
    root: str | os.PathLike[str], rel: str | os.PathLike[str], *, what: str = "path"
) -> Path:
    """Resolve ``rel`` under ``root``, following symlinks, and refuse anything outside ``root``.

    Args:
        root: the directory the path must stay under.
        rel: a relative path (POSIX separators).
        what: how to name the path in the error message (``"segment"``, ``"file"``...).

    Returns:
        The absolute path (not required to exist).

    Raises:
        PathEscapeError: ``rel`` is absolute, contains ``..``, a symlink leads out of ``root``
            or symlinks form a loop.
    """
    pure = check_relative(rel, what=what)
    try:
        base = Path(root).resolve()
        resolved = (base / pure).resolve()
    except RuntimeError as exc:  # pathlib's "Symlink loop from '...'"
        raise PathEscapeError(
            f"{what} {os.fspath(rel)!r}: symlink loop ({exc}); remove or fix the link"
        ) from exc
    if resolved != base and not resolved.is_relative_to(base):
        raise PathEscapeError(
            f"{what} {os.fspath(rel)!r}: resolves to {resolved}, outside the root {base} "
            "(a symlink escapes); remove the link or sync its real directory"
        )
    return resolved


def real_path(path: str | os.PathLike[str], *, what: str = "path") -> Path:
    """``path`` with its symlinks resolved (need not exist); a loop is a PathEscapeError."""
    try:
        return Path(path).resolve()
    except RuntimeError as exc:  # pathlib's "Symlink loop from '...'"
        raise PathEscapeError(
            f"{what} {os.fspath(path)!r}: symlink loop ({exc}); remove or fix the link"
        ) from exc


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (not following its last component) lies strictly under ``root``."""
    base = Path(root).resolve()
    candidate = Path(path)
    parent = candidate.parent.resolve()
    full = parent / candidate.name
    return full != base and (parent == base or parent.is_relative_to(base))


class Resolver:
    """:func:`resolve_under` for many paths below one root, caching resolved directories.

    Each call costs one ``lstat`` of the last component (a symlink there is resolved
    and checked in full); the directories above it are resolved once per run. Plain
    relative paths (no ``.`` component, no empty one) are split as strings, without pathlib.
    """

    def __init__(self, root: str | os.PathLike[str], *, what: str = "path") -> None:
        self.root = real_path(root, what=what)
        self.what = what
        self._dirs: dict[str, str] = {"": str(self.root), ".": str(self.root)}

    def __call__(self, rel: str) -> Path:
        return Path(self.locate(rel)[0])

    def locate(self, rel: str) -> tuple[str, os.stat_result | None]:
        """The resolved path of ``rel`` and its ``lstat`` (None when absent), in one ``lstat``."""
        if _plain(rel):
            parent, _, name = rel.rpartition("/")
        else:
            pure = check_relative(rel, what=self.what)
            parent, name = pure.parent.as_posix(), pure.name
        base = self._dirs.get(parent)
        if base is None:
            base = self._dir(parent)
        full = f"{base}/{name}"
        st = _lstat(full)
        if st is not None and stat.S_ISLNK(st.st_mode):
            resolved = resolve_under(self.root, rel, what=self.what)
            return str(resolved), _lstat(resolved)
        return full, st

    def _dir(self, parent: str) -> str:
        """The resolved directory ``parent``: below an already resolved directory, a component
        that is not a symlink is appended as it is (one ``lstat``); a symlink, or a path that
        is not plain, goes through :func:`resolve_under`."""
        above, _, name = parent.rpartition("/")
        if _plain(parent):
            up = self._dirs.get(above) or self._dir(above)
            st = _lstat(f"{up}/{name}")
            if st is None or not stat.S_ISLNK(st.st_mode):
                self._dirs[parent] = f"{up}/{name}"
                return self._dirs[parent]
        base = str(resolve_under(self.root, parent, what=self.what))
        self._dirs[parent] = base
        return base


def _plain(rel: str) -> bool:
    """No ``.``, ``..`` or empty component, no leading ``.`` or slash: the common case."""
    return (
        bool(rel)
        and not rel.startswith(("/", "\\", "."))
        and "/." not in rel
        and "//" not in rel
        and not rel.endswith("/")
    )


def _lstat(path: str | os.PathLike[str]) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
