"""Crash safety: SIGKILL a real sync process mid-run, at random moments and at named crash
points; the target is old-or-new file by file, and the resumed run sends only what is missing.

Every trial must land mid-run: the process dies by SIGKILL (never by finishing) while
some file is still missing on the target. The resumed run's bytes on the wire are bounded
by what the target actually lacks after the crash: whole missing files in whole-file mode,
in delta mode the bytes of each missing file that no block of its old version on the
target provides (what an ideal rsync would send).
"""

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
from replication.signatures import block_size_for
from tests.replication.helpers import make_tree, tree_digests

REPO = Path(__file__).resolve().parents[2]
TRIALS = 30
#: Files every run copies (all changed or new): per-file points are reached this many times.
FILES = 17
#: point -> highest count that is reached mid-run in every trial. Per-file points: the 16
#: small files go first, the big one last; every segment directory is fsynced at least once
#: and seg0..seg3 before the big file of seg4 is renamed.
POINTS = {
    "before_write": FILES - 1,
    "before_fsync": FILES - 1,
    "before_rename": FILES - 1,
    "before_dir_fsync": 4,
    "before_journal": FILES - 1,
}
#: The big last file at the trials' rate limit takes this long at least: random kills land
#: within it (a loaded machine only makes the run longer).
BIG = 1_500_000
RATE = 2 << 20
KILL_WITHIN_S = 0.5
#: Wire bytes per missing file beyond its payload (record headers, the file hash).
PER_FILE_OVERHEAD = 64


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
    make_tree(new, {"seg4/new.db": BIG}, seed=3)
    return new, old, tree_digests(old), tree_digests(new)


def literal_bytes(old: bytes, new: bytes) -> int:
    """Bytes of ``new`` that no block of ``old`` provides, at the engine's block size for
    ``old`` (greedy, as rsync matches: a block of ``old`` found at any offset of ``new``)."""
    block = block_size_for(len(old))
    full = len(old) // block * block
    blocks = {old[k : k + block] for k in range(0, full, block)}
    tail = old[full:]
    i = literal = 0
    while i < len(new):
        if new[i : i + block] in blocks:
            i += block
        elif tail and new[i : i + len(tail)] == tail:
            i += len(tail)
        else:
            literal += 1
            i += 1
    return literal


def _missing(
    src: Path, dst: Path, old: dict[str, str], new: dict[str, str], whole: bool
) -> dict[str, tuple[int, int]]:
    """Per segment: (payload bytes the target lacks, files it lacks) after a crash."""
    seen = tree_digests(dst)
    out: dict[str, tuple[int, int]] = {}
    for rel in new:
        if seen.get(rel) == new[rel]:
            continue
        data = (src / rel).read_bytes()
        if whole or rel not in seen or seen[rel] != old.get(rel):
            lacking = len(data)
        else:
            lacking = literal_bytes((dst / rel).read_bytes(), data)
        seg = rel.split("/")[0]
        nbytes, files = out.get(seg, (0, 0))
        out[seg] = (nbytes + lacking, files + 1)
    return out


def _trial(
    tmp_path: Path, n: int, src: Path, base: Path, rng: random.Random
) -> tuple[Path, Path, str]:
    dst, state = tmp_path / f"t{n}" / "dst", tmp_path / f"t{n}" / "state"
    shutil.copytree(base, dst, copy_function=shutil.copy2)
    whole = n % 2 == 0
    cmd = [sys.executable, "-m", "replication", "--source", str(src), "--target", str(dst),
           "--state-dir", str(state), "--no-record", "--bwlimit", str(RATE),
           "--concurrency", "2", "--order", "alpha",
           "--whole-file" if whole else "--no-whole-file"]  # fmt: skip
    env = dict(os.environ)
    how = "random"
    if n % 3 == 2:  # a named crash point, at a count every run reaches mid-run
        point = list(POINTS)[(n // 3) % len(POINTS)]
        env[ENV] = f"{point}:{rng.randrange(1, POINTS[point] + 1)}"
        how = env[ENV]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if how == "random":  # wait for the first temp file (copying began), then a random delay
        deadline = time.monotonic() + 30
        while not list(dst.rglob(f"*{TMP_SUFFIX}")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the sync never started copying"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, KILL_WITHIN_S))
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"trial {n} ({how}): the sync was not killed mid-run (exit {proc.returncode}): "
        f"{out.decode()[-300:]} {err.decode()[-300:]}"
    )
    return dst, state, how


def test_literal_bytes_counts_what_no_old_block_provides() -> None:
    rng = random.Random(1)
    old = rng.randbytes(100_000)  # 1 KiB blocks
    assert literal_bytes(old, old) == 0
    assert literal_bytes(old, old[:5000] + b"x" * 300 + old[5000:]) == 300 + 1024
    assert literal_bytes(old, old[:2048] + bytes(1024) + old[3072:]) == 1024
    assert literal_bytes(old, old + b"y" * 500) == 500
    assert literal_bytes(b"", b"new") == 3


@pytest.mark.slow  # ~30 process starts: about a minute on a busy 2-core machine
def test_kill_9_leaves_old_or_new_and_resume_sends_only_what_is_missing(
    tmp_path: Path, settings
) -> None:
    src, base, old, new = _dataset(tmp_path)
    rng = random.Random(11)
    ratios: list[tuple[int, str, int, int, float]] = []
    for n in range(TRIALS):
        whole = n % 2 == 0
        dst, state, how = _trial(tmp_path, n, src, base, rng)
        seen = tree_digests(dst)
        for rel in set(old) | set(new):
            got = seen.get(rel)
            assert got in (old.get(rel), new.get(rel)), f"trial {n} ({how}): {rel} is torn"
        lacking = _missing(src, dst, old, new, whole)
        missing = sum(nbytes for nbytes, _ in lacking.values())
        assert missing > 0, f"trial {n} ({how}): the kill landed after the last file"
        request = SyncRequest(source=src, target=str(dst), state_dir=state, record=False,
                              whole_file=whole, order="alpha")  # fmt: skip
        result = run_sync(request, settings=settings)
        assert result.state == "finished", json.dumps(result.to_dict(), default=str)
        assert tree_digests(dst) == new
        assert not list(dst.rglob(f"*{TMP_SUFFIX}"))
        for seg in result.segments:  # per segment: the big new file hides no small delta
            nbytes, files = lacking.get(seg.name, (0, 0))
            bound = 1.05 * nbytes + PER_FILE_OVERHEAD * files
            assert seg.bytes_sent <= bound, (n, how, seg.name, seg.bytes_sent, nbytes, files)
        assert result.bytes_sent == sum(seg.bytes_sent for seg in result.segments)
        worst = max(s.bytes_sent / lacking[s.name][0] for s in result.segments if s.name in lacking)
        ratios.append((n, how, result.bytes_sent, missing, worst))
        shutil.rmtree(dst.parent)
    for n, how, sent, missing, worst in ratios:  # shown with -s
        mode = "whole" if n % 2 == 0 else "delta"
        print(f"trial {n:2d} {mode:5s} {how:22s} re-sent {sent:8d} missing {missing:8d}"
              f" ratio {sent / missing:.4f} (worst segment {worst:.4f})")  # fmt: skip
