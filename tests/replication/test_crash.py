"""Crash safety: SIGKILL a real sync process at random moments and at named crash points."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replication.atomic import TMP_SUFFIX
from replication.crashpoints import ENV
from replication.executor import run_sync
from replication.request import SyncRequest
from tests.replication.helpers import make_tree, tree_digests

REPO = Path(__file__).resolve().parents[2]
TRIALS = 30
POINTS = ["before_fsync", "before_rename", "before_dir_fsync", "before_journal"]


def _dataset(tmp_path: Path) -> tuple[Path, Path, dict[str, str], dict[str, str]]:
    """Old and new versions of a small tree; returns (new source, old target, digests)."""
    rng = random.Random(7)
    old, new = tmp_path / "old", tmp_path / "new"
    spec = {f"seg{s}/f{i}.db": rng.randrange(60_000, 200_000) for s in range(4) for i in range(4)}
    make_tree(old, spec, seed=1)
    shutil.copytree(old, new)
    for i, rel in enumerate(sorted(spec)):
        path = new / rel
        data = bytearray(path.read_bytes())
        if i % 3 == 0:
            data[1000:9000] = rng.randbytes(8000)  # in-place rewrite
        elif i % 3 == 1:
            data = data[:5000] + rng.randbytes(3000) + data[5000:]  # shifted insert
        else:
            data += rng.randbytes(20_000)  # append
        path.write_bytes(bytes(data))
    make_tree(new, {"seg4/new.db": 150_000}, seed=3)
    return new, old, tree_digests(old), tree_digests(new)


def _trial(
    tmp_path: Path, n: int, src: Path, base: Path, rng: random.Random
) -> tuple[Path, Path, str]:
    dst, state = tmp_path / f"t{n}" / "dst", tmp_path / f"t{n}" / "state"
    shutil.copytree(base, dst, copy_function=shutil.copy2)
    whole = n % 2 == 0
    cmd = [sys.executable, "-m", "replication", "--source", str(src), "--target", str(dst),
           "--state-dir", str(state), "--no-record", "--bwlimit", "4MiB", "--concurrency", "2",
           "--whole-file" if whole else "--no-whole-file"]  # fmt: skip
    env = dict(os.environ)
    how = "random"
    if n % 3 == 2:  # a named crash point, hit a random number of times
        point = POINTS[(n // 3) % len(POINTS)]
        env[ENV] = f"{point}:{rng.randrange(1, 12)}"
        how = env[ENV]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if how == "random":  # wait for the first temp file (copying began), then a random delay
        deadline = time.monotonic() + 30
        while not list(dst.rglob(f"*{TMP_SUFFIX}")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the sync never started copying"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.5 if whole else 0.15))
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return dst, state, how


@pytest.mark.slow  # ~30 process starts: about a minute on a busy 2-core machine
def test_kill_9_leaves_old_or_new_and_resume_finishes(tmp_path: Path, settings) -> None:
    src, base, old, new = _dataset(tmp_path)
    rng = random.Random(11)
    killed = 0
    for n in range(TRIALS):
        dst, state, how = _trial(tmp_path, n, src, base, rng)
        seen = tree_digests(dst)
        for rel in set(old) | set(new):
            got = seen.get(rel)
            assert got in (old.get(rel), new.get(rel)), f"trial {n} ({how}): {rel} is torn"
        missing = sum((src / r).stat().st_size for r in new if seen.get(r) != new[r])
        killed += missing > 0
        request = SyncRequest(source=src, target=str(dst), state_dir=state, record=False,
                              whole_file=n % 2 == 0, order="alpha")  # fmt: skip
        result = run_sync(request, settings=settings)
        assert result.state == "finished", json.dumps(result.to_dict(), default=str)
        assert tree_digests(dst) == new
        assert not list(dst.rglob(f"*{TMP_SUFFIX}"))
        assert result.bytes_sent <= 1.1 * missing + 100, (n, how, result.bytes_sent, missing)
        shutil.rmtree(dst.parent)
    assert killed >= TRIALS // 2  # most kills landed mid-run
