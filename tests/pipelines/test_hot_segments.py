from __future__ import annotations

import math

import pandas as pd
import pytest

from forecasting.errors import DataValidationError
from forecasting.lake import Lake
from forecasting.settings import Settings
from models.mlflow_registry import HOT_SEGMENTS_MODEL, Registry
from pipelines.hot_segments import prepare, train_hot_segments
from pipelines.simulate import simulate_fleet


def _ingest_tiny_fleet(settings: Settings, lake: Lake, days: int = 9) -> None:
    fleet = simulate_fleet(
        settings.fleet,
        start="2026-03-02",
        days=days,
        seed=3,
        nodes_per_region=1,
        segments_per_cluster=8,
    )
    lake.write("segment_access", fleet.segment_access)
    lake.write("node_metrics", fleet.node_metrics)


def test_train_backtests_and_writes_segment_scores(settings: Settings, lake: Lake) -> None:
    _ingest_tiny_fleet(settings, lake)
    summary = train_hot_segments(settings, lake=lake, register=False)
    ev = summary.evaluation
    assert ev.runs > 0
    assert set(ev.exposure) == {
        "alphabetical",
        "oldest_change",
        "smallest",
        "last_window",
        "model",
        "oracle",
    }
    assert ev.captured["alphabetical"] == 0 and ev.captured["oracle"] == 1
    assert ev.exposure["model"] < ev.exposure["alphabetical"]
    assert 0 < ev.ndcg_at_10 <= 1
    assert summary.score == pytest.approx(1 - ev.captured["model"])
    assert summary.as_dict()["segment_scores_written"] == summary.scores_written
    scores = lake.read("segment_scores")
    assert len(scores) == summary.scores_written > 0
    assert {"ts", "cluster", "segment", "pred_reads", "pred_bytes_changed", "model_version"} <= set(
        scores.columns
    )
    assert (scores["pred_reads"] >= 0).all()
    assert scores["ts"].nunique() <= len(settings.fleet.clusters)


@pytest.mark.slow
def test_registers_with_the_champion_gate(settings: Settings, lake: Lake) -> None:
    _ingest_tiny_fleet(settings, lake)
    registry = Registry.connect(settings)
    with registry.run():
        first = train_hot_segments(settings, lake=lake)
    assert first.alias == "champion"
    loaded = registry.load_champion(HOT_SEGMENTS_MODEL)
    assert loaded.version == first.version
    recent = lake.read("segment_access")
    recent = recent[recent["ts"] > recent["ts"].max() - pd.Timedelta(days=2)]
    pred = loaded.pyfunc.predict(recent)
    assert {"cluster", "segment", "pred_reads", "pred_bytes_changed"} <= set(pred.columns)
    assert len(pred) == recent.groupby(["cluster", "segment"]).ngroups
    assert math.isfinite(loaded.score)


def test_too_little_history_is_a_clear_error(settings: Settings, lake: Lake) -> None:
    with pytest.raises(DataValidationError, match="ingest"):
        prepare(lake.read("segment_access"), settings)
    _ingest_tiny_fleet(settings, lake, days=3)
    with pytest.raises(DataValidationError, match="hours"):
        train_hot_segments(settings, lake=lake, register=False)
