"""Sync executor vs rsync on the same change sets, in one run.

**As a command** (:mod:`sync_command`), on each change set of :mod:`changesets` (mixed,
small_files, large_files): ``replicast sync`` run as a process (start-up included) and
:func:`run_sync` in this process, vs ``rsync -a --delete`` unlimited and ``rsync -a
--no-whole-file --bwlimit=40m`` at 40 MiB/s, every contender from the old tree each time.

**In process** (the mixed set; skipped with ``--command-only``): the dataset (>= 1.5 GB
at full scale in 320 files over 40 segments: database pages, partly compressible
snapshots, SSTables, WAL-like logs, incompressible blobs) under a temp directory is
replicated, then ~4 % of the bytes over ~20 % of the files change (in-place page
rewrites, appends, mid-file inserts that shift data, new and deleted files); timed and
counted, each on its own replica of the old state:

* ``rsync -a --delete`` (the baseline), ``--no-whole-file`` and ``--no-whole-file -z``,
  unlimited and at ``--bwlimit=40m``;
* :func:`run_sync` with the delta and the rsync transport, unlimited and at 40 MiB/s;
* freshness: the time-to-fresh curve (share of the next window's reads served by an
  up-to-date segment) and the stale-read exposure of priority order vs rsync's order;
* verify: the replica against the stored signatures vs ``rsync -a --checksum``;
* crash safety: kill -9 trials (random moments and named crash points).

    python bench/sync.py --json bench/out/sync.json            # full (minutes)
    python bench/sync.py --scale small --kill-trials 20 --json /tmp/sync.json   # quick
    python bench/sync.py --command-only --json bench/out/sync_command.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from changesets import BUILDERS, ChangeSet
from sync_command import LIMITED, UNLIMITED, bench_set, replicast_exe, reset_target

from forecasting.lake import Lake
from forecasting.settings import Settings
from replication.atomic import TMP_SUFFIX
from replication.crashpoints import ENV as CRASH_ENV
from replication.delta import literal_bytes, plan_delta
from replication.executor import run_sync
from replication.request import SyncRequest
from replication.signatures import SignatureIndex, signature_of_bytes
from replication.verify import verify_replica

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
BW = 40 * MIB
# ---------------------------------------------------------------------------- rsync
_STAT = re.compile(r"^(Total bytes sent|Total bytes received|Literal data): ([\d,]+)")


def run_rsync(args: list[str], src: Path, dst: Path) -> dict:
    """One timed rsync call; per-file completion times from --out-format lines."""
    cmd = ["rsync", *args, "--stats", "--out-format=::done:: %n", f"{src}/", f"{dst}/"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    done_at, stats = {}, {}
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line.startswith("::done:: "):
            done_at[line[9:]] = time.perf_counter() - t0
        elif m := _STAT.match(line):
            stats[m[1]] = int(m[2].replace(",", ""))
    rc = proc.wait()
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit {rc}")
    return {
        "seconds": round(seconds, 3),
        "bytes_sent": stats.get("Total bytes sent", 0),
        "bytes_received": stats.get("Total bytes received", 0),
        "literal_bytes": stats.get("Literal data", 0),
        "done_at": done_at,
    }


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".rsync-partial" not in p.parts
    }


# ---------------------------------------------------------------------------- freshness
def segment_reads(segments: list[str], rng: np.random.Generator) -> dict[str, float]:
    """Next window's reads per segment: Zipf(1.1) over a random order of the segments."""
    perm = rng.permutation(len(segments))
    return {segments[j]: 1e6 / (rank + 1) ** 1.1 for rank, j in enumerate(perm)}


def write_priority_queue(
    lake_dir: Path, reads: dict[str, float], pending_bytes: dict[str, int], seed: int
) -> dict:
    """The queue the plan job would give: Smith's rule w/p on noisy predicted reads, p the
    bytes changed over the link's bandwidth (as :func:`pipelines.plan.priority_queue`)."""
    rng = np.random.default_rng(seed)
    rows = []
    origin = pd.Timestamp.now(tz="UTC").floor("h")
    for seg, nbytes in pending_bytes.items():
        w = reads[seg] * float(rng.lognormal(0, 0.5))  # model error: x/÷ 1.65 (1 sigma)
        cost = max(nbytes, 1) / BW
        rows.append((seg, w, cost, w / cost))
    rows.sort(key=lambda r: -r[3])
    frame = pd.DataFrame(
        [
            {"ts": origin, "origin": origin, "cluster": "bench", "replica": "cn-north",
             "segment": seg, "rank": i + 1, "weight": w, "cost_s": c, "score": s, "waited_s": 0.0}
            for i, (seg, w, c, s) in enumerate(rows)
        ]
    )  # fmt: skip
    Lake(lake_dir).write("priority_queue", frame)
    return {"segments": len(rows), "noise_sigma": 0.5}


def exposure(done: dict[str, float], reads: dict[str, float], window_s: float) -> float:
    """Stale reads: sum over segments of (reads per second) x (seconds until fresh)."""
    return sum(reads[s] / window_s * t for s, t in done.items())


def fresh_curve(done: dict[str, float], reads: dict[str, float], horizon: float) -> list:
    total = sum(reads.values())
    points = []
    for t in np.linspace(0, horizon, 21):
        stale = sum(reads[s] for s, c in done.items() if c > t)
        points.append([round(float(t), 3), round(1 - stale / total, 4)])
    return points


def seg_done_from_files(done_at: dict[str, float], pending: dict[str, list[str]]) -> dict:
    out = {}
    for seg, files in pending.items():
        times = [done_at.get(f) for f in files]
        out[seg] = max(t for t in times if t is not None) if any(times) else 0.0
    return out


def same_pace_ratio(prio: dict[str, float], alpha: dict[str, float], reads: dict) -> float:
    """Exposure ratio if both orders ran at the same pace: finish times rescaled to one length."""
    span_p, span_a = max(prio.values()) or 1.0, max(alpha.values()) or 1.0
    e_p = sum(reads[s] * t / span_p for s, t in prio.items())
    e_a = sum(reads[s] * t / span_a for s, t in alpha.items())
    return e_p / e_a


# ---------------------------------------------------------------------------- kill trials
def kill_trials(work: Path, trials: int, settings: Settings, seed: int) -> dict:
    """SIGKILL ``python -m replication`` at random moments and at named crash points."""
    rng = random.Random(seed)
    old, new = work / "k_old", work / "k_new"
    for i in range(24):
        rel = f"s{i % 6}/f{i}.db"
        (old / rel).parent.mkdir(parents=True, exist_ok=True)
        (old / rel).write_bytes(rng.randbytes(rng.randrange(50_000, 150_000)))
    shutil.copytree(old, new)
    for i, p in enumerate(sorted(new.rglob("*.db"))):
        data = bytearray(p.read_bytes())
        if i % 3 == 0:
            data[1000:9000] = rng.randbytes(8000)
        elif i % 3 == 1:
            data[4000:4000] = rng.randbytes(3000)
        else:
            data += rng.randbytes(10_000)
        p.write_bytes(bytes(data))
    (new / "s6").mkdir()
    (new / "s6" / "new.db").write_bytes(rng.randbytes(100_000))
    h_old, h_new = tree_hashes(old), tree_hashes(new)
    points = ["before_write", "before_fsync", "before_rename", "before_dir_fsync",
              "before_journal"]  # fmt: skip
    stats = {"trials": 0, "torn": 0, "resume_not_equal": 0, "temps_left": 0,
             "killed_mid_run": 0, "max_resend_ratio": 0.0, "by_point": {}}  # fmt: skip
    for n in range(trials):
        dst, state = work / "k_dst", work / "k_state"
        shutil.rmtree(dst, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(old, dst)
        whole = n % 2 == 0
        cmd = [sys.executable, "-m", "replication", "--source", str(new), "--target", str(dst),
               "--state-dir", str(state), "--no-record", "--bwlimit", "4MiB",
               "--whole-file" if whole else "--no-whole-file"]  # fmt: skip
        env = dict(os.environ)
        how = "random"
        if n % 2 == 1 or n % 5 == 0:
            how = points[n % len(points)]
            env[CRASH_ENV] = f"{how}:{rng.randrange(1, 20)}"
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        if how == "random":
            deadline = time.monotonic() + 30
            while not list(dst.rglob(f"*{TMP_SUFFIX}")) and proc.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.5 if whole else 0.1))
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        seen = tree_hashes(dst)
        torn = [
            r for r in set(h_old) | set(h_new) if seen.get(r) not in (h_old.get(r), h_new.get(r))
        ]
        missing = sum((new / r).stat().st_size for r in h_new if seen.get(r) != h_new[r])
        result = run_sync(
            SyncRequest(source=new, target=str(dst), state_dir=state, record=False,
                        whole_file=whole, order="alpha"),
            settings=settings,
        )  # fmt: skip
        stats["trials"] += 1
        stats["torn"] += bool(torn)
        stats["killed_mid_run"] += missing > 0
        stats["resume_not_equal"] += tree_hashes(dst) != h_new
        stats["temps_left"] += bool(list(dst.rglob(f"*{TMP_SUFFIX}")))
        if missing:
            ratio = result.bytes_sent / missing
            stats["max_resend_ratio"] = round(max(stats["max_resend_ratio"], ratio), 4)
        stats["by_point"][how] = stats["by_point"].get(how, 0) + 1
    return stats


# ---------------------------------------------------------------------------- main
SCALES = {"full": 1.0, "small": 0.1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument(
        "--scale", default="full", help="full (1.6 GB sets), small (~160 MB) or a factor"
    )
    parser.add_argument(
        "--change-sets", default=",".join(BUILDERS), help=f"some of {', '.join(BUILDERS)}"
    )
    parser.add_argument(
        "--command-only",
        action="store_true",
        help="only the command comparison (skip the mixed set's in-process section: "
        "freshness, verify, kill trials)",
    )
    parser.add_argument("--kill-trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per contender")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: the temp dir")
    args = parser.parse_args()
    scale = SCALES[args.scale] if args.scale in SCALES else float(args.scale)
    wanted = args.change_sets.split(",")
    if unknown := set(wanted) - set(BUILDERS):
        parser.error(f"--change-sets: unknown {sorted(unknown)}; choose from {list(BUILDERS)}")
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="replicast-bench-", dir=args.workdir))
    report: dict = {"scale": scale, "scale_name": args.scale, "seed": args.seed,
                    "workdir": str(work), **_context(), "command": {}}  # fmt: skip
    try:
        for i, name in enumerate(BUILDERS):
            if name not in wanted:
                continue
            root = work / name
            # the mixed set draws from the main generator (the in-process section goes on
            # with it, as it always did); the others from their own
            gen = rng if name == "mixed" else np.random.default_rng([args.seed, i])
            t = time.perf_counter()
            cs = BUILDERS[name](root, scale, gen)
            build_s = round(time.perf_counter() - t, 1)
            print(f"{name}: built in {build_s} s: {_brief(cs.changes)}", file=sys.stderr)
            if name == "mixed" and not args.command_only:
                report["build_seconds"] = build_s
                _bench(work / "in_process", args, rng, report, cs)
                shutil.rmtree(work / "in_process", ignore_errors=True)
            settings = Settings(data_dir=root / "var")
            _queue(cs, settings, np.random.default_rng([args.seed, 100 + i]), args.seed)
            report["command"][name] = bench_set(cs, root / "command", settings, args.repeats)
            report["command"][name]["build_seconds"] = build_s
            shutil.rmtree(root, ignore_errors=True)  # the next set gets the disk and the cache
            report["uptime_after"] = _context()["uptime"]
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))  # each set as soon as it is done
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if "summary" in report:
        print(json.dumps(report["summary"], indent=2))
    print(command_table(report["command"]))


def _context() -> dict:
    """When, on which commit, under which load the figures were taken."""

    def out(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "commit": out("git", "log", "-1", "--format=%h %s"),
        "uncommitted_files": len(out("git", "status", "--short", "-uno").splitlines()),
        "uptime": out("uptime"),
        "rsync": out("rsync", "--version").splitlines()[0],
        "replicast": str(replicast_exe()),
    }


def _brief(changes: dict) -> str:
    keys = ("bytes_total", "files_total", "mutated_share_of_bytes", "mutated_share_of_files")
    return ", ".join(f"{k} {changes[k]}" for k in keys)


def _queue(cs: ChangeSet, settings: Settings, rng: np.random.Generator, seed: int) -> None:
    """A priority queue for the set's segments in the set's own lake (the command reads it)."""
    segments = sorted(p.name for p in cs.src.iterdir())
    pending: dict[str, int] = {}
    for rel, nbytes in cs.changes["written"].items():
        seg = rel.split("/")[0]
        pending[seg] = pending.get(seg, 0) + nbytes
    write_priority_queue(settings.lake_dir, segment_reads(segments, rng), pending, seed)


def command_table(sets: dict) -> str:
    """Medians per change set and link: rsync, the command, in process; ratios to rsync."""
    head = (f"{'change set':<12} {'link':<10} {'rsync s':>8} {'command s':>10} {'(run s)':>8} "
            f"{'in-proc s':>9} {'cmd/rsync':>9} {'goal':>9} {'inproc/rsync':>12} "
            f"{'sent rsync':>11} {'sent cmd':>11}")  # fmt: skip
    rows = [head, "-" * len(head)]
    for name, res in sets.items():
        c = res["contenders"]
        for link, tag, base in ((UNLIMITED, "", "rsync_a"), (LIMITED, "_bw", "rsync_nwf_bw")):
            cmd, r = c[f"replicast_cmd{tag}"], res["ratios"][link]
            goal = f"<={r['goal']:.1f} " + ("ok" if r["met"] else "NO")
            rows.append(
                f"{name:<12} {link:<10} {c[base]['wall_s']:>8.2f} {cmd['wall_s']:>10.2f} "
                f"{cmd['run_s']:>8.2f} {c[f'replicast_inproc{tag}']['wall_s']:>9.2f} "
                f"{r['command_vs_rsync']:>9.2f} {goal:>9} "
                f"{r['in_process_vs_rsync']:>12.2f} "
                f"{c[base]['bytes_sent'] / MIB:>8.1f} MiB {cmd['bytes_sent'] / MIB:>7.1f} MiB"
            )
    rows.append(
        "rsync 40m = replicast 40MiB = 41,943,040 bytes/s; (run s) = the command's own run, "
        "the rest of its wall time is start-up and exit (startup_s, exit_s in the JSON)"
    )
    return "\n".join(rows)


def _bench(
    work: Path, args: argparse.Namespace, rng: np.random.Generator, report: dict, cs: ChangeSet
) -> None:
    """Replicast in process vs rsync on the mixed set: times, freshness, verify, kill trials."""
    work.mkdir(parents=True)
    settings = Settings(data_dir=work / "var")
    base, src, changes = cs.base, cs.src, cs.changes

    rsync_runs = {
        "rsync_a": ["-a", "--delete"],
        "rsync_nwf": ["-a", "--delete", "--no-whole-file"],
        "rsync_nwf_z": ["-a", "--delete", "--no-whole-file", "-z"],
        "rsync_a_fsync": ["-a", "--delete", "--fsync"],
        "rsync_nwf_bw": ["-a", "--delete", "--no-whole-file", "--bwlimit=40m"],
        "rsync_nwf_z_bw": ["-a", "--delete", "--no-whole-file", "-z", "--bwlimit=40m"],
    }
    replicast_runs = {
        "replicast_delta": {"transport": "delta"},
        "replicast_rsync": {"transport": "rsync"},
        "replicast_delta_bw": {"transport": "delta", "bwlimit": float(BW)},
        "replicast_rsync_bw": {"transport": "rsync", "bwlimit": float(BW)},
    }
    for name in rsync_runs:
        subprocess.run(["cp", "-al", str(base), str(work / name)], check=True)
    initial = {}
    # replicast's own initial replication (warms its index); replicas kept over the 40 MiB/s
    # link run in delta mode, so their index holds block sums (fast links keep only hashes)
    for name in replicast_runs:
        res = run_sync(
            SyncRequest(source=base, target=str(work / name), state_dir=work / f"state_{name}",
                        record=False, order="alpha",
                        whole_file=False if "bwlimit" in replicast_runs[name] else None),
            settings=settings,
        )  # fmt: skip
        initial[name] = {"seconds": round(res.seconds, 2), "bytes_written": res.bytes_written}
    report["initial_replication"] = initial
    report["change_set"] = {
        k: v for k, v in changes.items() if k not in ("chosen", "new", "deleted", "written")
    }
    print(f"change set: {report['change_set']}", file=sys.stderr)

    # insert files never fall back to whole file: literal share of each, by the delta plan
    ratios = []
    for rel in changes["insert_files"]:
        old, new = (base / rel).read_bytes(), (src / rel).read_bytes()
        ops = plan_delta(new, signature_of_bytes(old))
        ratios.append((literal_bytes(ops) - (len(new) - len(old))) / len(new))
    report["insert_files_extra_literal_share_max"] = round(max(ratios), 4) if ratios else None

    # freshness inputs: reads per segment and the pending bytes per segment
    segments = sorted(p.name for p in src.iterdir())
    reads = segment_reads(segments, rng)
    pending: dict[str, list[str]] = {}
    for rel in changes["chosen"] + changes["new"]:
        pending.setdefault(rel.split("/")[0], []).append(rel)
    # the plan job's cost: bytes changed since the segment became pending (segment_access)
    pending_bytes = {s: sum(changes["written"][f] for f in fs) for s, fs in pending.items()}
    report["priority_queue"] = write_priority_queue(
        settings.lake_dir, reads, pending_bytes, args.seed
    )

    # each contender runs --repeats times, interleaved (alternating order), each time on a
    # fresh old replica; figures are medians (the machine is shared, timings are noisy)
    runs: dict[str, list[dict]] = {name: [] for name in [*rsync_runs, *replicast_runs]}

    def rsync_contender(name: str, rep: int) -> None:
        if rep:
            shutil.rmtree(work / name)
            subprocess.run(["cp", "-al", str(base), str(work / name)], check=True)
        os.sync()
        runs[name].append(run_rsync(rsync_runs[name], src, work / name))

    def replicast_contender(name: str, rep: int) -> None:
        if rep:
            reset_target(cs, work / name, work / f"state_{name}")
        os.sync()
        res = run_sync(
            SyncRequest(source=src, target=str(work / name), state_dir=work / f"state_{name}",
                        record=False, delete=True, order="priority", cluster="bench",
                        replica="cn-north", **replicast_runs[name]),
            settings=settings,
        )  # fmt: skip
        assert res.state == "finished", res.errors
        runs[name].append(
            {
                "seconds": round(res.seconds, 3),
                "bytes_sent": res.bytes_sent,
                "bytes_received": res.signature_bytes,
                "literal_bytes": res.literal_bytes,
                "bytes_read": res.bytes_read,
                "bytes_written": res.bytes_written,
                "order": res.order,
                "seg_done": {
                    s.name: s.finished_s or 0.0 for s in res.segments if s.name in pending
                },
            }
        )

    contenders = [(rsync_contender, n) for n in rsync_runs]
    contenders += [(replicast_contender, n) for n in replicast_runs]
    for rep in range(args.repeats):
        # odd repeats run the contenders in reverse order, so neither side always goes
        # first after the page cache and the disk settled
        for run, name in contenders if rep % 2 == 0 else contenders[::-1]:
            run(name, rep)
        print(f"repeat {rep}: " + ", ".join(f"{n} {r[-1]['seconds']}" for n, r in runs.items()),
              file=sys.stderr)  # fmt: skip
    want = tree_hashes(src)
    correct = {name: tree_hashes(work / name) == want for name in runs}
    report["all_replicas_equal_source"] = correct
    results: dict[str, dict] = {}
    for name, reps in runs.items():
        results[name] = {k: v for k, v in reps[0].items() if k not in ("done_at", "seg_done")}
        results[name]["seconds_all"] = [r["seconds"] for r in reps]
        results[name]["seconds"] = float(np.median(results[name]["seconds_all"]))

    # freshness at 40 MiB/s: replicast priority (delta) vs rsync's name order, per repeat
    window = 3600.0
    fresh = []
    for i in range(args.repeats):
        rsync_done = seg_done_from_files(runs["rsync_nwf_bw"][i]["done_at"], pending)
        rsync_z_done = seg_done_from_files(runs["rsync_nwf_z_bw"][i]["done_at"], pending)
        prio_done = runs["replicast_delta_bw"][i]["seg_done"]
        prio_rsync_done = runs["replicast_rsync_bw"][i]["seg_done"]
        e_rsync = exposure(rsync_done, reads, window)
        e_prio = exposure(prio_done, reads, window)
        fresh.append(
            {
                "stale_read_exposure_rsync_order": round(e_rsync, 1),
                "ratio_priority_delta_vs_rsync": round(e_prio / e_rsync, 4),
                # rsync compressing too (-z): the same bytes on the wire as the delta transport
                "ratio_priority_delta_vs_rsync_z": round(
                    e_prio / exposure(rsync_z_done, reads, window), 4
                ),
                "ratio_priority_rsync_batches_vs_rsync": round(
                    exposure(prio_rsync_done, reads, window) / e_rsync, 4
                ),
                "ratio_priority_delta_same_pace": round(
                    same_pace_ratio(prio_done, rsync_done, reads), 4
                ),
                "horizon_s": max(max(rsync_done.values()), max(prio_done.values())),
                "dones": (rsync_done, prio_done, prio_rsync_done),
            }
        )
    mid = sorted(range(args.repeats), key=lambda i: fresh[i]["ratio_priority_delta_vs_rsync"])[
        args.repeats // 2
    ]
    rsync_done, prio_done, prio_rsync_done = fresh[mid].pop("dones")
    horizon = fresh[mid]["horizon_s"]
    for f in fresh:
        f.pop("dones", None)
    report["freshness"] = {
        **fresh[mid],
        "repeats": fresh,
        "curve_rsync_order": fresh_curve(rsync_done, reads, horizon),
        "curve_priority_delta": fresh_curve(prio_done, reads, horizon),
        "curve_priority_rsync_batches": fresh_curve(prio_rsync_done, reads, horizon),
    }

    # verify: stored signatures vs rsync -a --checksum on in-sync replicas (medians)
    from replication.catalog import build_catalog

    index = SignatureIndex(work / "state_replicast_delta" / "signatures.sqlite")
    ours, theirs = [], []
    for _ in range(args.repeats):
        os.sync()
        t = time.perf_counter()
        vrep = verify_replica(src, work / "replicast_delta", build_catalog(src), index)
        ours.append(time.perf_counter() - t)
        theirs.append(run_rsync(["-a", "--checksum", "--delete"], src, work / "rsync_a")["seconds"])
    report["verify"] = {
        "replicast_seconds": round(float(np.median(ours)), 3),
        "replicast_ok": vrep.ok,
        "replicast_bytes_read": vrep.bytes_read,
        "rsync_checksum_seconds": round(float(np.median(theirs)), 3),
        "ratio": round(float(np.median(ours) / np.median(theirs)), 4),
        "replicast_all": [round(x, 3) for x in ours],
        "rsync_all": theirs,
    }
    report["runs"] = results

    t = time.perf_counter()
    report["kill_trials"] = kill_trials(work, args.kill_trials, settings, args.seed)
    report["kill_trials"]["seconds"] = round(time.perf_counter() - t, 1)

    r = results
    report["summary"] = {
        "dataset_gb": round(changes["bytes_total"] / 1e9, 3),
        "files": changes["files_total"],
        "bytes_sent_delta_bw_vs_rsync_nwf_z": round(
            r["replicast_delta_bw"]["bytes_sent"] / r["rsync_nwf_z"]["bytes_sent"], 4
        ),
        "time_delta_bw_vs_rsync_nwf_bw": round(
            r["replicast_delta_bw"]["seconds"] / r["rsync_nwf_bw"]["seconds"], 4
        ),
        "time_rsync_transport_bw_vs_rsync_nwf_bw": round(
            r["replicast_rsync_bw"]["seconds"] / r["rsync_nwf_bw"]["seconds"], 4
        ),
        "time_delta_unlimited_vs_rsync_a": round(
            r["replicast_delta"]["seconds"] / r["rsync_a"]["seconds"], 4
        ),
        "time_delta_unlimited_vs_rsync_a_fsync": round(
            r["replicast_delta"]["seconds"] / r["rsync_a_fsync"]["seconds"], 4
        ),
        "time_rsync_transport_unlimited_vs_rsync_a": round(
            r["replicast_rsync"]["seconds"] / r["rsync_a"]["seconds"], 4
        ),
        "exposure_priority_vs_rsync": report["freshness"]["ratio_priority_delta_vs_rsync"],
        "exposure_priority_vs_rsync_z": report["freshness"]["ratio_priority_delta_vs_rsync_z"],
        "exposure_priority_rsync_batches_vs_rsync": report["freshness"][
            "ratio_priority_rsync_batches_vs_rsync"
        ],
        "exposure_priority_vs_rsync_same_pace": report["freshness"][
            "ratio_priority_delta_same_pace"
        ],
        "verify_vs_rsync_checksum": report["verify"]["ratio"],
        "insert_files_extra_literal_share_max": report["insert_files_extra_literal_share_max"],
        "kill_trials": report["kill_trials"]["trials"],
        "kill_torn": report["kill_trials"]["torn"],
        "kill_resume_not_equal": report["kill_trials"]["resume_not_equal"],
        "kill_max_resend_ratio": report["kill_trials"]["max_resend_ratio"],
        "all_replicas_equal_source": all(correct.values()),
    }


if __name__ == "__main__":
    main()
