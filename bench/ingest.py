"""Ingest throughput: validating ingest vs a plain ``pandas.read_csv`` of the same file.

Writes a node_metrics CSV with ``--rows`` rows (1 % of them bad in various ways) under a
temp directory, then times, in the same run:

* ``baseline_read_csv``: ``pd.read_csv`` with type inference and no checks (the baseline);
* ``validate_csv``: ingest's reader + row validation, no lake write;
* ``ingest_csv``: the full ``ingest_file`` into an empty lake (validation + atomic writes);
* ``ingest_parquet``: the same rows from a typed Parquet file (bad values as NaN/NaT).

Prints and writes JSON: seconds, rows/s and the ratio of each to the baseline.

    python bench/ingest.py --rows 1000000 --json bench/out/ingest.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.lake import Lake
from pipelines.ingest import _validate_csv, ingest_file


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """A node_metrics frame as text, with 1 % bad rows of several kinds."""
    rng = np.random.default_rng(seed)
    nodes = 60
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        (np.arange(rows) // nodes) * 5, unit="min"
    )
    frame = pd.DataFrame(
        {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cluster": "orders",
            "region": np.array(["us-east", "eu-west", "cn-north"])[np.arange(rows) % 3],
            "node": [f"n{i % nodes}" for i in range(rows)],
            "role": np.where(np.arange(rows) % nodes == 0, "primary", "replica"),
            "cpu_util": rng.uniform(0, 1, rows).round(4).astype(str),
            "qps_read": rng.uniform(0, 5000, rows).round(2).astype(str),
            "qps_write": rng.uniform(0, 500, rows).round(2).astype(str),
            "disk_used_bytes": rng.uniform(1e11, 2e11, rows).round().astype(str),
            "repl_lag_s": rng.exponential(0.5, rows).round(3).astype(str),
            "repl_bytes": rng.uniform(0, 1e7, rows).round().astype(str),
            "net_rtt_ms": rng.uniform(1, 230, rows).round(1).astype(str),
        }
    )
    bad = rng.choice(rows, size=rows // 100, replace=False)
    kinds = np.array_split(bad, 4)
    frame.loc[kinds[0], "cpu_util"] = "abc"
    frame.loc[kinds[1], "cpu_util"] = "1.7"
    frame.loc[kinds[2], "role"] = "leader"
    frame.loc[kinds[3], "ts"] = "yesterday"
    return frame


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame = make_frame(rows)
        csv_path = root / "node_metrics.csv"
        frame.to_csv(csv_path, index=False)
        parquet_path = root / "in" / "node_metrics.parquet"
        parquet_path.parent.mkdir()
        typed = frame.assign(  # a typed export: bad numbers/times arrive as NaN/NaT
            ts=pd.to_datetime(frame["ts"], utc=True, errors="coerce"),
            **{c: pd.to_numeric(frame[c], errors="coerce") for c in frame.columns[5:]},
        )
        typed.to_parquet(parquet_path)
        results: dict[str, dict[str, float]] = {}
        base, _ = _timed(lambda: pd.read_csv(csv_path))
        results["baseline_read_csv"] = {"seconds": base}
        secs, (validated, _, _) = _timed(
            lambda: _validate_csv(csv_path.resolve(), None, None, None)
        )
        results["validate_csv"] = {"seconds": secs, "quarantined": len(validated.quarantined)}
        secs, report = _timed(lambda: ingest_file(csv_path, lake=Lake(root / "lake_csv")))
        results["ingest_csv"] = {"seconds": secs, "quarantined": report.rows_quarantined}
        secs, report = _timed(lambda: ingest_file(parquet_path, lake=Lake(root / "lake_pq")))
        results["ingest_parquet"] = {"seconds": secs, "quarantined": report.rows_quarantined}
    for entry in results.values():
        entry["rows_per_s"] = rows / entry["seconds"]
        entry["ratio_to_baseline"] = entry["seconds"] / base
    return {"rows": rows, "baseline": "baseline_read_csv", "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    figures = run(args.rows)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
