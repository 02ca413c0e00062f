"""A sync starts without the data-science stack: checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.replication.helpers import make_tree

HEAVY = ("pandas", "pyarrow", "scipy", "mlflow", "matplotlib", "prophet", "lightgbm", "dask")

_LOADED = """
import json, sys
{code}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def _loaded_after(code: str, cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _LOADED.format(code=code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=True,
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_importing_the_executor_loads_no_heavy_package(tmp_path: Path) -> None:
    loaded = _loaded_after("import replication.executor", tmp_path)
    assert "replication" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_a_run_without_a_priority_queue_reads_no_parquet(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", {"a/x.db": 5_000, "b/y.db": 3_000})
    code = f"""
from pathlib import Path
from replication.executor import run_sync
from replication.request import SyncRequest
result = run_sync(SyncRequest(source=Path({str(tmp_path / "src")!r}),
                              target={str(tmp_path / "dst")!r}, record=False))
assert result.state == "finished", result
assert result.order_note.startswith("no priority_queue"), result.order_note
"""
    loaded = _loaded_after(code, tmp_path)
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_a_run_with_a_priority_queue_and_its_record_loads_no_pandas(tmp_path: Path) -> None:
    """The queue is read, and the ``sync_runs`` row written, with pyarrow alone."""
    import pandas as pd

    from forecasting.lake import Lake

    make_tree(tmp_path / "src", {"a/x.db": 5_000, "b/y.db": 3_000})
    lake_dir = tmp_path / "var" / "lake"
    origin = pd.Timestamp("2026-01-02T10:00Z")
    queue = pd.DataFrame(
        {"ts": [origin] * 2, "origin": [origin] * 2, "cluster": "c", "replica": "r",
         "segment": ["b", "a"], "rank": [1, 2]}
    )  # fmt: skip
    Lake(lake_dir).write("priority_queue", queue)
    code = f"""
from pathlib import Path
from forecasting.settings import Settings
from replication.executor import run_sync
from replication.request import SyncRequest
settings = Settings(data_dir=Path({str(tmp_path / "var")!r}))
result = run_sync(SyncRequest(source=Path({str(tmp_path / "src")!r}),
                              target={str(tmp_path / "dst")!r}, cluster="c", replica="r"),
                  settings=settings)
assert result.state == "finished", result
assert [s.name for s in result.segments] == ["b", "a"], result.segments
"""
    loaded = _loaded_after(code, tmp_path)
    assert "pandas" not in loaded
    runs = Lake(lake_dir).read("sync_runs")
    assert len(runs) == 1 and runs["state"].tolist() == ["finished"]
    assert str(runs["ts"].dtype) == "datetime64[ns, UTC]"
