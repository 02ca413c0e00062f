"""Faults during a real sync: every one ends the run ``failed`` within seconds, with the
cause recorded, and leaves each target file old or new (never torn, never a hang)."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecasting.settings import Settings
from replication import crashpoints, journal
from replication.executor import run_sync
from replication.request import SyncRequest, SyncResult
from tests.conftest import REPO, require
from tests.replication.helpers import make_tree, tree_digests

#: A faulty run must end within this many seconds (a hang fails the test, not CI).
BOUND_S = 10.0


def _trees(tmp_path: Path, sizes: dict[str, int]) -> tuple[Path, Path, dict[str, str]]:
    """A source of ``sizes`` and a target holding an older version of every other file;
    returns (source, target, the target's digests before the run)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, sizes, seed=1)
    make_tree(dst, {rel: size for i, (rel, size) in enumerate(sizes.items()) if i % 2}, seed=2)
    return src, dst, tree_digests(dst)


def _bounded(request: SyncRequest, settings: Settings) -> tuple[SyncResult, float]:
    """``run_sync`` in a thread joined with a timeout: a hang fails here instead of hanging."""
    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["result"] = run_sync(request, settings=settings)
        except BaseException as exc:  # noqa: BLE001 - reported below
            out["error"] = exc

    thread = threading.Thread(target=target, name="fault-run", daemon=True)
    t0 = time.monotonic()
    thread.start()
    thread.join(BOUND_S)
    took = time.monotonic() - t0
    assert not thread.is_alive(), f"run_sync still running after {BOUND_S} s: it hangs"
    assert "error" not in out, f"run_sync raised instead of failing the run: {out['error']!r}"
    result = out["result"]
    assert isinstance(result, SyncResult)
    return result, took


def _old_or_new(src: Path, dst: Path, before: dict[str, str]) -> None:
    """Every target file is its old version, its new version, or absent if it had none."""
    new = tree_digests(src)
    for rel, got in tree_digests(dst).items():
        assert got in (before.get(rel), new.get(rel)), f"{rel} is neither old nor new (torn)"
    for rel in before:
        assert (dst / rel).exists(), f"{rel} lost its old version"


def _report(what: str, took: float, result: SyncResult) -> None:
    """What the user sees (``pytest -s``): the time to the end, the state, the first error."""
    print(f"{what}: {took:.2f} s, {result.state}: {result.errors[0]}; warnings {result.warnings}")


def _request(src: Path, dst: Path, state: Path, **kw: object) -> SyncRequest:
    return SyncRequest(source=src, target=str(dst), state_dir=state, record=False, **kw)


def _failed(result: SyncResult, *words: str) -> str:
    assert result.state == "failed", (result.state, result.errors)
    text = "\n".join(result.errors)
    for word in words:
        assert word in text, f"{word!r} not in the recorded errors: {text}"
    return text


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for the test (needs root; skipped elsewhere, fails in CI)."""
    where = tmp_path / "small"
    where.mkdir()
    mount = shutil.which("mount")
    require(mount is not None, "no mount command to make a small tmpfs with")
    done = subprocess.run(
        [str(mount), "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(done.returncode == 0, f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture(autouse=True)
def _fresh_crash_counts() -> Iterator[None]:
    crashpoints.reset()
    yield
    crashpoints.reset()


#: 60 files, ~1.7 MB: more files than the engine's queues hold, more bytes than the tmpfs.
SIZES = {f"seg{s}/f{i:02d}.db": 20_000 + 1_000 * i for s in range(4) for i in range(15)}


@pytest.mark.parametrize("state_on_tmpfs", [False, True], ids=["state-elsewhere", "state-too"])
def test_full_target_fails_the_run_and_leaves_old_or_new(
    tmp_path: Path, tmpfs: Path, settings: Settings, state_on_tmpfs: bool
) -> None:
    src, _, _ = _trees(tmp_path, SIZES)
    dst = tmpfs / "dst"
    make_tree(dst, {rel: 30_000 for rel in list(SIZES)[::6]}, seed=2)
    before = tree_digests(dst)
    state = (tmpfs if state_on_tmpfs else tmp_path) / "state"
    result, took = _bounded(_request(src, dst, state, whole_file=True), settings)
    _failed(result, "full")
    _old_or_new(src, dst, before)
    _report(f"full target (state {'on it' if state_on_tmpfs else 'elsewhere'})", took, result)


def test_journal_locked_from_the_start_fails_the_run(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "BUSY_TIMEOUT_S", 0.2)
    src, dst, before = _trees(tmp_path, SIZES)
    state = tmp_path / "state"
    journal.Journal(state / "journal.sqlite").close()
    holder = sqlite3.connect(state / "journal.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result, took = _bounded(_request(src, dst, state), settings)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _failed(result, "journal.sqlite", "locked")
    _old_or_new(src, dst, before)
    _report("journal locked from the start", took, result)


def test_journal_locked_mid_run_fails_the_run(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "BUSY_TIMEOUT_S", 0.2)
    src, dst, before = _trees(tmp_path, SIZES)
    state = tmp_path / "state"
    path = state / "journal.sqlite"
    locked = threading.Event()
    stop = threading.Event()

    journal.Journal(path).close()  # its tables exist before the run starts

    def lock_after_first_record() -> None:
        db = sqlite3.connect(path, isolation_level=None, timeout=5)
        while not stop.is_set():
            if db.execute("SELECT count(*) FROM files").fetchone()[0]:
                db.execute("BEGIN EXCLUSIVE")
                locked.set()
                break
            time.sleep(0.002)
        stop.wait()
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()

    locker = threading.Thread(target=lock_after_first_record, daemon=True)
    locker.start()
    try:  # ~1.4 MB at 1 MiB/s: the lock lands while files are still being copied
        result, took = _bounded(_request(src, dst, state, bwlimit=1 << 20), settings)
    finally:
        stop.set()
        locker.join(5)
    assert locked.is_set(), "the journal was never locked mid-run"
    _failed(result, "journal", "locked")
    _old_or_new(src, dst, before)
    _report("journal locked mid-run", took, result)


def test_dir_fsync_error_fails_the_run(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst, before = _trees(tmp_path, SIZES)
    monkeypatch.setenv(crashpoints.ENV, "before_dir_fsync:2:error")
    result, took = _bounded(_request(src, dst, tmp_path / "state"), settings)
    text = _failed(result, "Input/output error", "fsync")
    assert str(dst) in text, text  # names the directory
    _old_or_new(src, dst, before)
    _report("directory fsync EIO", took, result)


def test_journal_disk_full_fails_the_run(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst, before = _trees(tmp_path, SIZES)
    calls = []

    def full(self: journal.Journal, rec: journal.FileRecord) -> None:
        calls.append(rec.path)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(journal.Journal, "record", full)
    result, took = _bounded(_request(src, dst, tmp_path / "state"), settings)
    text = _failed(result, "database or disk is full", calls[0])
    assert "journal" in text
    _old_or_new(src, dst, before)
    _report("journal disk full", took, result)


def test_worker_error_outside_the_file_fails_the_run(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker hitting a non-file error (its signature index unreadable) stops the run."""
    from replication.delta_transport import DeltaTransport

    src, dst, before = _trees(tmp_path, SIZES)

    def broken(*_a: object, **_k: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(DeltaTransport, "prepare", broken)
    result, took = _bounded(_request(src, dst, tmp_path / "state"), settings)
    _failed(result, "malformed")
    _old_or_new(src, dst, before)
    _report("worker error", took, result)


# symlinks --------------------------------------------------------------------------


def _hostile_source(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, {"good/f.db": 50_000, "loopy/f.db": 50_000, "leaky/f.db": 50_000})
    os.symlink("b", src / "loopy" / "a")
    os.symlink("a", src / "loopy" / "b")
    os.symlink("self", src / "self")  # a top-level segment that is a loop
    outside = tmp_path / "outside"
    make_tree(outside, {"secret.db": 1000})
    os.symlink(outside / "secret.db", src / "leaky" / "secret.db")
    return src, dst


def test_symlink_loops_and_escapes_fail_their_segments_cleanly(
    tmp_path: Path, settings: Settings
) -> None:
    src, dst = _hostile_source(tmp_path)
    result, _ = _bounded(_request(src, dst, tmp_path / "state", order="alpha"), settings)
    by_name = {s.name: s for s in result.segments}
    assert result.state == "failed"
    assert by_name["good"].state == "copied"
    assert "symlink loop" in (by_name["loopy"].error or ""), by_name["loopy"].error
    assert "symlink loop" in (by_name["self"].error or ""), by_name["self"].error
    assert "outside the root" in (by_name["leaky"].error or ""), by_name["leaky"].error
    assert tree_digests(dst) == {"good/f.db": tree_digests(src)["good/f.db"]}


def test_symlink_loop_on_the_command_line_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    src, dst = _hostile_source(tmp_path)
    cmd = [sys.executable, "-m", "replication", "--source", str(src), "--target", str(dst),
           "--state-dir", str(tmp_path / "state"), "--no-record"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert "symlink loop" in done.stderr + done.stdout


def test_symlink_loop_as_a_root_is_an_error_before_the_run(
    tmp_path: Path, settings: Settings
) -> None:
    from forecasting.errors import ReplicastError

    src, _ = _hostile_source(tmp_path)
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(ReplicastError, match="not a directory"):
        run_sync(_request(tmp_path / "loop", tmp_path / "dst", tmp_path / "s"), settings=settings)
    for state in (tmp_path / "s", None):  # the state dir's default is named after the target
        with pytest.raises(ReplicastError, match="symlink loop"):
            run_sync(_request(src, tmp_path / "loop", state), settings=settings)


def test_eio_mode_of_a_crash_point_raises_from_the_nth_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crashpoints.ENV, "before_write:2:error")
    crashpoints.crash_point("before_write")
    crashpoints.crash_point("before_rename")
    for _ in range(2):
        with pytest.raises(OSError) as info:
            crashpoints.crash_point("before_write")
        assert info.value.errno == errno.EIO


@pytest.mark.slow  # builds the HTTP app (its MLflow store): ~10 s
def test_symlink_loops_over_http_are_4xx_or_a_failed_run_never_500(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from serving.http.app import create_app

    src, _ = _hostile_source(tmp_path)
    (tmp_path / "dst").mkdir()
    token = "fault-token-0123456789"
    endpoints = {
        "src": {"path": str(src)},
        "dst": {"path": str(tmp_path / "dst"), "role": "target"},
        "loop-target": {"path": str(tmp_path / "loop-t"), "role": "target"},
        "loop-source": {"path": str(tmp_path / "loop-s")},
    }
    settings = Settings(
        data_dir=tmp_path / "var", serve={"api_token": token}, sync={"endpoints": endpoints}
    )
    os.symlink("loop-t", tmp_path / "loop-t")  # loops made after the settings were loaded
    os.symlink("loop-s", tmp_path / "loop-s")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, configure_logs=False)) as client:
        for source, target in (("src", "loop-target"), ("loop-source", "dst")):
            refused = client.post(
                "/v1/sync/runs", json={"source": source, "target": target}, headers=auth
            )
            assert refused.status_code == 422, refused.text
            assert "symlink loop" in refused.json()["detail"]
        started = client.post(
            "/v1/sync/runs", json={"source": "src", "target": "dst"}, headers=auth
        )
        assert started.status_code == 202, started.text
        url = f"/v1/sync/runs/{started.json()['run_id']}"
        deadline = time.monotonic() + BOUND_S
        while (run := client.get(url, headers=auth).json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"the run did not end within {BOUND_S} s"
            time.sleep(0.05)
    assert run["state"] == "failed", run
    assert any("symlink loop" in e for e in run["errors"]), run["errors"]
    assert any("outside the root" in e for e in run["errors"]), run["errors"]


def test_a_symlink_loop_in_the_settings_is_a_validation_error(tmp_path: Path) -> None:
    from pydantic import ValidationError

    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(ValidationError, match="symlink loop"):
        Settings(
            data_dir=tmp_path / "var", sync={"endpoints": {"x": {"path": str(tmp_path / "loop")}}}
        )
