"""The champion load model held in memory, refreshed in the background, swapped atomically.

:class:`ModelCache` keeps one immutable :class:`ServingModel` (model version,
its array forecaster and the cached history of the known series). A refresh
asks the registry which version the ``champion`` alias points at; a new version
is loaded beside the old one and swapped in with one reference assignment, so a
request that read ``cache.current`` uses exactly one version from start to end.

Readiness is honest both ways (:meth:`ModelCache.readiness`): an unreachable
registry, a refused (tampered) champion or a failed lake read leave the last
model and its last good history serving, reported as ``degraded``; the service
is not ready only when no model serves, or when the lake could not be read at
all since the model was loaded (known series would otherwise answer 404).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd

from forecasting.errors import (
    DataValidationError,
    ModelNotFoundError,
    ReplicastError,
    UnknownKeyError,
)
from forecasting.lake import Lake
from forecasting.redact import redact
from forecasting.settings import Settings
from models.artifact_manifest import ModelIntegrityError
from serving.http.metrics import ServiceMetrics
from serving.http.services.series_cache import (
    LakeReadError,
    SeriesCache,
    lake_stamp,
    load_series_cache,
)

logger = logging.getLogger(__name__)

LOAD_MODEL = "replicast-load"

#: Memoised known-series forecasts kept per model version (cleared when full).
MEMO_LIMIT = 20_000


class ArrayForecaster(Protocol):
    """The fast path of the load pyfunc (``models.mlflow_load.LoadForecastModel``)."""

    horizon: int
    quantiles: tuple[float, ...]
    freq: str
    min_history: int

    @property
    def targets(self) -> list[str]: ...

    def forecast_arrays(
        self,
        target: str,
        series_id: str,
        ts_last: Any,
        values: np.ndarray,
        horizon: int | None = None,
        quantiles: Sequence[float] | None = None,
    ) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class Champion:
    """What a registry loader returns: the version and its array forecaster."""

    name: str
    version: str
    forecaster: ArrayForecaster


@dataclass(frozen=True)
class ServingModel:
    """One loaded model version and the series history it forecasts from (immutable)."""

    name: str
    version: str
    forecaster: ArrayForecaster
    series: SeriesCache
    loaded_at: float

    @cached_property
    def step_ns(self) -> int:
        """The model's series step in nanoseconds."""
        return int(pd.Timedelta(self.forecaster.freq).value)

    @cached_property
    def targets(self) -> frozenset[str]:
        return frozenset(self.forecaster.targets)

    @cached_property
    def _memo(self) -> dict[tuple[Any, ...], dict[str, np.ndarray]]:
        return {}

    def forecast(
        self,
        target: str,
        series_id: str,
        ts_last: np.datetime64,
        values: np.ndarray,
        horizon: int,
        quantiles: Sequence[float] | None,
    ) -> dict[str, np.ndarray]:
        """Forecast one series with this version; bad input becomes a replicast error.

        Raises:
            UnknownKeyError: the model does not forecast ``target``.
            DataValidationError: the model rejects the input (too short, bad horizon/quantile).
        """
        if target not in self.targets:
            raise UnknownKeyError(
                f"target: model {self.name} version {self.version} does not forecast "
                f"{target!r}; it forecasts {sorted(self.targets)}"
            )
        try:
            out = self.forecaster.forecast_arrays(
                target, series_id, ts_last, values, horizon, quantiles
            )
        except Exception as exc:
            if getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE":
                raise DataValidationError(str(getattr(exc, "message", exc))) from exc
            raise
        return _serialisable(out)

    def known_forecast(
        self, target: str, series_id: str, horizon: int, quantiles: Sequence[float] | None
    ) -> dict[str, np.ndarray]:
        """Forecast a known series from its cached history, memoised.

        The inputs of a known series change only when its history does, and new
        history makes a new :class:`ServingModel`; so the memo never goes stale.
        Callers must not mutate the returned arrays.

        Raises:
            UnknownKeyError: unknown target or series (404).
            DataValidationError: the model rejects horizon or quantiles (422).
        """
        key = (target, series_id, horizon, None if quantiles is None else tuple(quantiles))
        found = self._memo.get(key)
        if found is not None:
            return found
        if target not in self.targets:
            self.forecast(target, series_id, np.datetime64(0, "ns"), np.empty(0), horizon, None)
        history = self.series.get(target, series_id)
        out = self.forecast(target, series_id, history.ts[-1], history.y, horizon, quantiles)
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = out
        return out

    def warm(self) -> int:
        """Precompute the default forecast (trained horizon, all levels) of every known series.

        Returns:
            How many series were precomputed (a series the model rejects is skipped).
        """
        done = 0
        for target in sorted(self.targets):
            for series_id in sorted(self.series.series.get(target, {})):
                try:
                    self.known_forecast(target, series_id, self.forecaster.horizon, None)
                except ReplicastError as exc:
                    logger.warning("cannot precompute %s %s: %s", target, series_id, exc)
                    continue
                done += 1
        return done


def _serialisable(out: dict[str, Any]) -> dict[str, np.ndarray]:
    """C-contiguous arrays of plain dtypes (what orjson serialises natively)."""
    fixed: dict[str, np.ndarray] = {}
    for key, value in out.items():
        if key == "ts":
            array = np.asarray(value, dtype="datetime64[ns]")
        elif key == "step":
            array = np.asarray(value, dtype=np.int64)
        else:
            array = np.asarray(value, dtype=np.float64)
        fixed[key] = np.ascontiguousarray(array)
    return fixed


Loader = Callable[[Settings], Champion]
VersionProbe = Callable[[Settings], "str | None"]


def registry_loader(settings: Settings) -> Champion:
    """Load the ``replicast-load`` champion from the MLflow registry of ``settings``.

    Raises:
        ModelNotFoundError: no champion, or the registry is unreachable.
    """
    from models.mlflow_registry import LOAD_MODEL as name
    from models.mlflow_registry import Registry

    loaded = Registry.from_settings(settings).load_champion(name)
    forecaster = loaded.pyfunc.unwrap_python_model()
    if not callable(getattr(forecaster, "forecast_arrays", None)):
        raise ModelNotFoundError(
            f"{name} version {loaded.version} has no forecast_arrays fast path; "
            "retrain it with this version of replicast"
        )
    return Champion(name=loaded.name, version=str(loaded.version), forecaster=forecaster)


def registry_probe(settings: Settings) -> str | None:
    """The version the registry's ``champion`` alias points at (None when there is none)."""
    from models.mlflow_registry import LOAD_MODEL as name
    from models.mlflow_registry import Registry

    return Registry.from_settings(settings).champion_version(name)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did: ``swapped``, ``unchanged`` or ``failed`` (with the reason)."""

    outcome: str
    version: str | None
    previous_version: str | None
    detail: str = ""


@dataclass(frozen=True)
class ReadinessState:
    """``ready``: a model can serve; ``degraded``: what is wrong while it still serves."""

    ready: bool
    reason: str
    degraded: str | None = None


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="seconds")


class ModelCache:
    """Holds the serving model; :meth:`refresh` is safe to call from any thread.

    Every reason it records is redacted (:func:`forecasting.redact.redact`): they reach
    ``/readyz``, 503 bodies and logs.

    Args:
        settings: where the registry and the lake are (``settings`` may be replaced
            later, e.g. to point the refresh elsewhere).
        metrics: the service metrics to update.
        loader: loads the champion (default: the MLflow registry).
        probe: returns the champion's version cheaply (default: the MLflow registry).
        window_days: days of series history cached per series.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        *,
        loader: Loader = registry_loader,
        probe: VersionProbe | None = registry_probe,
        window_days: int = 21,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.loader = loader
        self.probe = probe
        self.window_days = window_days
        self._current: ServingModel | None = None
        self._lock = threading.Lock()
        self.registry_up = False
        self.registry_down_since: float | None = None
        self.last_error: str | None = "champion not loaded yet"
        self.last_refresh: float | None = None
        #: the last refused champion version and why (integrity), until one loads
        self.refused: str | None = None
        #: why the last series read failed, and since when (None after a good read)
        self.lake_error: str | None = None
        self.lake_error_since: float | None = None

    @property
    def current(self) -> ServingModel | None:
        """The serving model (read it once per request)."""
        return self._current

    def require(self) -> ServingModel:
        """The serving model, or :class:`ModelNotFoundError` (503) when none is loaded."""
        model = self._current
        if model is None:
            raise ModelNotFoundError(f"no champion model loaded: {self.last_error}")
        return model

    def readiness(self) -> ReadinessState:
        """Not ready only when no model can serve; otherwise ready, maybe ``degraded``.

        Not ready: no model loaded, or the lake could not be read since the model
        was loaded (known series cannot be answered; the reason names the partition).
        Degraded (still ready): the registry is unreachable, a newer champion was
        refused, or a lake refresh failed and the last good history serves.
        """
        model = self._current
        if model is None:
            return ReadinessState(False, f"no champion model loaded: {self.last_error}")
        serving = f"{model.name} version {model.version}"
        if model.series.unavailable is not None:
            return ReadinessState(
                False,
                f"known-series history unavailable: {model.series.unavailable}; "
                f"{serving} answers only requests that send history",
            )
        problems = []
        if not self.registry_up and self.registry_down_since is not None:
            problems.append(
                f"registry unreachable since {_iso(self.registry_down_since)} "
                f"({self.last_error}); still serving {serving}"
            )
        if self.refused is not None:
            problems.append(f"{self.refused}; still serving {serving}")
        if self.lake_error is not None and self.lake_error_since is not None:
            problems.append(
                f"lake read failing since {_iso(self.lake_error_since)} ({self.lake_error}); "
                f"serving the series history read at {_iso(model.loaded_at)}"
            )
        return ReadinessState(True, f"serving {serving}", "; ".join(problems) or None)

    def refresh(self, *, force: bool = False) -> RefreshResult:
        """Load the champion if it changed (or ``force``); keep the old one on failure."""
        with self._lock:
            previous = self._current
            previous_version = previous.version if previous else None
            try:
                result = self._refresh_locked(previous, force)
            except ModelIntegrityError as exc:  # the registry answered; its model is refused
                self._registry_answered()
                self.refused = redact(f"champion refused: {exc}")
                self.last_error = self.refused
                self.metrics.model_refused.inc()
                self.metrics.refreshes.labels("failed").inc()
                logger.error("%s; keeping %s", self.refused, previous_version)
                return RefreshResult("failed", previous_version, previous_version, self.refused)
            except Exception as exc:  # registry/driver errors of every kind: keep serving
                now = time.time()
                if self.registry_up or self.registry_down_since is None:
                    self.registry_down_since = now
                self.registry_up = False
                self.last_error = redact(f"{type(exc).__name__}: {exc}")
                self.metrics.registry_up.set(0)
                self.metrics.registry_unreachable_since.set(self.registry_down_since)
                self.metrics.refreshes.labels("failed").inc()
                logger.warning(
                    "champion refresh failed, keeping %s: %s", previous_version, self.last_error
                )
                if previous is not None:
                    self._refresh_series(previous)  # the lake does not depend on the registry
                return RefreshResult("failed", previous_version, previous_version, self.last_error)
            self._registry_answered()
            self.last_error = None
            self.last_refresh = time.time()
            self.metrics.refreshes.labels(result.outcome).inc()
            return result

    def _registry_answered(self) -> None:
        self.registry_up = True
        self.registry_down_since = None
        self.metrics.registry_up.set(1)
        self.metrics.registry_unreachable_since.set(0)

    def _refresh_locked(self, previous: ServingModel | None, force: bool) -> RefreshResult:
        previous_version = previous.version if previous else None
        if previous is not None and not force and self.probe is not None:
            version = self.probe(self.settings)
            if version is None:
                raise ModelNotFoundError("the registry has no champion alias any more")
            if version == previous.version:
                self._refresh_series(previous)
                return RefreshResult("unchanged", version, previous_version)
        champion = self.loader(self.settings)
        self.refused = None
        if previous is not None and champion.version == previous.version and not force:
            self._refresh_series(previous)
            return RefreshResult("unchanged", champion.version, previous_version)
        series = self._read_series(champion.forecaster, previous)
        if series is None:  # the lake failed and a model with good history serves: keep it
            assert previous is not None
            return RefreshResult("unchanged", previous_version, previous_version)
        model = ServingModel(
            name=champion.name,
            version=champion.version,
            forecaster=champion.forecaster,
            series=series,
            loaded_at=time.time(),
        )
        warmed = model.warm()
        self._swap(model, previous_version)
        logger.info("precomputed the default forecast of %d known series", warmed)
        logger.info("serving %s version %s (was %s)", model.name, model.version, previous_version)
        return RefreshResult("swapped", model.version, previous_version)

    def _read_series(
        self, forecaster: ArrayForecaster, previous: ServingModel | None
    ) -> SeriesCache | None:
        """The series history from the lake, or what to serve when the read fails.

        On a failure (a :class:`LakeReadError`, or any error of the read) it is recorded
        (readiness, metric, log), never taken for a registry failure;
        with a previous model whose history is good this returns None (keep it),
        otherwise a cache marked ``unavailable`` with the reason.
        """
        good = previous.series if previous and previous.series.unavailable is None else None
        try:
            series = load_series_cache(
                Lake(self.settings.lake_dir),
                list(forecaster.targets),  # type: ignore[arg-type]
                freq=forecaster.freq,
                window_days=self.window_days,
                previous=good,
            )
        except Exception as exc:  # LakeReadError, or anything else the lake read raised
            reason = redact(str(exc) if isinstance(exc, LakeReadError) else f"lake read: {exc!r}")
            if self.lake_error is None:
                self.lake_error_since = time.time()
            self.lake_error = reason
            self.metrics.lake_read_up.set(0)
            if good is not None:
                logger.error("%s; keeping the series history read before", reason)
                return None
            logger.error("%s; known-series forecasts are unavailable", reason)
            try:
                stamp = lake_stamp(Lake(self.settings.lake_dir))
            except Exception:  # unlistable: retry the read at every refresh
                stamp = (-1, 0.0)
            return SeriesCache({}, stamp, unavailable=reason)
        self.lake_error = None
        self.lake_error_since = None
        self.metrics.lake_read_up.set(1)
        for target, count in series.counts().items():
            self.metrics.known_series.labels(target).set(count)
        return series

    def _refresh_series(self, model: ServingModel) -> None:
        """Re-read the history when the lake's ``node_metrics`` files changed."""
        try:
            if lake_stamp(Lake(self.settings.lake_dir)) == model.series.lake_stamp:
                return
        except Exception as exc:  # an unlistable lake: the read below records why
            logger.debug("lake stamp failed: %s", exc)
        series = self._read_series(model.forecaster, model)
        if series is None:
            return
        fresh = ServingModel(model.name, model.version, model.forecaster, series, time.time())
        fresh.warm()
        self._swap(fresh, model.version)

    def _swap(self, model: ServingModel, previous_version: str | None) -> None:
        self._current = model  # one reference assignment: atomic for readers
        self.metrics.set_model(model.name, model.version, previous_version, model.loaded_at)
