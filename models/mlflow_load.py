"""The pyfunc wrapper of the load forecaster registered as ``replicast-load``.

One :class:`LoadForecastModel` holds, per target, the fitted champion
``Forecaster`` and the forecast config (horizon, quantiles, freq). MLflow pickles
it (cloudpickle) with everything it holds, so loading needs no training data.

Two ways to predict:

- ``predict(context, model_input, params=None)``: the pyfunc entry point, what
  ``mlflow.pyfunc.load_model("models:/replicast-load@champion").predict(df)`` calls.
  ``model_input`` is a plain DataFrame of recent history: ``series_id``, ``ts``,
  ``y`` and either a ``target`` column or ``params={"target": ...}`` (optional when
  the model holds a single target). Optional params: ``horizon`` (1..trained
  horizon), ``quantiles`` (a subset of the trained ones). Returns ``target,
  series_id, ts, step`` and one ``q<level>`` column per quantile.
- :meth:`LoadForecastModel.forecast_arrays`: the fast path without DataFrames for the
  HTTP service (``loaded.pyfunc.unwrap_python_model().forecast_arrays(...)``). It
  validates the request and calls the estimator's own ``forecast_arrays``
  (:class:`models.array_forecaster.ArrayForecaster`) when it has one, so the fast
  path and ``predict`` run the same prediction code; other estimators get a
  one-series DataFrame and their ``predict``.

Bad input raises ``MlflowException`` with ``INVALID_PARAMETER_VALUE`` and a
message naming the column or parameter and what to send instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from forecasting.errors import ReplicastError
from forecasting.forecaster import SERIES, STEP, TS, Forecaster, Y, quantile_column
from models.array_forecaster import ArrayForecaster

logger = logging.getLogger(__name__)

TARGET = "target"


@dataclass
class TargetModel:
    """The fitted champion of one target and what it was judged by."""

    model_name: str
    forecaster: Forecaster
    mase: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class LoadForecastModel(PythonModel):
    """Per-target champion forecasters behind one pyfunc.

    Args:
        models: target name -> :class:`TargetModel` (fitted).
        horizon: the trained horizon (max steps ahead).
        quantiles: the trained quantile levels.
        freq: the series frequency (pandas alias, e.g. ``"1h"``).
        min_history: fewest history points a series needs (default one week + 1 day
            at hourly freq); shorter series are rejected with a clear error.
    """

    #: input columns the signature marks optional (see ``models.mlflow_registry``)
    optional_input_columns = (TARGET,)

    def __init__(
        self,
        models: Mapping[str, TargetModel],
        *,
        horizon: int,
        quantiles: Sequence[float],
        freq: str = "1h",
        min_history: int = 24,
    ) -> None:
        self.models = dict(models)
        self.horizon = int(horizon)
        self.quantiles = tuple(sorted(float(q) for q in quantiles))
        self.freq = freq
        self.min_history = int(min_history)

    # -- pyfunc ---------------------------------------------------------------
    @property
    def default_params(self) -> dict[str, Any]:
        """The params ``predict`` accepts, with their defaults (goes into the signature)."""
        return {TARGET: "", "horizon": self.horizon, "quantiles": list(self.quantiles)}

    @property
    def targets(self) -> list[str]:
        return sorted(self.models)

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Forecast every series of ``model_input`` (see the module docstring).

        Args:
            context: the MLflow context (unused).
            model_input: recent history ``series_id, ts, y`` [+ ``target``].
            params: optional ``target``, ``horizon``, ``quantiles``.

        Returns:
            ``target, series_id, ts, step, q...`` (one row per series and step).

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for bad input or params.
        """
        params = dict(params or {})
        horizon = self._horizon(params.get("horizon"))
        quantiles = self._quantiles(params.get("quantiles"))
        history = self._history(model_input)
        param_target = params.get(TARGET) or None
        if TARGET in history.columns and history[TARGET].notna().all():
            if param_target is not None:
                history = history.assign(**{TARGET: param_target})
        else:
            target = param_target or self._only_target()
            history = history.assign(**{TARGET: target})
        parts = []
        for target, part in history.groupby(TARGET, sort=True):
            model = self._model(str(target))
            frame = self._regular(part[[SERIES, TS, Y]])
            try:
                pred = model.forecaster.predict(frame, horizon, quantiles)
            except (ReplicastError, ValueError, KeyError) as exc:
                raise _invalid(f"target {target!r}: cannot forecast this history: {exc}") from exc
            pred = pred[[SERIES, TS, STEP, *(quantile_column(q) for q in quantiles)]]
            parts.append(pred.assign(**{TARGET: str(target)}))
        out = pd.concat(parts, ignore_index=True)
        cols = [TARGET, SERIES, TS, STEP, *(quantile_column(q) for q in quantiles)]
        out = out[cols]
        out[STEP] = out[STEP].astype("int64")
        return out.reset_index(drop=True)

    # -- fast path --------------------------------------------------------------
    def forecast_arrays(
        self,
        target: str,
        series_id: str,
        ts_last: Any,
        values: np.ndarray,
        horizon: int | None = None,
        quantiles: Sequence[float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Forecast one series from a numpy array of its recent values (no DataFrame input).

        Args:
            target: which target's model to use (e.g. ``"qps_total"``).
            series_id: the series key (``"<cluster>/<region>"``); global models use it
                only as a label, per-series models (Prophet) look it up.
            ts_last: timestamp of ``values[-1]`` (UTC; str, datetime, np.datetime64 or
                pd.Timestamp; naive means UTC).
            values: 1-D float array of the most recent values, oldest first, one per
                ``freq`` step ending at ``ts_last``; NaN marks a missing step.
            horizon: steps ahead (1..trained horizon). Defaults to the trained horizon.
            quantiles: levels, a subset of the trained ones. Defaults to all.

        Returns:
            ``{"ts": datetime64[ns] (UTC, naive) array, "step": int64 array,
            "q<level>": float64 array per quantile}``, each of length ``horizon``.

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for an unknown target, a bad
                horizon/quantile or too short a history.
        """
        horizon = self._horizon(horizon)
        levels = self._quantiles(quantiles)
        model = self._model(target)
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size < self.min_history or not np.isfinite(values).any():
            raise _invalid(
                f"values: {values.size} points for series {series_id!r}; send at least "
                f"{self.min_history} recent values (one per {self.freq})"
            )
        last = _utc_naive(ts_last)
        forecaster = model.forecaster
        if isinstance(forecaster, ArrayForecaster):
            try:
                return forecaster.forecast_arrays(series_id, last, values, horizon, levels)
            except (ReplicastError, ValueError, KeyError) as exc:
                raise _invalid(f"series {series_id!r}: {exc}") from exc
        step = np.timedelta64(pd.Timedelta(self.freq).value, "ns")
        stamps = last - step * np.arange(values.size - 1, -1, -1)
        history = pd.DataFrame(
            {SERIES: series_id, TS: pd.DatetimeIndex(stamps).tz_localize("UTC"), Y: values}
        )
        try:
            pred = forecaster.predict(history, horizon, levels)
        except (ReplicastError, ValueError, KeyError) as exc:
            raise _invalid(f"series {series_id!r}: cannot forecast: {exc}") from exc
        pred = pred.sort_values(STEP)
        out = {
            "ts": last + step * np.arange(1, horizon + 1),
            "step": np.arange(1, horizon + 1, dtype=np.int64),
        }
        for q in levels:
            out[quantile_column(q)] = pred[quantile_column(q)].to_numpy(np.float64)
        return out

    # -- validation -------------------------------------------------------------
    def _only_target(self) -> str:
        if len(self.models) == 1:
            return next(iter(self.models))
        raise _invalid(
            f"no target given: add a 'target' column or params={{'target': ...}}; "
            f"this model forecasts {self.targets}"
        )

    def _model(self, target: str) -> TargetModel:
        try:
            return self.models[target]
        except KeyError:
            raise _invalid(
                f"target {target!r} unknown; this model forecasts {self.targets}"
            ) from None

    def _horizon(self, value: Any) -> int:
        if value is None:
            return self.horizon
        try:
            horizon = int(value)
        except (TypeError, ValueError):
            raise _invalid(f"horizon: {value!r} is not an integer") from None
        if not 1 <= horizon <= self.horizon:
            raise _invalid(f"horizon: {horizon} is outside 1..{self.horizon} (the trained horizon)")
        return horizon

    def _quantiles(self, value: Any) -> tuple[float, ...]:
        if value is None:
            return self.quantiles
        try:
            levels = sorted({float(q) for q in np.atleast_1d(np.asarray(value, dtype=float))})
        except (TypeError, ValueError):
            raise _invalid(f"quantiles: {value!r} is not a list of numbers") from None
        unknown = [q for q in levels if not any(np.isclose(q, t) for t in self.quantiles)]
        if unknown or not levels:
            raise _invalid(
                f"quantiles: {unknown or value} not trained; choose from {list(self.quantiles)}"
            )
        return tuple(t for t in self.quantiles if any(np.isclose(q, t) for q in levels))

    def _history(self, model_input: Any) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            raise _invalid(
                f"model_input must be a DataFrame with columns series_id, ts, y; "
                f"got {type(model_input).__name__}"
            )
        missing = [c for c in (SERIES, TS, Y) if c not in model_input.columns]
        if missing:
            raise _invalid(
                f"model_input lacks column(s) {missing}; send recent history as columns "
                "series_id, ts, y (+ target)"
            )
        if model_input.empty:
            raise _invalid("model_input is empty; send at least one series of recent history")
        frame = model_input.copy()
        try:
            ts = pd.to_datetime(frame[TS], utc=False)
        except (TypeError, ValueError) as exc:
            raise _invalid(f"column 'ts': not timestamps ({exc})") from None
        frame[TS] = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
        y = pd.to_numeric(frame[Y], errors="coerce")
        bad = frame.index[y.isna() & frame[Y].notna()]
        if len(bad):
            raise _invalid(f"column 'y': row(s) {list(bad[:5])} are not numbers")
        frame[Y] = y.astype(float)
        if frame[SERIES].isna().any():
            raise _invalid("column 'series_id': missing values")
        frame[SERIES] = frame[SERIES].astype(str)
        counts = frame.groupby(SERIES)[Y].count()
        short = counts[counts < self.min_history]
        if len(short):
            raise _invalid(
                f"series {list(short.index[:5])}: fewer than {self.min_history} observed "
                f"values; send more recent history (one row per {self.freq})"
            )
        return frame

    def _regular(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Floor to ``freq``, average duplicates and fill gaps with NaN rows."""
        frame = frame.assign(**{TS: frame[TS].dt.floor(self.freq)})
        frame = frame.groupby([SERIES, TS], sort=True, as_index=False)[Y].mean()
        parts = []
        for sid, part in frame.groupby(SERIES, sort=True):
            grid = pd.date_range(part[TS].iloc[0], part[TS].iloc[-1], freq=self.freq, name=TS)
            values = part.set_index(TS)[Y].reindex(grid).to_numpy(float)
            parts.append(pd.DataFrame({SERIES: sid, TS: grid, Y: values}))
        return pd.concat(parts, ignore_index=True)


def _utc_naive(value: Any) -> np.datetime64:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.value, "ns")
