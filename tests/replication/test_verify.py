from __future__ import annotations

import os
from pathlib import Path

from replication.catalog import build_catalog
from replication.executor import run_sync
from replication.request import SyncRequest
from replication.signatures import SignatureIndex
from replication.verify import verify_replica
from tests.replication.helpers import make_tree


def test_verify_uses_stored_signatures_and_finds_damage(tmp_path: Path, settings) -> None:
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    make_tree(src, {"a/x": 30_000, "b/y": 20_000, "c": 10_000})
    run_sync(SyncRequest(source=src, target=str(dst), state_dir=state, record=False),
             settings=settings)  # fmt: skip
    index = SignatureIndex(state / "signatures.sqlite")
    clean = verify_replica(src, dst, build_catalog(src), index)
    assert clean.ok and clean.files == 3
    assert clean.bytes_read == 60_000  # the source only: targets come from the index
    st = (dst / "b" / "y").stat()
    (dst / "b" / "y").write_bytes(b"\0" * 20_000)  # same size and mtime, other bytes
    os.utime(dst / "b" / "y", ns=(st.st_atime_ns, st.st_mtime_ns))
    damaged = verify_replica(src, dst, build_catalog(src), index)
    assert damaged.mismatched == ["b/y"]
    index.close()
