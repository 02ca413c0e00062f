"""The hot-segment job: backtest, register (``replicast-hot-segments``) and score segments.

Windows are one hour. Per cluster, ``segment_access`` (15-minute rows) becomes an
hourly panel; each (segment, hour t) gets features from hours <= t and the targets
of hour t+1 (:mod:`features.segment_features`).

Rolling-origin backtest (``settings.forecast.folds`` folds, one day each, the last
days of the data): the model is fitted on the hours before the fold and scored on
every hour boundary of the fold by

* NDCG@10 of the predicted next-hour reads against the real ones, and
* stale-read exposure of a sync run at the boundary: the pending set is every
  segment with bytes changed in the hour just ended, each shipping those bytes; the
  link bandwidth is set so the whole set takes exactly one hour (so the figure does
  not depend on one region's link); reads of the next hour are counted in their
  15-minute bins, prorated inside a bin (:func:`forecasting.exposure.exposure_from_bins`).
  Orderings: alphabetical, oldest change first (earliest 15-minute bin with a
  change), smallest first, last-hour reads, the model and the oracle (real next-hour
  reads); the last three use Smith's rule (reads / seconds on the link).

The registered score is ``1 - captured`` of the model (lower is better); the champion
gate of :mod:`models.mlflow_registry` moves the alias only when it improves.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import ndcg_score

from features.segment_features import (
    SegmentPanel,
    build_panel,
    feature_names,
    segment_features,
    segment_targets,
)
from forecasting.errors import DataValidationError
from forecasting.exposure import (
    POLICIES,
    alphabetical_order,
    ascending_order,
    captured,
    completion_times,
    exposure_from_bins,
    smith_order,
)
from forecasting.lake import Lake
from forecasting.settings import Settings
from models.hot_segments import HotSegmentModel, predict_next_window
from models.mlflow_hot_segments import HotSegmentsPyfunc
from models.mlflow_registry import HOT_SEGMENTS_MODEL, Registry

log = logging.getLogger(__name__)

WINDOW = "1h"
BIN = "15min"
SCORE_NAME = "uncaptured_exposure"
SEGMENT_SCORES = "segment_scores"
MIN_HISTORY_WINDOWS = 24
#: training uses the most recent this many windows (3 weeks of hours): popularity drifts
TRAIN_WINDOWS = 21 * 24


def default_model() -> HotSegmentModel:
    """The estimator the job trains (100 rounds keep `make train` fast)."""
    return HotSegmentModel(n_estimators=100, learning_rate=0.1)


@dataclass
class PriorityEvaluation:
    """Exposure per ordering over the backtest's sync runs, and the model's rank quality."""

    exposure: dict[str, float]
    captured: dict[str, float]
    ndcg_at_10: float
    runs: int

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            name: {"exposure": self.exposure[name], "captured": self.captured[name]}
            for name in self.exposure
        }


@dataclass
class HotSegmentsSummary:
    """What ``train_hot_segments`` did."""

    evaluation: PriorityEvaluation
    score: float
    version: str | None = None
    alias: str | None = None
    scores_written: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """A flat summary for tables and logs."""
        return {
            "model": "replicast-hot-segments",
            "version": self.version,
            "alias": self.alias,
            "score_1_minus_captured": self.score,
            "captured_model": self.evaluation.captured.get("model"),
            "captured_last_window": self.evaluation.captured.get("last_window"),
            "ndcg_at_10": self.evaluation.ndcg_at_10,
            "sync_runs": self.evaluation.runs,
            "segment_scores_written": self.scores_written,
        }


@dataclass
class _ClusterData:
    cluster: str
    panel: SegmentPanel
    fine: SegmentPanel  # 15-minute panel for exposure
    fine_offset: int  # index in ``fine`` of the hourly panel's first window
    features: pd.DataFrame
    targets: pd.DataFrame


def cluster_timezones(settings: Settings) -> dict[str, str]:
    """Each cluster's local timezone: its primary region's."""
    return {
        c.name: settings.fleet.region(c.primary_region).timezone for c in settings.fleet.clusters
    }


def prepare(access: pd.DataFrame, settings: Settings) -> list[_ClusterData]:
    """Hourly panels, features and targets of every cluster of ``segment_access`` rows."""
    if access.empty:
        raise DataValidationError(
            "segment_access is empty in the lake: run `replicast ingest --source sample` first"
        )
    zones = cluster_timezones(settings)
    out = []
    for cluster, rows in access.groupby("cluster", sort=True):
        panel = build_panel(rows, window=WINDOW)
        fine = build_panel(rows, window=BIN)
        offset = int((panel.starts[0] - fine.starts[0]) / pd.Timedelta(BIN))
        at = range(min(MIN_HISTORY_WINDOWS, panel.n_windows - 1), panel.n_windows)
        feats = segment_features(panel, at, timezone=zones.get(str(cluster)))
        out.append(
            _ClusterData(str(cluster), panel, fine, offset, feats, segment_targets(panel, feats))
        )
    return out


def _run_exposure(
    data: _ClusterData, t: int, predicted: dict[str, float]
) -> dict[str, float] | None:
    """Exposure of every ordering for the sync run at the end of hour ``t``."""
    panel = data.panel
    pending = np.flatnonzero(panel.changed[:, t] > 0)
    if len(pending) < 2 or t + 1 >= panel.n_windows:
        return None
    names = panel.segments[pending].tolist()
    size = panel.changed[pending, t]
    cost = size / size.sum() * 3600.0
    per_hour = int(pd.Timedelta(WINDOW) / pd.Timedelta(BIN))
    lo = data.fine_offset + (t + 1) * per_hour
    fine_rows = np.searchsorted(data.fine.segments, panel.segments[pending])
    reads_next = data.fine.reads[fine_rows, lo : lo + per_hour]
    first_bin = data.fine.changed[fine_rows, lo - per_hour : lo]
    oldest = np.where(first_bin > 0, np.arange(per_hour)[None, :], per_hour).min(axis=1)
    model_w = np.array([predicted.get(name, 0.0) for name in names])
    orders = {
        "alphabetical": alphabetical_order(names),
        "oldest_change": ascending_order(names, oldest),
        "smallest": ascending_order(names, size),
        "last_window": smith_order(names, panel.reads[pending, t], cost),
        "model": smith_order(names, model_w, cost),
        "oracle": smith_order(names, panel.reads[pending, t + 1], cost),
    }
    bin_s = pd.Timedelta(BIN).total_seconds()
    return {
        name: exposure_from_bins(completion_times(order, cost), reads_next, bin_s)
        for name, order in orders.items()
    }


def backtest_hot_segments(
    clusters: list[_ClusterData],
    *,
    folds: int = 3,
    fold_hours: int = 24,
    model_factory: Callable[[], HotSegmentModel] | None = None,
) -> PriorityEvaluation:
    """Rolling-origin backtest over the last ``folds`` x ``fold_hours`` hours (see module doc)."""
    factory = model_factory or default_model
    names = feature_names(timed=True)
    n_windows = min(c.panel.n_windows for c in clusters)
    end = n_windows - 1  # the last window has no next-hour target
    origins = [end - k * fold_hours for k in range(folds, 0, -1)]
    if origins[0] <= MIN_HISTORY_WINDOWS + fold_hours:
        raise DataValidationError(
            f"segment_access covers {n_windows} hours; the backtest needs more than "
            f"{MIN_HISTORY_WINDOWS + (folds + 1) * fold_hours} (reduce forecast.folds or "
            "ingest more history)"
        )
    totals = dict.fromkeys(POLICIES, 0.0)
    ndcgs: list[float] = []
    runs = 0
    for origin in origins:
        train_x, train_y = [], []
        for c in clusters:
            t = c.features["t"]
            mask = (t < origin - 1) & (t >= origin - 1 - TRAIN_WINDOWS) & c.targets["reads"].notna()
            train_x.append(c.features.loc[mask, names])
            train_y.append(c.targets.loc[mask, ["reads"]])  # the backtest ranks by reads only
        model = factory().fit(pd.concat(train_x), pd.concat(train_y))
        for c in clusters:
            for t in range(origin, min(origin + fold_hours, c.panel.n_windows - 1)):
                rows = c.features["t"] == t
                feats = c.features.loc[rows]
                if feats.empty:
                    continue
                pred = model.predict(feats[names])[:, 0]
                real = c.targets.loc[rows, "reads"].to_numpy()
                if len(real) > 1 and real.sum() > 0:
                    ndcgs.append(float(ndcg_score(real[None, :], pred[None, :], k=10)))
                run = _run_exposure(c, t, dict(zip(feats["segment"], pred, strict=True)))
                if run is None:
                    continue
                runs += 1
                for name, value in run.items():
                    totals[name] += value
    alpha, oracle = totals["alphabetical"], totals["oracle"]
    return PriorityEvaluation(
        exposure=totals,
        captured={name: captured(alpha, value, oracle) for name, value in totals.items()},
        ndcg_at_10=float(np.mean(ndcgs)) if ndcgs else math.nan,
        runs=runs,
    )


def fit_final(clusters: list[_ClusterData]) -> HotSegmentModel:
    """The model fitted on the last ``TRAIN_WINDOWS`` windows with a known next hour."""
    names = feature_names(timed=True)
    xs, ys = [], []
    for c in clusters:
        mask = c.targets["reads"].notna() & (c.features["t"] >= c.panel.n_windows - TRAIN_WINDOWS)
        xs.append(c.features.loc[mask, names])
        ys.append(c.targets.loc[mask, ["reads", "bytes_changed"]])
    return default_model().fit(pd.concat(xs), pd.concat(ys))


def score_segments(
    model: HotSegmentModel, access: pd.DataFrame, settings: Settings, model_version: str
) -> pd.DataFrame:
    """``segment_scores`` rows: each segment's predicted reads/bytes changed for the next hour."""
    last = pd.to_datetime(access["ts"], utc=True).max()
    recent = access[pd.to_datetime(access["ts"], utc=True) > last - pd.Timedelta(days=8)]
    scores = predict_next_window(
        model, recent, window=WINDOW, timezones=cluster_timezones(settings)
    )
    return scores.assign(model_version=model_version)[
        ["ts", "cluster", "segment", "pred_reads", "pred_bytes_changed", "model_version"]
    ]


def plot_exposure(evaluation: PriorityEvaluation):  # noqa: ANN201 - a matplotlib Figure
    """Bar chart of exposure per ordering (matplotlib Agg figure)."""
    import matplotlib  # deferred: matplotlib only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(evaluation.exposure)
    values = [evaluation.exposure[n] for n in names]
    colors = ["tab:green" if n == "model" else "tab:gray" for n in names]
    ax.bar(names, values, color=colors)
    ax.set_ylabel("stale reads (sum over sync runs)")
    ax.set_title(f"Stale-read exposure per ordering ({evaluation.runs} sync runs)")
    for i, name in enumerate(names):
        ax.annotate(
            f"{evaluation.captured[name]:.2f}", (i, values[i]), ha="center", va="bottom", fontsize=8
        )
    fig.tight_layout()
    return fig


def log_evaluation(evaluation: PriorityEvaluation) -> None:
    """Log the priority evaluation (metrics + exposure plot) into the active MLflow run."""
    if mlflow.active_run() is None:
        return
    metrics = {f"priority.{n}.exposure": v for n, v in evaluation.exposure.items()}
    metrics.update(
        {f"priority.{n}.captured": v for n, v in evaluation.captured.items() if not math.isnan(v)}
    )
    metrics["hot_segments.ndcg_at_10"] = evaluation.ndcg_at_10
    mlflow.log_metrics({k.replace("@", "_"): float(v) for k, v in metrics.items()})
    import matplotlib.pyplot as plt  # deferred: matplotlib only when a plot is drawn

    fig = plot_exposure(evaluation)
    mlflow.log_figure(fig, "decisions/priority_exposure.png")
    plt.close(fig)


def train_hot_segments(
    settings: Settings, *, lake: Lake, register: bool = True, write_scores: bool = True
) -> HotSegmentsSummary:
    """Backtest, register (champion gate) and score the hot-segment model.

    Args:
        settings: fleet (timezones) and forecast settings (folds).
        lake: reads ``segment_access``; writes ``segment_scores``.
        register: log and register the model in MLflow: inside the caller's active run,
            else in a new run of the tracking store of ``settings``.
        write_scores: write next-hour ``segment_scores`` to the lake.

    Raises:
        DataValidationError: no or too little ``segment_access`` history.
    """
    access = lake.read("segment_access")
    clusters = prepare(access, settings)
    evaluation = backtest_hot_segments(clusters, folds=settings.forecast.folds)
    score = 1.0 - evaluation.captured["model"]
    if math.isnan(score):
        score = 1.0
    log.info(
        "hot segments: captured %.3f (last-window %.3f), NDCG@10 %.3f over %d sync runs",
        evaluation.captured["model"],
        evaluation.captured["last_window"],
        evaluation.ndcg_at_10,
        evaluation.runs,
    )
    model = fit_final(clusters)
    summary = HotSegmentsSummary(evaluation=evaluation, score=score)
    version = "unregistered"
    if register:
        registry = Registry.connect(settings)
        log_evaluation(evaluation)
        last = pd.to_datetime(access["ts"], utc=True).max()
        example = access[pd.to_datetime(access["ts"], utc=True) > last - pd.Timedelta(hours=6)]
        example = example[example["segment"].isin(example["segment"].unique()[:3])]
        gate = registry.register_with_gate(
            name=HOT_SEGMENTS_MODEL,
            python_model=HotSegmentsPyfunc(
                model, window=WINDOW, timezones=cluster_timezones(settings)
            ),
            input_example=example.reset_index(drop=True),
            score=score,
            score_name=SCORE_NAME,
            lower_is_better=True,
            tags={"ndcg_at_10": f"{evaluation.ndcg_at_10:.4f}"},
        )
        summary.version, summary.alias = gate.version, gate.alias
        version = gate.version
    if write_scores:
        scores = score_segments(model, access, settings, version)
        lake.write(SEGMENT_SCORES, scores)
        summary.scores_written = len(scores)
    return summary
