"""Named sync endpoints: the only places an HTTP sync run may read from or write to.

Settings declare them (``[sync.endpoints.<name>]``); a request names them and never
carries a path or a host. An endpoint is a local directory or ``host:/path`` (rsync
over ssh). None may be, contain or lie inside replicast's own state (the data dir,
the lake, the MLflow store, the model artifacts): :meth:`SyncConfig.check` refuses it.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forecasting.errors import ConfigError

EndpointRole = Literal["source", "target", "both"]

#: Endpoint names: what HTTP requests and settings keys may use.
ENDPOINT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME_RE = re.compile(ENDPOINT_NAME)
_REMOTE_RE = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})@)?"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?P<path>.*)$"
)
_REMOTE_PATH_RE = re.compile(r"^[A-Za-z0-9._/+=,@%~-]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class SyncEndpoint(BaseModel):
    """One place sync runs read from (source) or write to (target)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        description='absolute local directory, or "host:/absolute/path" (rsync over ssh)',
        examples=["/srv/db/segments", "replica-eu:/srv/db/segments"],
    )
    link: str | None = Field(
        default=None,
        description="fleet region whose link (bandwidth, RTT) reaches this endpoint",
    )
    role: EndpointRole = Field(
        default="source", description="source, target or both (a host:path is a target only)"
    )
    allow_delete: bool = Field(
        default=False, description="sync runs may delete files here that the source lacks"
    )

    @field_validator("path")
    @classmethod
    def _usable_path(cls, value: str) -> str:
        if not value.strip() or _CONTROL_RE.search(value):
            raise ValueError(f"{value!r}: empty or has control characters")
        if value.startswith(("/", "~")):
            local = os.path.expanduser(value)
            if not os.path.isabs(local):
                raise ValueError(f"{value!r}: must be an absolute directory")
            return os.path.normpath(local)
        match = _REMOTE_RE.match(value)
        if match is None:
            raise ValueError(
                f"{value!r}: give an absolute local directory or host:/absolute/path "
                "(host: letters, digits, '.', '-', optionally user@)"
            )
        remote = match["path"]
        if not remote.startswith("/"):
            raise ValueError(f"{value!r}: the remote path must be absolute (host:/path)")
        if ".." in remote.split("/"):
            raise ValueError(f"{value!r}: '..' is refused in the remote path")
        if not _REMOTE_PATH_RE.match(remote):
            raise ValueError(
                f"{value!r}: the remote path may use letters, digits and . _ / + = , @ % ~ - "
                "only (the remote shell would interpret anything else)"
            )
        user = f"{match['user']}@" if match["user"] else ""
        return f"{user}{match['host']}:{posixpath.normpath(remote)}"

    @model_validator(mode="after")
    def _role_fits(self) -> SyncEndpoint:
        if self.is_remote and self.role != "target":
            raise ValueError(
                f"role: {self.path!r} is host:path, so it can only be a target "
                '(role = "target"); sources are local directories'
            )
        if self.allow_delete and not self.is_target:
            raise ValueError('allow_delete: only a target endpoint (role "target" or "both")')
        return self

    def _split(self) -> tuple[str | None, str]:
        if self.path.startswith("/"):
            return None, self.path
        match = _REMOTE_RE.match(self.path)
        if match is None:  # unreachable: the validator normalised the path
            raise ValueError(f"{self.path!r} is not host:path")
        user = f"{match['user']}@" if match["user"] else ""
        return f"{user}{match['host']}", match["path"]

    @property
    def host(self) -> str | None:
        """The ssh host (``user@host``) of a ``host:path`` endpoint; None when local."""
        return self._split()[0]

    @property
    def is_remote(self) -> bool:
        return self.host is not None

    @property
    def remote_path(self) -> str:
        """The path part (the whole path of a local endpoint)."""
        return self._split()[1]

    @property
    def is_source(self) -> bool:
        return self.role in ("source", "both")

    @property
    def is_target(self) -> bool:
        return self.role in ("target", "both")

    def local_path(self) -> Path | None:
        """Where this endpoint is on this machine, resolved now (None: another host).

        A ``host:path`` whose host is this machine (``localhost``, a loopback address,
        this host's name) counts as local: it reaches the same files.

        Raises:
            ConfigError: the path is a symlink loop.
        """
        try:
            if self.host is None:
                return Path(self.path).resolve()
            if is_this_host(self.host.rsplit("@", 1)[-1]):
                return Path(self.remote_path).resolve()
        except RuntimeError as exc:  # pathlib's "Symlink loop from '...'"
            raise ConfigError(f"{self.path!r}: symlink loop ({exc}); fix the link") from exc
        return None


def is_this_host(host: str) -> bool:
    """Whether ssh to ``host`` reaches this machine (loopback, unspecified, its own name)."""
    bare = host.strip("[]").lower().rstrip(".")
    own = socket.gethostname().lower()  # no DNS lookup: settings load stays offline
    if bare in _LOOPBACK_NAMES or bare.endswith(".localhost") or bare == own:
        return True
    if bare == own.split(".")[0] or bare.split(".")[0] == own:
        return True
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        try:  # the short and numeric forms ssh also accepts: 127.1, 2130706433
            ip = ipaddress.ip_address(socket.inet_aton(bare))
        except OSError:
            return False
    return ip.is_loopback or ip.is_unspecified


class SyncConfig(BaseModel):
    """Sync settings: the named endpoints HTTP sync runs may use."""

    model_config = ConfigDict(extra="forbid")

    endpoints: dict[str, SyncEndpoint] = Field(
        default_factory=dict,
        description="name -> endpoint; HTTP requests name these, never paths",
    )

    @field_validator("endpoints")
    @classmethod
    def _names(cls, value: dict[str, SyncEndpoint]) -> dict[str, SyncEndpoint]:
        bad = [name for name in value if not _NAME_RE.match(name)]
        if bad:
            raise ValueError(
                f"endpoint names {bad}: use 1-64 letters, digits, '.', '_', '-' "
                "(starting with a letter or digit)"
            )
        return value

    def check(self, protected: Mapping[str, Path], regions: Iterable[str]) -> None:
        """Refuse endpoints on replicast's own state, or with a link the fleet lacks.

        Raises:
            ConfigError: names the endpoint and the field.
        """
        known = sorted(regions)
        for name, endpoint in self.endpoints.items():
            if endpoint.link is not None and endpoint.link not in known:
                raise ConfigError(
                    f"sync.endpoints.{name}.link: unknown region {endpoint.link!r}; "
                    f"known regions are {known}"
                )
            clash = clash_with(endpoint, protected)
            if clash:
                raise ConfigError(f"sync.endpoints.{name}.path: {clash}")


def clash_with(endpoint: SyncEndpoint, protected: Mapping[str, Path]) -> str | None:
    """Why ``endpoint`` may not be used (it is, holds or lies in a protected path), or None."""
    where = endpoint.local_path()
    if where is None:
        return None
    owned = {what: path.resolve() for what, path in protected.items()}
    relations = (
        ("is", lambda own: where == own),
        ("lies inside", lambda own: where.is_relative_to(own)),
        ("contains", lambda own: own.is_relative_to(where)),
    )
    for relation, holds in relations:
        for what, own in owned.items():  # the most specific first (the data dir last)
            if holds(own):
                return f"{endpoint.path!r} {relation} the {what}; sync endpoints may not touch it"
    return None


def local_store_path(tracking_uri: str) -> Path | None:
    """The file or directory of a local MLflow store (``sqlite:///``, ``file:``, a path)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db or sqlite:////absolute.db
        return Path(unquote(tracking_uri.split("://", 1)[1][1:])) if "://" in tracking_uri else None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (or a drive letter)
        return Path(tracking_uri)
    return None
