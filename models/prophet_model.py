"""Prophet per series (daily + weekly seasonality), fitted in parallel processes.

Each series gets its own Prophet model (MAP fit, no MCMC, no uncertainty
sampling, which is slow). Quantiles are the Prophet mean plus the empirical
quantiles of the series' in-sample residuals (newest ``max_residuals``), so
every level exists and none cross. cmdstanpy's chatter is silenced.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from forecasting.parallel import process_map
from models.fitted import check_fitted
from models.panel import check_history, forecast_frame, split_series

logger = logging.getLogger(__name__)


def _quiet() -> None:
    # cmdstanpy re-arms its own INFO handler whenever its logger has no handler at all,
    # so give it a null one instead of only raising the level.
    # prophet.plot logs "Importing plotly failed" at ERROR on import: call this first.
    for name, level in (
        ("cmdstanpy", logging.ERROR),
        ("prophet", logging.ERROR),
        ("prophet.plot", logging.CRITICAL),
    ):
        log = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
            log.addHandler(logging.NullHandler())
        log.setLevel(level)
        log.propagate = False


def _fit_one(ds: np.ndarray, y: np.ndarray, max_residuals: int) -> tuple[str, np.ndarray]:
    """Fit one series; returns the model as JSON and its in-sample residuals."""
    _quiet()
    from prophet import Prophet
    from prophet.serialize import model_to_json

    _quiet()  # again after the imports: cmdstanpy sets its own level when imported

    frame = pd.DataFrame({"ds": pd.to_datetime(ds), "y": y}).dropna()
    model = Prophet(
        daily_seasonality=True,
        weekly_seasonality=True,
        yearly_seasonality=False,
        uncertainty_samples=0,
    )
    model.fit(frame)
    fitted = model.predict(frame[["ds"]])["yhat"].to_numpy()
    residuals = (frame["y"].to_numpy() - fitted)[-max_residuals:]
    return model_to_json(model), residuals


class ProphetForecaster:
    """One Prophet model per series; quantiles from in-sample residuals.

    Args:
        freq: step of the series (pandas alias).
        n_jobs: worker processes for the fits (at most 2 is kind to a shared machine).
        max_residuals: newest in-sample residuals kept per series.
    """

    def __init__(self, freq: str = "1h", n_jobs: int = 2, max_residuals: int = 1000) -> None:
        self.freq = freq
        self.n_jobs = n_jobs
        self.max_residuals = max_residuals

    def fit(self, history: pd.DataFrame) -> Self:
        """Fit one Prophet per series (in parallel); returns ``self``."""
        check_history(history, type(self).__name__)
        _quiet()
        series = [s for s in split_series(history, self.freq) if np.isfinite(s.y).sum() >= 2]
        # Prophet wants naive timestamps; the index is UTC, so drop the zone.
        args = [(s.ts.tz_localize(None).to_numpy(), s.y) for s in series]
        results = process_map(
            _fit_one,
            [a[0] for a in args],
            [a[1] for a in args],
            [self.max_residuals] * len(args),
            n_jobs=self.n_jobs,
        )
        self.models_: dict[str, str] = {}
        self.residuals_: dict[str, np.ndarray] = {}
        for s, (model_json, residuals) in zip(series, results, strict=True):
            self.models_[s.series_id] = model_json
            self.residuals_[s.series_id] = residuals
        return self

    def predict(
        self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]
    ) -> pd.DataFrame:
        """Forecast each series of ``history`` from its last timestamp."""
        from prophet.serialize import model_from_json

        check_fitted(self, "models_")
        check_history(history, type(self).__name__)
        levels = sorted(quantiles)
        series = split_series(history, self.freq)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq))
        out = np.empty((len(series), horizon, len(levels)))
        for i, s in enumerate(series):
            if s.series_id not in self.models_:
                single = pd.DataFrame({"series_id": s.series_id, "ts": s.ts, "y": s.y})
                extra = ProphetForecaster(self.freq, 1, self.max_residuals).fit(single)
                self.models_.update(extra.models_)
                self.residuals_.update(extra.residuals_)
            model = model_from_json(self.models_[s.series_id])
            future = pd.DataFrame(
                {
                    "ds": pd.DatetimeIndex(
                        s.last_ts + np.arange(1, horizon + 1) * step
                    ).tz_localize(None)
                }
            )
            mean = model.predict(future)["yhat"].to_numpy()
            residuals = self.residuals_[s.series_id]
            offsets = np.quantile(residuals, levels) if residuals.size else np.zeros(len(levels))
            out[i] = mean[:, None] + offsets[None, :]
        return forecast_frame(series, out, levels, self.freq)
