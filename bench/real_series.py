"""Forecast accuracy on the real series of ``../shared/data`` vs the named baselines.

The protocol of issue 2: NAB ``nab_aws_cloudwatch/*`` and ``nab_known_cause/ec2*``
(``value``), Bitbrains ``bitbrains_rnd/*`` (``cpu_usage_mhz``) and Alibaba
``alibaba_v2018_machine_usage/*`` (``cpu_util_percent``), each resampled to hourly
means; horizon 24; 3 folds (the last 3 days); MASE scaled by the training part's
seasonal-naive(24) MAE. All models run in one run (global models learn across all
series); replicast's ``champion`` is chosen per series from the training part only.

Writes JSON: the ``replicast backtest`` report plus ``ratios``: the champion's mean
MASE divided by each baseline's (seasonal naive, Prophet, statsforecast AutoETS),
and ``goals_met``.

    python bench/real_series.py --data ../shared/data --json bench/out/real_series.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pipelines.series_backtest import CHAMPION, run_series_backtest
from pipelines.series_files import discover, load_series

SETS = [
    ("nab_aws_cloudwatch", "value", ""),
    ("nab_known_cause", "value", "ec2"),
    ("bitbrains_rnd", "cpu_usage_mhz", ""),
    ("alibaba_v2018_machine_usage", "cpu_util_percent", ""),
]
MODELS = ["seasonal_naive_day", "seasonal_naive_week", "ets", "lightgbm", "ensemble", "prophet"]
CANDIDATES = ["seasonal_naive_day", "seasonal_naive_week", "ets", "lightgbm", "ensemble"]
BASELINES = {"seasonal_naive": "seasonal_naive_day", "prophet": "prophet", "autoets": "ets"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    series = []
    for folder, column, prefix in SETS:
        for name, path in discover([args.data / folder]):
            if path.name.startswith(prefix):
                series += load_series(
                    [(f"{folder}/{name}", path)], timestamp_col="timestamp", value_col=column
                )
    models = args.models.split(",")
    started = time.perf_counter()
    report = run_series_backtest(
        series,
        models=models,  # type: ignore[arg-type]
        horizon=24,
        folds=3,
        quantiles=[0.05, 0.5, 0.9, 0.95, 0.99],
        candidates=[m for m in CANDIDATES if m in models],  # type: ignore[misc]
    )
    doc = report.to_json()
    summary = doc["summary"]
    champ = summary[CHAMPION]["mase_mean"]
    doc["ratios"] = {
        name: champ / summary[model]["mase_mean"]
        for name, model in BASELINES.items()
        if model in summary
    }
    coverage = summary[CHAMPION]["coverage_90"]
    doc["goals_met"] = all(r < 1 for r in doc["ratios"].values()) and 0.85 <= coverage <= 0.95
    doc["n_series"] = len(series)
    doc["seconds"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    for model, row in sorted(summary.items(), key=lambda kv: kv[1]["mase_mean"] or 9):
        print(
            f"{model:22s} MASE mean {row['mase_mean']:.3f} median {row['mase_median']:.3f} "
            f"coverage90 {row['coverage_90']:.3f}"
        )
    print(json.dumps({"ratios": doc["ratios"], "goals_met": doc["goals_met"]}))


if __name__ == "__main__":
    main()
