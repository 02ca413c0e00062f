"""Appends a finished run to the ``sync_runs`` lake dataset."""

from __future__ import annotations

from pathlib import Path

from replication.request import SyncResult


def record_run(lake_dir: Path, result: SyncResult) -> None:
    """Write ``result`` as one ``sync_runs`` row (idempotent on ``run_id``)."""
    import pandas as pd

    from forecasting.lake import Lake

    Lake(lake_dir).write("sync_runs", pd.DataFrame([result.to_row()]))
