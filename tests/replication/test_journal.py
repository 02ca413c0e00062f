from __future__ import annotations

from pathlib import Path

from replication.journal import FileRecord, Journal


def test_journal_survives_reopen_and_tracks_runs(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    journal.start_run("r1", source="s", target="t", transport="delta")
    journal.record(FileRecord("a/b", "r1", 10, 20, 10, 20, 99, "h"))
    journal.close()
    again = Journal(path)
    assert again.last_run() == ("r1", "running")
    assert again.get("a/b") == FileRecord("a/b", "r1", 10, 20, 10, 20, 99, "h")
    again.finish_run("r1", "finished")
    assert again.last_run() == ("r1", "finished")
    again.forget("a/b")
    assert again.get("a/b") is None and again.all() == {}
    again.close()
