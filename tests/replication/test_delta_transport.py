from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from forecasting.errors import PathEscapeError, SyncError
from replication.catalog import FileEntry
from replication.delta_transport import DeltaTransport, LinkContext
from replication.limits import Budget
from replication.signatures import SignatureIndex
from replication.verify import hash_file


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path, SignatureIndex]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    return src, dst, SignatureIndex(tmp_path / "sig.sqlite")


def _entry(root: Path, rel: str) -> FileEntry:
    st = os.stat(root / rel)
    return FileEntry(rel, st.st_size, st.st_mtime_ns, st.st_mode)


def _sync(src: Path, dst: Path, index: SignatureIndex, rel: str, **ctx):
    transport = DeltaTransport(src, dst, index)
    return transport.transfer(_entry(src, rel), LinkContext(budget=Budget(), **ctx))


def _mutations(old: bytes) -> dict[str, bytes]:
    rng = random.Random(3)
    rewrite = bytearray(old)
    for page in (1, 17, 40):
        rewrite[page * 8192 : (page + 1) * 8192] = rng.randbytes(8192)
    return {
        "rewrite": bytes(rewrite),
        "append": old + rng.randbytes(20_000),
        "insert": old[:123_457] + rng.randbytes(4000) + old[123_457:],
    }


@pytest.mark.parametrize("kind", ["rewrite", "append", "insert"])
def test_delta_transport_updates_target_and_sends_little(roots, kind: str) -> None:
    src, dst, index = roots
    old = random.Random(1).randbytes(400_000)
    (src / "f.db").write_bytes(old)
    first = _sync(src, dst, index, "f.db", whole_file=True)
    assert first.method == "whole" and (dst / "f.db").read_bytes() == old
    new = _mutations(old)[kind]
    (src / "f.db").write_bytes(new)
    os.utime(src / "f.db", ns=(1_000_000_000, 2_000_000_000))
    out = _sync(src, dst, index, "f.db", whole_file=False)
    assert out.method == "delta"
    assert (dst / "f.db").read_bytes() == new
    assert out.hash == hash_file(src / "f.db")[0]
    assert os.stat(dst / "f.db").st_mtime_ns == 2_000_000_000
    changed = len(new) - len(old) if kind != "rewrite" else 3 * 8192
    assert out.bytes_sent < changed + 4 * 1024 + 200
    assert out.bytes_sent < len(new) / 10
    # the signature index was refreshed for the new target: a second delta reads no basis
    again = _sync(src, dst, index, "f.db", whole_file=False)
    assert again.bytes_read == len(new) + again.matched_bytes


def test_source_changing_mid_copy_is_retried_not_shipped_torn(roots) -> None:
    src, dst, index = roots
    (src / "f").write_bytes(b"a" * 300_000)
    versions = [b"b" * 300_000 + b"tail"]

    def writer(path: Path, _done: int) -> None:
        if versions:  # modify the source once, right after the transport read it
            path.write_bytes(versions.pop())

    out = _sync(src, dst, index, "f", whole_file=True, on_read=writer)
    assert out.retries == 1
    assert (dst / "f").read_bytes() == b"b" * 300_000 + b"tail"


def test_source_that_never_settles_fails_cleanly(roots) -> None:
    src, dst, index = roots
    (src / "f").write_bytes(b"a" * 1000)
    (dst / "f").write_bytes(b"old")
    n = [0]

    def writer(path: Path, _done: int) -> None:
        n[0] += 1
        path.write_bytes(b"v%d" % n[0] * 1000)

    with pytest.raises(SyncError, match="changed during each"):
        _sync(src, dst, index, "f", whole_file=False, on_read=writer)
    assert (dst / "f").read_bytes() == b"old"
    assert [p.name for p in dst.iterdir()] == ["f"]  # no temp file left


def test_vanished_source_is_a_sync_error(roots) -> None:
    src, dst, index = roots
    (src / "f").write_bytes(b"x")
    entry = _entry(src, "f")
    (src / "f").unlink()
    with pytest.raises(SyncError, match="vanished"):
        DeltaTransport(src, dst, index).transfer(entry, LinkContext(budget=Budget()))


def test_target_symlink_escape_is_refused(roots, tmp_path: Path) -> None:
    src, dst, index = roots
    (src / "seg").mkdir()
    (src / "seg" / "f").write_bytes(b"x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dst / "seg").symlink_to(elsewhere)
    with pytest.raises(PathEscapeError):
        _sync(src, dst, index, "seg/f")
    assert not (elsewhere / "f").exists()


def test_whole_file_copies_store_block_sums_only_where_delta_is_on(roots) -> None:
    src, dst, index = roots
    rng = random.Random(5)
    for rel in ("fast.db", "slow.db"):
        (src / rel).write_bytes(rng.randbytes(300_000))
    fast = _sync(src, dst, index, "fast.db", whole_file=True)
    slow = _sync(src, dst, index, "slow.db", whole_file=False)  # no basis yet: whole
    assert fast.method == slow.method == "whole"
    # fast link: only the whole-file hash (verify needs it), no block sums
    assert index.file_hash("fast.db", os.stat(dst / "fast.db")) == hash_file(src / "fast.db")[0]
    assert index.get("fast.db", os.stat(dst / "fast.db")) is None
    assert index.get("slow.db", os.stat(dst / "slow.db")).blocks > 0
    # a later delta builds the blocks from the target itself and still sends little
    new = _mutations((src / "fast.db").read_bytes())["rewrite"]
    (src / "fast.db").write_bytes(new)
    os.utime(src / "fast.db", ns=(1_000_000_000, 2_000_000_000))
    out = _sync(src, dst, index, "fast.db", whole_file=False)
    assert out.method == "delta" and (dst / "fast.db").read_bytes() == new
    assert out.bytes_sent < len(new) // 4
    assert index.get("fast.db", os.stat(dst / "fast.db")).blocks > 0
