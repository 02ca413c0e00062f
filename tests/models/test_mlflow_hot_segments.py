from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from features.segment_features import (
    build_panel,
    feature_names,
    segment_features,
    segment_targets,
)
from models.hot_segments import HotSegmentModel
from models.mlflow_hot_segments import HotSegmentsPyfunc


def _access(hours: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ts = pd.date_range("2026-03-02", periods=hours * 4, freq="15min", tz="UTC")
    rows = []
    for cluster in ("orders", "users"):
        for k, segment in enumerate(("a", "b", "c")):
            reads = rng.poisson(10 * (k + 1), len(ts)).astype(float)
            rows.append(
                pd.DataFrame(
                    {
                        "ts": ts,
                        "cluster": cluster,
                        "segment": segment,
                        "reads": reads,
                        "writes": reads / 10,
                        "bytes_changed": reads * 100,
                        "size_bytes": 1e6,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def _fitted(access: pd.DataFrame) -> HotSegmentModel:
    panel = build_panel(access[access["cluster"] == "orders"])
    feats = segment_features(panel, range(24, panel.n_windows - 1))
    targets = segment_targets(panel, feats)
    return HotSegmentModel(n_estimators=20).fit(feats[feature_names(True)], targets)


def test_pyfunc_scores_every_segment_of_every_cluster_for_the_next_window() -> None:
    access = _access()
    wrapper = HotSegmentsPyfunc(_fitted(access), timezones={"orders": "America/New_York"})
    out = wrapper.predict(None, access)
    assert len(out) == 6
    assert set(out.columns) >= {"ts", "cluster", "segment", "pred_reads", "pred_bytes_changed"}
    assert (out["pred_reads"] >= 0).all()
    expected = (access["ts"].max().floor("1h") + pd.Timedelta(hours=1)).isoformat()
    assert pd.Timestamp(out["ts"].iloc[0]).isoformat() == expected
    # the busiest segment ranks first in each cluster
    top = out.sort_values("pred_reads").groupby("cluster")["segment"].last()
    assert set(top) == {"c"}


def test_pyfunc_rejects_bad_input_with_a_clear_message() -> None:
    access = _access()
    wrapper = HotSegmentsPyfunc(_fitted(access), timezones={})
    with pytest.raises(MlflowException, match="reads"):
        wrapper.predict(None, access.drop(columns="reads"))
    with pytest.raises(MlflowException, match="empty"):
        wrapper.predict(None, access.iloc[:0])
