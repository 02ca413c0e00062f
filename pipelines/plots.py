"""Forecast-vs-actual plots (PNG, matplotlib Agg) for training runs.

One figure per target: one panel per series (the first ``max_series``), the
recent actuals, and for each plotted model the backtest median with its 90 %
interval over every fold's test window.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from forecasting.forecaster import SERIES, TS, Y, quantile_column

_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def forecast_vs_actual(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    *,
    target: str,
    models: Sequence[str],
    path: Path,
    max_series: int = 6,
    context_steps: int = 72,
) -> Path:
    """Draw backtest forecasts against actuals and save a PNG.

    Args:
        history: the target's long series frame (``series_id, ts, y``).
        forecasts: ``BacktestResult.forecasts`` (``model, fold, series_id, ts, q...``).
        target: the target name (title).
        models: models to draw, the first is drawn most prominently (the champion).
        path: where to write the PNG (parent directories are created).
        max_series: at most this many series (panels).
        context_steps: actuals shown before the first test window.

    Returns:
        ``path``.
    """
    series = sorted(history[SERIES].unique())[:max_series]
    n = max(len(series), 1)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    # a bare Figure renders with Agg: no pyplot, no process-wide backend switch
    fig = Figure(figsize=(7 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    lo, mid, hi = quantile_column(0.05), quantile_column(0.5), quantile_column(0.95)
    for ax, sid in zip(axes.ravel(), series, strict=False):
        fc = forecasts.loc[forecasts[SERIES] == sid] if not forecasts.empty else forecasts
        actual = history.loc[history[SERIES] == sid, [TS, Y]].sort_values(TS)
        if not fc.empty:
            start = fc[TS].min() - (actual[TS].diff().median() or pd.Timedelta("1h")) * (
                context_steps
            )
            actual = actual.loc[actual[TS] >= start]
        ax.plot(actual[TS], actual[Y], color="black", linewidth=1.0, label="actual")
        for i, model in enumerate(models):
            part = fc.loc[fc["model"] == model] if not fc.empty else fc
            if part.empty or mid not in part.columns:
                continue
            color = _COLORS[i % len(_COLORS)]
            for fold, chunk in part.groupby("fold"):
                chunk = chunk.sort_values(TS)
                label = f"{model} (median, 90%)" if fold == part["fold"].min() else None
                ax.plot(
                    chunk[TS],
                    chunk[mid],
                    color=color,
                    linewidth=1.4 if i == 0 else 0.9,
                    linestyle="-" if i == 0 else "--",
                    label=label,
                )
                if lo in chunk.columns and hi in chunk.columns and i == 0:
                    ax.fill_between(chunk[TS], chunk[lo], chunk[hi], color=color, alpha=0.2)
        ax.set_title(f"{target} · {sid}", fontsize=9)
        ax.xaxis.set_major_locator(mdates.DayLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(series) :]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=len(handles), fontsize=8)
    # fixed margins: tight_layout measures every tick label and costs seconds per figure
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.9, hspace=0.45, wspace=0.15)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    return path
