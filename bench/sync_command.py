"""``replicast sync`` as a user runs it: a process, start-up included, vs rsync processes.

On one change set, each contender starts from the old tree (its target reset, untimed,
before every run) and runs ``repeats`` times, the contenders in reverse order on odd
repeats; figures are medians of wall-clock seconds:

* unlimited: ``rsync -a --delete SRC/ DST/`` vs ``replicast sync ... --delete`` (a
  process) vs :func:`run_sync` in this process (same request);
* 40 MiB/s: ``rsync -a --no-whole-file --bwlimit=40m SRC/ DST/`` vs ``replicast sync ...
  --bwlimit 40MiB`` vs :func:`run_sync`. rsync's one-letter suffixes are powers of 1024
  (``40m`` = 40 x 1024^2 B/s), as replicast's ``40MiB``: both 41,943,040 bytes/s.

rsync gets ``--stats`` (for the bytes sent), the command ``--json`` (for its run's own
seconds and bytes). The command's start-up is from its spawn to its run's start (wall
clock), its exit the rest of its wall time after the run (table, JSON, interpreter exit);
:func:`where_time_goes` breaks the runs down further (imports, phases of each link's run).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from changesets import ChangeSet

from forecasting.settings import Settings
from replication.executor import run_sync, state_dir_for
from replication.paths import parse_endpoint
from replication.request import SyncRequest
from replication.signatures import SignatureIndex, signature_of_file

BYTES_PER_S = 40 * 1024 * 1024
RSYNC_BWLIMIT = "--bwlimit=40m"  # KiB-based suffix: 40 x 1024^2 bytes/s
COMMAND_BWLIMIT = "40MiB"  # 40 x 1024^2 bytes/s
UNLIMITED, LIMITED = "unlimited", "40MiB/s"
QUEUE_ARGS = {"order": "priority", "cluster": "bench", "replica": "cn-north"}
_SENT = re.compile(r"^Total bytes sent: ([\d,]+)", re.M)
#: phases of a run whose cumulative time the profile reports: (file name, function)
PHASES = {
    "settings": ("settings.py", "load_settings"),
    "order (priority queue read)": ("ordering.py", "priority_ranks"),
    "catalog": ("catalog.py", "build_catalog"),
    "record (sync_runs row)": ("record.py", "record_run"),
    "run_sync total": ("executor.py", "run_sync"),
}


def replicast_exe() -> Path:
    """The ``replicast`` console script of the running virtualenv."""
    return Path(sys.executable).parent / "replicast"


@dataclass(frozen=True)
class Contender:
    """One way of bringing ``target`` up to date."""

    name: str
    link: str  # UNLIMITED or LIMITED
    kind: str  # "rsync", "command" or "in-process"
    target: Path
    argv: tuple[str, ...] = ()  # rsync and command: the exact command line

    @property
    def replicast(self) -> bool:
        return self.kind != "rsync"


# ---------------------------------------------------------------------------- targets
def reset_target(cs: ChangeSet, target: Path, state_dir: Path | None) -> None:
    """Put ``target`` back to the old tree: changed and deleted files copied anew from
    ``base`` (own inodes, old mtimes), new files removed; with ``state_dir``, the signature
    index learns the restored files (warm, as after a replicast run)."""
    index = SignatureIndex(state_dir / "signatures.sqlite") if state_dir else None
    for rel in cs.changes["chosen"] + cs.changes["deleted"]:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        tmp = target / (rel + ".restore")
        shutil.copy2(cs.base / rel, tmp)
        os.replace(tmp, target / rel)
        if index is not None:
            sig, _ = signature_of_file(target / rel)
            index.put(rel, os.stat(target / rel), sig)
    for rel in cs.changes["new"]:
        (target / rel).unlink(missing_ok=True)
        parent = (target / rel).parent
        while parent != target and not (cs.base / parent.relative_to(target)).exists():
            if not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
            parent = parent.parent
    if index is not None:
        index.close()


def changed_files_equal(cs: ChangeSet, target: Path, deleted: bool) -> bool:
    """The files the change set touched match the new tree (deleted ones gone if asked)."""
    for rel in cs.changes["chosen"] + cs.changes["new"]:
        if (target / rel).read_bytes() != (cs.src / rel).read_bytes():
            return False
    return not deleted or not any((target / rel).exists() for rel in cs.changes["deleted"])


def _initial_replica(cs: ChangeSet, target: Path, link: str, settings: Settings) -> None:
    """The first replication of the old tree (untimed; warms the signature index the way
    the timed runs will read it: block sums on the 40 MiB/s link)."""
    res = run_sync(
        SyncRequest(source=cs.base, target=str(target), order="alpha", record=False,
                    whole_file=False if link == LIMITED else None),
        settings=settings,
    )  # fmt: skip
    if res.state != "finished":
        raise RuntimeError(f"initial replication of {target}: {res.state} {res.errors}")


# ---------------------------------------------------------------------------- contenders
def contenders(cs: ChangeSet, root: Path, json_dir: Path) -> list[Contender]:
    src = f"{cs.src}/"
    queue = [f"--{k}={v}" for k, v in QUEUE_ARGS.items()]
    out: list[Contender] = []
    for link, tag in ((UNLIMITED, ""), (LIMITED, "_bw")):
        rs, rep = root / f"rsync{tag}", root / f"replicast{tag}"
        if link == UNLIMITED:
            rsync = ("rsync", "-a", "--delete", "--stats", src, f"{rs}/")
            flags = ("--delete",)
        else:
            rsync = ("rsync", "-a", "--no-whole-file", RSYNC_BWLIMIT, "--stats", src, f"{rs}/")
            flags = ("--bwlimit", COMMAND_BWLIMIT)
        result = json_dir / f"replicast_cmd{tag}.json"
        command = (str(replicast_exe()), "sync", "--source", str(cs.src), "--target", str(rep),
                   *flags, *queue, "--json", str(result))  # fmt: skip
        out += [
            Contender(f"rsync{'_a' if not tag else '_nwf_bw'}", link, "rsync", rs, rsync),
            Contender(f"replicast_cmd{tag}", link, "command", rep, command),
            Contender(f"replicast_inproc{tag}", link, "in-process", rep),
        ]
    return out


def _request(cs: ChangeSet, c: Contender) -> SyncRequest:
    """The request ``replicast sync`` builds from the contender's command line."""
    return SyncRequest(
        source=cs.src,
        target=str(c.target),
        delete=c.link == UNLIMITED,
        bwlimit=float(BYTES_PER_S) if c.link == LIMITED else None,
        **QUEUE_ARGS,
    )


def _run(cs: ChangeSet, c: Contender, settings: Settings, env: dict, cwd: Path) -> dict:
    """One timed run: wall seconds, the run's own seconds (replicast), bytes sent."""
    if c.kind == "in-process":
        t0 = time.perf_counter()
        res = run_sync(_request(cs, c), settings=settings)
        wall = time.perf_counter() - t0
        if res.state != "finished":
            raise RuntimeError(f"{c.name}: {res.state} {res.errors}")
        return {"wall_s": wall, "run_s": res.seconds, "bytes_sent": res.bytes_sent}
    t0, spawned = time.perf_counter(), time.time()
    proc = subprocess.run(c.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(c.argv)}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    if c.kind == "rsync":
        sent = _SENT.search(proc.stdout)
        return {"wall_s": wall, "bytes_sent": int(sent[1].replace(",", "")) if sent else None}
    result = json.loads(Path(c.argv[-1]).read_text())
    # the run started (wall clock) this long after the spawn: start-up; the rest is exit
    startup = datetime.fromisoformat(result["started"]).timestamp() - spawned
    return {"wall_s": wall, "run_s": result["seconds"], "bytes_sent": result["bytes_sent"],
            "startup_s": startup, "exit_s": wall - startup - result["seconds"]}  # fmt: skip


# ---------------------------------------------------------------------------- one set
def bench_set(cs: ChangeSet, root: Path, settings: Settings, repeats: int) -> dict:
    """Time every contender ``repeats`` times on ``cs``; medians, ratios and a breakdown."""
    env = {**os.environ, "REPLICAST_DATA_DIR": str(settings.data_dir.resolve())}
    env.pop("REPLICAST_CONFIG", None)
    json_dir = root / "json"
    json_dir.mkdir(parents=True, exist_ok=True)
    field = contenders(cs, root, json_dir)
    states: dict[Path, Path | None] = {}
    for c in field:
        if c.target in states:
            continue
        if c.replicast:
            _initial_replica(cs, c.target, c.link, settings)
            states[c.target] = state_dir_for(settings, parse_endpoint(str(c.target)))
        else:
            subprocess.run(["cp", "-a", "--reflink=auto", str(cs.base), str(c.target)],
                           check=True)  # fmt: skip
            states[c.target] = None
    runs: dict[str, list[dict]] = {c.name: [] for c in field}
    for rep in range(repeats):
        for c in field if rep % 2 == 0 else field[::-1]:
            reset_target(cs, c.target, states[c.target])
            os.sync()
            run = _run(cs, c, settings, env, root)
            run["ok"] = changed_files_equal(cs, c.target, deleted=c.link == UNLIMITED)
            runs[c.name].append(run)
        print(f"  {cs.name} repeat {rep}: "
              + ", ".join(f"{n} {r[-1]['wall_s']:.2f}" for n, r in runs.items()),
              file=sys.stderr, flush=True)  # fmt: skip
    out = {"change_set": _public(cs.changes), "contenders": {}, "ratios": {}}
    for c in field:
        reps = runs[c.name]
        row = {
            "link": c.link,
            "kind": c.kind,
            "wall_s": round(statistics.median(r["wall_s"] for r in reps), 3),
            "wall_all": [round(r["wall_s"], 3) for r in reps],
            "bytes_sent": reps[0]["bytes_sent"],
            "ok": all(r["ok"] for r in reps),
        }
        if c.replicast:
            row["run_s"] = round(statistics.median(r["run_s"] for r in reps), 3)
        if c.kind == "command":
            for key in ("startup_s", "exit_s"):
                row[key] = round(statistics.median(r[key] for r in reps), 3)
        if c.argv:
            row["argv"] = " ".join(c.argv)
        out["contenders"][c.name] = row
    wall = {name: row["wall_s"] for name, row in out["contenders"].items()}
    for link, tag, goal in ((UNLIMITED, "", 1.2), (LIMITED, "_bw", 1.0)):
        base = "rsync_a" if link == UNLIMITED else "rsync_nwf_bw"
        rsync_s = wall[base]
        command = round(wall[f"replicast_cmd{tag}"] / rsync_s, 3)
        pairs = zip(runs[f"replicast_cmd{tag}"], runs[base], strict=True)
        paired = [c["wall_s"] / r["wall_s"] for c, r in pairs]
        out["ratios"][link] = {
            "command_vs_rsync": command,
            # the same repeat's two runs (seconds apart, under the same load), median
            "command_vs_rsync_paired": round(statistics.median(paired), 3),
            "in_process_vs_rsync": round(wall[f"replicast_inproc{tag}"] / rsync_s, 3),
            "goal": goal,
            "met": command <= goal,
        }
    out["where_time_goes"] = where_time_goes(cs, field, states, settings, env, root)
    return out


def _public(changes: dict) -> dict:
    return {k: v for k, v in changes.items() if not isinstance(v, list | dict)}


# ---------------------------------------------------------------------------- breakdown
def where_time_goes(
    cs: ChangeSet, field: list[Contender], states: dict, settings: Settings, env: dict, cwd: Path
) -> dict:
    """Untimed extra runs: interpreter start-up, ``sync --help``, the command's slowest
    top-level imports (``-X importtime``), its run's phases (cProfile, cumulative) per link,
    and the slowest functions of the same run in this warm process (cProfile, main thread)."""
    exe = [sys.executable]

    def wall(argv: list[str]) -> float:
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
            samples.append(time.perf_counter() - t0)
        return round(statistics.median(samples), 3)

    out: dict = {
        "python_startup_s": wall([*exe, "-c", "pass"]),
        "sync_help_s": wall([str(replicast_exe()), "sync", "--help"]),
    }
    for c in field:
        if c.kind == "command":
            reset_target(cs, c.target, states[c.target])
            if c.link == UNLIMITED:
                proc = subprocess.run([*exe, "-X", "importtime", *c.argv], cwd=cwd, env=env,
                                      capture_output=True, text=True, check=True)  # fmt: skip
                out["imports"] = _importtime(proc.stderr)
                reset_target(cs, c.target, states[c.target])
            prof = cwd / "sync.prof"
            subprocess.run([*exe, "-m", "cProfile", "-o", str(prof), *c.argv], cwd=cwd, env=env,
                           capture_output=True, check=True)  # fmt: skip
            out[f"command_phases_cprofile_s {c.link}"] = _phases(pstats.Stats(str(prof)))
        elif c.kind == "in-process":
            reset_target(cs, c.target, states[c.target])
            profile = cProfile.Profile()
            profile.runcall(run_sync, _request(cs, c), settings=settings)
            stats = pstats.Stats(profile)
            out[f"in_process_phases_cprofile_s {c.link}"] = _phases(stats)
            out[f"in_process_slowest_s {c.link}"] = _slowest(stats)
    return out


def _importtime(stderr: str, top: int = 12) -> dict:
    """Total import seconds and the slowest top-level imports (cumulative seconds)."""
    total, level0 = 0, []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:") :].split("|", 2)
        total += int(self_us)
        if not name[1:].startswith(" "):  # no indentation: imported by __main__ itself
            level0.append((name.strip(), int(cum_us)))
    # a top-level import's cumulative time already holds what it imported in turn
    level0.sort(key=lambda x: -x[1])
    return {
        "total_s": round(total / 1e6, 3),
        "top_level": {n: round(us / 1e6, 3) for n, us in level0[:top]},
    }


def _phases(profile: pstats.Stats) -> dict:
    """Cumulative seconds of the run's phases (:data:`PHASES`) in the main thread."""
    stats = profile.stats  # type: ignore[attr-defined]
    total = max(v[3] for v in stats.values())
    out: dict[str, float] = {"profiled": round(total, 3)}
    for label, (where, func) in PHASES.items():
        hits = [v[3] for (file, _, name), v in stats.items()
                if name == func and file.endswith(where)]  # fmt: skip
        if hits:
            out[label] = round(max(hits), 3)
    if "run_sync total" in out:  # what the named phases leave: planning, copying, fsyncs
        named = ("order (priority queue read)", "catalog", "record (sync_runs row)")
        rest = out["run_sync total"] - sum(out.get(k, 0.0) for k in named)
        out["copy and the rest of run_sync"] = round(rest, 3)
    return out


def _slowest(profile: pstats.Stats, top: int = 10) -> dict:
    """Our functions with the most cumulative seconds (below run_sync), main thread."""
    rows = []
    for (file, line, name), v in profile.stats.items():  # type: ignore[attr-defined]
        if ("/replication/" in file or "/forecasting/" in file) and name != "run_sync":
            rows.append((f"{Path(file).parent.name}/{Path(file).name}:{line} {name}", v[3]))
    rows.sort(key=lambda r: -r[1])
    return {k: round(v, 3) for k, v in rows[:top]}
