"""SHA-256 manifests of a model's artifact directory, and their verification.

A manifest maps every file under the directory (POSIX relative path) to the
hex SHA-256 of its bytes. :func:`models.mlflow_registry.Registry.register_with_gate`
stores it as a model-version tag (in the registry database, apart from the
artifact store); loading recomputes it over the downloaded artifacts and refuses
any difference before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from forecasting.errors import ModelNotFoundError

#: The model-version tag holding the JSON manifest.
MANIFEST_TAG = "artifact_sha256"

_CHUNK = 1 << 20


class ModelIntegrityError(ModelNotFoundError):
    """A registered model's artifacts do not match the manifest recorded at registration."""


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(directory: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every regular file under ``directory`` (sorted)."""
    return {
        path.relative_to(directory).as_posix(): file_sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def dumps_manifest(manifest: Mapping[str, str]) -> str:
    """The compact JSON text stored in :data:`MANIFEST_TAG`."""
    return json.dumps(dict(sorted(manifest.items())), separators=(",", ":"))


def verify_manifest(directory: Path, recorded: str, what: str) -> None:
    """Check the files under ``directory`` against the ``recorded`` manifest JSON.

    Args:
        directory: the downloaded artifact directory.
        recorded: the JSON of :data:`MANIFEST_TAG`.
        what: names the model version in errors (e.g. ``"replicast-load version 3"``).

    Raises:
        ModelIntegrityError: the manifest is unreadable, or a file changed, vanished or
            appeared (the message names the version and the file).
    """
    try:
        expected = json.loads(recorded)
        if not isinstance(expected, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ModelIntegrityError(f"{what}: unreadable artifact manifest ({exc})") from exc
    actual = build_manifest(directory)
    for name, digest in sorted(expected.items()):
        found = actual.get(name)
        if found is None:
            raise ModelIntegrityError(
                f"{what}: artifact file {name!r} is missing; refusing to load it"
            )
        if found != digest:
            raise ModelIntegrityError(
                f"{what}: artifact file {name!r} does not match its SHA-256 recorded at "
                f"registration (expected {digest[:12]}…, found {found[:12]}…); "
                "the model was modified after registration, refusing to load it"
            )
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise ModelIntegrityError(
            f"{what}: artifact file {extra[0]!r} was not there at registration; refusing to load it"
        )
