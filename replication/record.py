"""Appends a finished run to the ``sync_runs`` lake dataset (pyarrow only: no pandas)."""

from __future__ import annotations

from pathlib import Path

from replication.request import SyncResult


def record_run(lake_dir: Path, result: SyncResult) -> None:
    """Write ``result`` as one ``sync_runs`` row (idempotent on ``run_id``)."""
    from forecasting.lake import Lake, table_from_rows

    Lake(lake_dir).write_table("sync_runs", table_from_rows([result.to_row()]))
