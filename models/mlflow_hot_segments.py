"""The pyfunc wrapper of the hot-segment model (``replicast-hot-segments``).

``predict`` takes a plain DataFrame of recent ``segment_access`` rows (``cluster,
segment, ts, reads`` [+ ``writes, bytes_changed, size_bytes``]) and returns, per
cluster and segment, the predicted reads and bytes changed of the next window
(``ts`` = its start) with the columns of the ``segment_scores`` dataset but
``model_version`` (the caller knows the registered version).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException
from mlflow.pyfunc import PythonModel

from forecasting.errors import ReplicastError
from models.hot_segments import HotSegmentModel, predict_next_window

INPUT_COLUMNS = ("cluster", "segment", "ts", "reads")


class HotSegmentsPyfunc(PythonModel):
    """Wraps a fitted :class:`HotSegmentModel` with its window and the clusters' timezones."""

    #: input columns the signature marks optional (see ``models.mlflow_registry``)
    optional_input_columns = ("writes", "bytes_changed", "size_bytes")

    def __init__(
        self, model: HotSegmentModel, *, window: str = "1h", timezones: Mapping[str, str]
    ) -> None:
        self.model = model
        self.window = window
        self.timezones = dict(timezones)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score every segment of ``model_input`` for the window after its last row."""
        if not isinstance(model_input, pd.DataFrame):
            raise MlflowException(
                "hot-segment model: input must be a DataFrame of segment_access rows",
                error_code=INVALID_PARAMETER_VALUE,
            )
        missing = [c for c in INPUT_COLUMNS if c not in model_input.columns]
        if missing:
            raise MlflowException(
                f"hot-segment model: input lacks column(s) {missing}; need {list(INPUT_COLUMNS)}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        history = model_input.assign(ts=pd.to_datetime(model_input["ts"], utc=True))
        try:
            out = predict_next_window(
                self.model, history, window=self.window, timezones=self.timezones
            )
        except ReplicastError as exc:
            raise MlflowException(
                f"hot-segment model: {exc}", error_code=INVALID_PARAMETER_VALUE
            ) from exc
        return out.assign(ts=out["ts"].astype(str))
