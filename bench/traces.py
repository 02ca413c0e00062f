"""``replicast backtest-priority`` on the real access traces of ``../shared/data``.

The traces come in their own formats (SOURCES.md there); this turns each into the CSV
the command reads (``segment,ts``; one row per access) in a temp directory, runs the
same backtest the CLI runs, and reports per trace each policy's exposure and
``captured`` (replicast vs last-window, alphabetical and the oracle). Block traces are
cut into segments here, as the issue asks of the caller:

* LIRS ``cpp``/``cs``/``multi1``: one segment per file block (the traces are file-block
  references of programs; ``*`` lines are checkpoints and skipped); logical time.
* cache2k ``web07``/``orm-night``: one segment per object key; logical time.
* ARC ``P6``: 512-byte disk blocks -> 128 KiB segments (``start_block // 256``); logical time.
* SNIA SYSTOR'17 sample: ``LUN:offset // 1 MiB``; its real timestamps.
* SNIA Tencent CBS sample: ``volume:offset // 1 MiB`` (offsets in 512-byte sectors);
  logical time (the whole sample spans one second at 1-second resolution).

Nothing is copied into the project: the converted CSVs live in the temp directory.

    python bench/traces.py --data ../shared/data --json bench/out/traces.json
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError
from pipelines.decision_backtests import backtest_priority

MIB = 1 << 20


def _lirs(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt") as fh:
        blocks = [line.strip() for line in fh if line.strip() and not line.startswith("*")]
    return pd.DataFrame({"segment": blocks, "ts": np.arange(len(blocks))})


def _cache2k(path: Path) -> pd.DataFrame:
    with lzma.open(path) as fh:
        keys = np.frombuffer(fh.read(), dtype=">i4")
    return pd.DataFrame({"segment": keys.astype(str), "ts": np.arange(len(keys))})


def _arc(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep=" ", header=None, usecols=[0], names=["start"])
    return pd.DataFrame(
        {"segment": (frame["start"] // 256).astype(str), "ts": np.arange(len(frame))}
    )


def _systor(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    segment = frame["LUN"].astype(str) + ":" + (frame["Offset"] // MIB).astype(str)
    ts = pd.to_datetime(frame["Timestamp"], unit="s", utc=True)
    return pd.DataFrame({"segment": segment, "ts": ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})


def _tencent(path: Path) -> pd.DataFrame:
    with bz2.open(path, "rt") as fh:
        frame = pd.read_csv(fh, header=None, names=["ts", "offset", "size", "io", "volume"])
    segment = frame["volume"].astype(str) + ":" + (frame["offset"] * 512 // MIB).astype(str)
    return pd.DataFrame({"segment": segment, "ts": np.arange(len(frame))})


TRACES: dict[str, tuple[str, Callable[[Path], pd.DataFrame]]] = {
    "lirs_cpp": ("traces_caffeine/lirs_cpp.trace.gz", _lirs),
    "lirs_cs": ("traces_caffeine/lirs_cs.trace.gz", _lirs),
    "lirs_multi1": ("traces_caffeine/lirs_multi1.trace.gz", _lirs),
    "cache2k_web07": ("traces_caffeine/cache2k_web07.trace.xz", _cache2k),
    "cache2k_orm_night": ("traces_caffeine/cache2k_orm-night.trace.xz", _cache2k),
    "arc_p6": ("traces_arc/P6.lis.gz", _arc),
    "snia_systor17": ("traces_caffeine/snia_systor17-traces-sample.csv.gz", _systor),
    "snia_tencent": ("traces_caffeine/snia_tencent_cloud_storage-sample.bz2", _tencent),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--only", nargs="*", default=None, help="trace names (default: all)")
    parser.add_argument("--window", default=None, help="--window of the CLI (default: its own)")
    args = parser.parse_args()
    report: dict = {"traces": {}}
    with tempfile.TemporaryDirectory(prefix="replicast-traces-") as tmp:
        for name, (rel, convert) in TRACES.items():
            if args.only and name not in args.only:
                continue
            source = args.data / rel
            if not source.exists():
                report["traces"][name] = {"skipped": f"{source} not found"}
                continue
            csv = Path(tmp) / f"{name}.csv"
            convert(source).to_csv(csv, index=False)
            started = time.perf_counter()
            try:
                result = backtest_priority(
                    csv, key_col="segment", time_col="ts", window=args.window
                )
            except DataValidationError as exc:  # e.g. too few windows of that length
                report["traces"][name] = {"skipped": str(exc)}
                print(f"{name:18s} skipped: {exc}", flush=True)
                continue
            result["seconds"] = round(time.perf_counter() - started, 1)
            report["traces"][name] = result
            pol = result["policies"]
            print(
                f"{name:18s} windows {result['windows']:4d} scored {result['accesses_scored']:7d}"
                f"  captured replicast {pol['replicast']['captured']:.3f}"
                f"  last_window {pol['last_window']['captured']:.3f}"
                f"  (exposure alpha {pol['alphabetical']['exposure']:.0f},"
                f" last {pol['last_window']['exposure']:.0f},"
                f" replicast {pol['replicast']['exposure']:.0f},"
                f" oracle {pol['oracle']['exposure']:.0f})",
                flush=True,
            )
    done = [r for r in report["traces"].values() if "policies" in r]
    report["replicast_above_last_window"] = sum(
        r["policies"]["replicast"]["captured"] > r["policies"]["last_window"]["captured"]
        for r in done
    )
    report["traces_scored"] = len(done)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "traces"}))


if __name__ == "__main__":
    main()
