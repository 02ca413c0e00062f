from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from replication.executor import run_sync
from replication.request import SegmentResult, SyncRequest
from replication.rsync_transport import batches
from tests.conftest import require
from tests.replication.helpers import make_tree, tree_digests


@pytest.fixture(autouse=True)
def _rsync() -> None:
    require(shutil.which("rsync") is not None, "rsync not installed (apt-get install rsync)")


SPEC = {"a/x.db": 90_000, "b/y.sst": 70_000, "c/z.wal": 50_000, "d/w.blob": 30_000}


def _req(src: Path, dst: Path, **kw) -> SyncRequest:
    kw.setdefault("order", "alpha")
    return SyncRequest(source=src, target=str(dst), transport="rsync", **kw)


def test_batches_keep_the_head_alone() -> None:
    segs = [SegmentResult(name=str(i), rank=i) for i in range(10)]
    sizes = [len(b) for b in batches(segs)]
    assert sizes == [1, 1, 2, 4, 2] and sum(sizes) == 10
    # an unlimited local link: the hottest alone, the rest in one call
    assert [[s.name for s in b] for b in batches(segs[:3], limited=False)] == [["0"], ["1", "2"]]
    assert [len(b) for b in batches(segs[:1], limited=False)] == [1]
    assert batches([], limited=False) == batches([]) == []


def test_rsync_transport_copies_updates_and_resumes(tmp_path: Path, settings) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, SPEC)
    snaps = []
    first = run_sync(_req(src, dst), settings=settings, progress=snaps.append)
    assert first.state == "finished", first.errors
    assert snaps[-1].bytes_done == snaps[-1].bytes_total == sum(SPEC.values())
    assert snaps[-1].files_done == len(SPEC)
    assert tree_digests(dst) == tree_digests(src)
    assert first.count("copied") == 4 and first.bytes_sent >= sum(SPEC.values())
    again = run_sync(_req(src, dst), settings=settings)
    assert again.count("skipped") == 4 and again.bytes_sent == 0
    data = bytearray((src / "b" / "y.sst").read_bytes())
    data[100:200] = b"z" * 100
    (src / "b" / "y.sst").write_bytes(bytes(data))
    (src / "e").mkdir()
    (src / "e" / "new").write_bytes(b"n" * 1000)
    third = run_sync(_req(src, dst, whole_file=False), settings=settings)
    assert [s.name for s in third.segments if s.state == "copied"] == ["b", "e"]
    assert tree_digests(dst) == tree_digests(src)
    assert third.literal_bytes < 70_000  # the delta algorithm of rsync itself


def test_rsync_transport_delete_and_failures(tmp_path: Path, settings) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, SPEC)
    run_sync(_req(src, dst), settings=settings)
    (dst / "a" / "stale").write_text("old")
    dry = run_sync(_req(src, dst, delete=True, dry_run=True), settings=settings)
    assert "delete a/stale" in dry.planned and (dst / "a" / "stale").exists()
    done = run_sync(_req(src, dst, delete=True), settings=settings)
    assert done.files_deleted == 1 and not (dst / "a" / "stale").exists()
    for rel in SPEC:
        (src / rel).write_bytes(b"changed " + rel.encode())

    def vanish(snap) -> None:  # the source file of segment c disappears mid-run
        if snap.state == "running":
            (src / "c" / "z.wal").unlink(missing_ok=True)

    failed = run_sync(_req(src, dst), settings=settings, progress=vanish)
    states = {s.name: s.state for s in failed.segments}
    assert states == {"a": "copied", "b": "copied", "c": "failed", "d": "copied"}
    assert failed.exit_code == 1 and "z.wal" in failed.errors[0]
    assert (dst / "d" / "w.blob").read_bytes() == b"changed d/w.blob"


def test_rsync_priority_batches_and_time_budget(tmp_path: Path, settings) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, {f"s{i}/f": 400_000 for i in range(6)})
    part = run_sync(_req(src, dst, bwlimit=1_000_000.0, budget_seconds=0.8), settings=settings)
    assert part.state == "partial" and part.count("pending") >= 1
    for rel, digest in tree_digests(dst).items():  # partial files stay in --partial-dir
        assert ".rsync-partial" in rel or digest == tree_digests(src)[rel]
    rest = run_sync(_req(src, dst), settings=settings)
    assert rest.state == "finished"
    got = {k: v for k, v in tree_digests(dst).items() if ".rsync-partial" not in k}
    assert got == tree_digests(src)
