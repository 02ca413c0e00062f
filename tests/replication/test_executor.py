from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from forecasting.errors import ConfigError
from forecasting.lake import Lake
from forecasting.settings import Settings
from replication.atomic import TMP_SUFFIX
from replication.executor import run_sync
from replication.request import SyncRequest
from tests.replication.helpers import digest, make_tree, tree_digests

SPEC = {
    "alpha/a1.db": 120_000,
    "alpha/a2.db": 80_000,
    "beta/b1.sst": 150_000,
    "gamma/g1.wal": 60_000,
    "gamma/sub/g2.wal": 40_000,
    "zeta.blob": 90_000,
}


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    make_tree(root, SPEC)
    return root


def _req(src: Path, dst: Path, **kw) -> SyncRequest:
    kw.setdefault("order", "alpha")
    kw.setdefault("concurrency", 1)
    return SyncRequest(source=src, target=str(dst), **kw)


def test_first_run_copies_then_second_skips_and_runs_are_recorded(
    src: Path, tmp_path: Path, lake: Lake, settings: Settings
) -> None:
    dst = tmp_path / "dst"
    first = run_sync(_req(src, dst), settings=settings)
    assert first.state == "finished" and first.exit_code == 0
    assert tree_digests(dst) == tree_digests(src)
    assert first.count("copied") == 4 and first.files_copied == len(SPEC)
    second = run_sync(_req(src, dst), settings=settings)
    assert second.files_copied == 0 and second.count("skipped") == 4
    assert second.bytes_sent == 0
    runs = lake.read("sync_runs")
    assert set(runs["run_id"]) == {first.run_id, second.run_id}
    assert {"ts", "source", "target", "transport", "order", "state", "segments_copied",
            "segments_skipped", "segments_failed", "bytes_read", "bytes_sent", "bytes_written",
            "seconds", "error"} <= set(runs.columns)  # fmt: skip
    row = runs.set_index("run_id").loc[first.run_id]
    assert row["bytes_written"] == sum(SPEC.values()) and row["segments_copied"] == 4


def test_priority_order_from_the_lake(src: Path, tmp_path: Path, lake: Lake, settings) -> None:
    origin = pd.Timestamp("2026-01-01T10:00Z")
    old = pd.Timestamp("2026-01-01T09:00Z")
    rows = [
        (origin, "orders", "cn-north", "zeta.blob", 1),
        (origin, "orders", "cn-north", "gamma", 2),
        (origin, "orders", "eu-west", "alpha", 1),  # another replica: ignored
        (old, "orders", "cn-north", "alpha", 1),  # older queue: ignored
    ]
    frame = pd.DataFrame(rows, columns=["ts", "cluster", "replica", "segment", "rank"])
    frame = frame.assign(origin=frame["ts"], weight=1.0, cost_s=1.0, score=1.0, waited_s=0.0)
    lake.write("priority_queue", frame)
    req = _req(src, tmp_path / "dst", order="priority", cluster="orders", replica="cn-north")
    result = run_sync(req, settings=settings)
    names = [s.name for s in result.segments]
    assert names == ["zeta.blob", "gamma", "alpha", "beta"]  # ranked, then alphabetical
    finished = [s.finished_s for s in result.segments]
    assert finished == sorted(finished)
    assert result.order == "priority" and "priority_queue" in result.order_note


def test_without_a_queue_priority_falls_back_to_alpha_and_says_so(src, tmp_path, settings) -> None:
    result = run_sync(_req(src, tmp_path / "dst", order="priority"), settings=settings)
    assert result.order == "alpha"
    assert "fell back to alphabetical" in result.order_note
    assert [s.name for s in result.segments] == ["alpha", "beta", "gamma", "zeta.blob"]


def test_byte_budget_stops_cleanly_and_the_next_run_resumes(src, tmp_path, settings) -> None:
    dst = tmp_path / "dst"
    total = sum(SPEC.values())
    part = run_sync(_req(src, dst, budget_bytes=total // 3), settings=settings)
    assert part.state == "partial" and part.exit_code == 0
    assert "byte budget" in (part.stop_reason or "")
    assert 0 < part.files_copied < len(SPEC)
    assert part.count("pending") >= 1
    for rel, want in tree_digests(dst).items():  # whatever landed is complete
        assert want == digest(src / rel)
    rest = run_sync(_req(src, dst), settings=settings)
    assert rest.state == "finished"
    assert rest.files_copied == len(SPEC) - part.files_copied  # finished files are skipped
    assert tree_digests(dst) == tree_digests(src)
    assert part.bytes_sent + rest.bytes_sent < total * 1.01


def test_time_budget_stops_in_flight_without_a_trace(src, tmp_path, settings) -> None:
    dst = tmp_path / "dst"
    result = run_sync(_req(src, dst, bwlimit=200_000.0, budget_seconds=0.6), settings=settings)
    assert result.state == "partial" and "time budget" in (result.stop_reason or "")
    assert not list(dst.rglob(f"*{TMP_SUFFIX}"))
    for rel, want in tree_digests(dst).items():
        assert want == digest(src / rel)


def test_cancel_from_the_progress_callback(src, tmp_path, settings) -> None:
    cancel = threading.Event()
    seen = []

    def progress(snap) -> None:
        seen.append(snap)
        if snap.files_done >= 1:
            cancel.set()

    result = run_sync(
        _req(src, tmp_path / "dst", bwlimit=1_000_000.0), settings=settings, progress=progress,
        cancel=cancel,
    )  # fmt: skip
    assert result.state == "cancelled" and result.exit_code == 1
    assert 1 <= result.files_copied < len(SPEC)
    assert seen[-1].state == "cancelled" and seen[-1].bytes_total == sum(SPEC.values())


def test_delete_only_with_the_flag_and_never_outside_the_target(src, tmp_path, settings) -> None:
    dst = tmp_path / "dst"
    run_sync(_req(src, dst), settings=settings)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep").write_text("do not touch")
    (dst / "alpha" / "stale.db").write_text("old")
    (dst / "gone_segment").mkdir()
    (dst / "gone_segment" / "x").write_text("old")
    (dst / "beta" / "link").symlink_to(outside)
    kept = run_sync(_req(src, dst), settings=settings)
    assert kept.files_deleted == 0 and (dst / "alpha" / "stale.db").exists()
    dry = run_sync(_req(src, dst, delete=True, dry_run=True), settings=settings)
    assert "delete alpha/stale.db" in dry.planned and (dst / "alpha" / "stale.db").exists()
    result = run_sync(_req(src, dst, delete=True), settings=settings)
    assert result.files_deleted == 3
    assert not (dst / "alpha" / "stale.db").exists() and not (dst / "gone_segment").exists()
    assert not (dst / "beta" / "link").is_symlink()
    assert (outside / "keep").read_text() == "do not touch"
    assert tree_digests(dst) == tree_digests(src)


def test_source_symlink_escape_fails_that_segment_only(src, tmp_path, settings) -> None:
    secret = tmp_path / "secret"
    secret.write_text("password")
    (src / "beta" / "evil").symlink_to(secret)
    dst = tmp_path / "dst"
    result = run_sync(_req(src, dst), settings=settings)
    states = {s.name: s.state for s in result.segments}
    assert states == {"alpha": "copied", "beta": "failed", "gamma": "copied", "zeta.blob": "copied"}
    assert result.exit_code == 1 and any("outside the root" in e for e in result.errors)
    assert not (dst / "beta").exists()


def test_unwritable_target_segment_fails_and_the_run_continues(src, tmp_path, settings) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "beta").write_text("a file where a directory must go")
    result = run_sync(_req(src, dst), settings=settings)
    assert {s.name: s.state for s in result.segments}["beta"] == "failed"
    assert result.count("copied") == 3 and result.state == "failed"
    assert "cannot copy 'beta/b1.sst'" in result.errors[0]


def test_dry_run_writes_nothing(src, tmp_path, settings, lake) -> None:
    dst = tmp_path / "dst"
    result = run_sync(_req(src, dst, dry_run=True), settings=settings)
    assert result.state == "dry-run" and sorted(result.planned) == sorted(SPEC)
    assert not dst.exists() and lake.read("sync_runs").empty


def test_checksum_finds_what_the_quick_check_misses(src, tmp_path, settings) -> None:
    dst = tmp_path / "dst"
    run_sync(_req(src, dst), settings=settings)
    target = dst / "beta" / "b1.sst"
    st = target.stat()
    target.write_bytes(b"\0" * st.st_size)  # same size, same mtime, other content
    import os

    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run_sync(_req(src, dst), settings=settings).files_copied == 0
    fixed = run_sync(_req(src, dst, checksum=True), settings=settings)
    assert fixed.files_copied == 1 and digest(target) == digest(src / "beta" / "b1.sst")


def test_bad_requests_are_clear_errors(src, tmp_path, settings) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        run_sync(_req(tmp_path / "nope", tmp_path / "dst"), settings=settings)
    with pytest.raises(ConfigError, match="use --transport rsync"):
        run_sync(_req(src, "db2:/srv/x"), settings=settings)
