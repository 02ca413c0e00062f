from __future__ import annotations

import os
import random
from pathlib import Path

from replication.signatures import (
    SignatureBuilder,
    SignatureIndex,
    block_size_for,
    signature_of_bytes,
    signature_of_file,
)


def test_builder_is_independent_of_chunking() -> None:
    data = random.Random(1).randbytes(100_001)
    whole = signature_of_bytes(data, 1024)
    builder = SignatureBuilder(len(data), 1024)
    for i in range(0, len(data), 3333):
        builder.update(data[i : i + 3333])
    parts = builder.finish()
    assert parts.file_hash == whole.file_hash
    assert (parts.strong == whole.strong).all() and (parts.weak == whole.weak).all()
    assert whole.blocks == 98 and len(whole.weak) == 97


def test_block_size_grows_with_file_size() -> None:
    assert block_size_for(10) == 1024
    assert block_size_for(5 << 20) == 4096
    assert block_size_for(1 << 40) == 65536


def test_index_entry_invalidated_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    index = SignatureIndex(tmp_path / "sig.sqlite")
    sig, read = signature_of_file(path)
    assert read == 5000
    index.put("f", os.stat(path), sig)
    assert index.get("f", os.stat(path)).file_hash == sig.file_hash
    assert index.file_hash("f", os.stat(path)) == sig.file_hash
    path.write_bytes(b"y" * 5000)
    os.utime(path, ns=(1, 1))
    assert index.get("f", os.stat(path)) is None
    index.close()
