"""Hostile inputs: every way into replicast, tried as a careless user or an attacker would.

Four ways in, each tried with many kinds of bad input, every try under a timeout:

* ``cli_files``: ``replicast ingest -s F`` as a process on broken files (empty, random
  bytes, NUL bytes, bad UTF-8, stray quotes, wrong field counts, huge numbers, NaN/inf,
  far timestamps, a 50 MB line, a gzip bomb, a corrupt Parquet file, a directory, a FIFO,
  a symlink loop, ...), each in a fresh copy of a lake that already holds a known-good
  file. Counted: exit code, tracebacks, data lines not accounted for (good + quarantined,
  or the whole file refused), the known-good rows still all there.
* ``cli_options``: ``replicast sync`` with hostile paths and garbage sizes/rates,
  ``replicast backtest --series`` on garbage, ``replicast simulate`` with absurd numbers.
  Counted: exit code, tracebacks, anything written where it should not be.
* ``settings``: hostile ``replicast.toml`` and ``REPLICAST_*`` variables under cheap
  commands (``schedule --list``, ``run ingest``, ``report``): clear errors, no traceback,
  no password echoed.
* ``http``: ``replicast serve`` as a process (token set, sync endpoints configured, a small
  model trained) sent malformed, oversized, deep, non-finite, unauthenticated and
  path-escaping requests. Counted: status codes, 5xx, tracebacks in the server's stderr,
  secrets in any response or log line.

A timeout is a hang. Subprocesses run with an address-space limit (``--mem-gib``) so a
runaway allocation fails in the process instead of starving the machine.

    .venv/bin/python bench/hostile.py --json bench/out/hostile.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
EXE = str(REPO / ".venv" / "bin" / "replicast")
TRACEBACK = "Traceback (most recent call last)"
SECRET = "hunter2Zq9x"  # the password of every tracking URI / source URI tried
TOKEN = "hostile-token-7f3a9c"
KNOWN_ROWS = 120
KNOWN_DAY = "2026-01-01"
COLUMNS = (
    "ts,cluster,region,node,role,cpu_util,qps_read,qps_write,disk_used_bytes,"
    "repl_lag_s,repl_bytes,net_rtt_ms"
)
REGIONS = ("us-east", "eu-west", "cn-north")


# -- tallies ----------------------------------------------------------------------------
@dataclass
class Tally:
    """The counts of one kind of input on one way in."""

    count: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    tracebacks: int = 0
    server_errors: int = 0
    rows_lost: int = 0
    secrets_echoed: int = 0
    hangs: int = 0
    misplaced_writes: int = 0  # tries that wrote (or deleted) where they should not
    failures: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "codes": dict(sorted(self.codes.items())),
            "tracebacks": self.tracebacks,
            "5xx": self.server_errors,
            "rows_lost": self.rows_lost,
            "secrets_echoed": self.secrets_echoed,
            "hangs": self.hangs,
            "misplaced_writes": self.misplaced_writes,
            "failures": self.failures,
            "notes": self.notes,
        }


class Results:
    """Tallies by way in and kind, with every failure's reproduction."""

    def __init__(self) -> None:
        self.ways: dict[str, dict[str, Tally]] = {}

    def tally(self, way: str, kind: str) -> Tally:
        return self.ways.setdefault(way, {}).setdefault(kind, Tally())

    def record(
        self,
        way: str,
        kind: str,
        case: str,
        code: int | str | None,
        output: str,
        *,
        repro: str,
        rows_lost: int = 0,
        misplaced: list[str] | None = None,
        problems: list[str] | None = None,
        expected: frozenset[int] = frozenset(),
    ) -> None:
        """Count one try; ``code`` None is a hang; ``expected`` 5xx codes are not failures."""
        t = self.tally(way, kind)
        t.count += 1
        t.codes["hang" if code is None else str(code)] += 1
        why = list(problems or [])
        if code is None:
            t.hangs += 1
            why.append("hang (timeout)")
        if TRACEBACK in output:
            t.tracebacks += 1
            line = _last_exception_line(output)
            why.append(f"traceback: {line}")
        if isinstance(code, int) and way == "http" and code >= 500 and code not in expected:
            t.server_errors += 1
            why.append(f"HTTP {code}")
        if SECRET in output or TOKEN in output:
            t.secrets_echoed += 1
            why.append("secret echoed")
        if rows_lost:
            t.rows_lost += rows_lost
            why.append(f"{rows_lost} row(s) lost")
        if misplaced:
            t.misplaced_writes += 1
            why.append(f"written where it should not be: {misplaced[:3]}")
        if why:
            t.failures.append({"case": case, "code": code, "why": why, "repro": repro})

    def note(self, way: str, kind: str, text: str) -> None:
        self.tally(way, kind).notes.append(text)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for way, kinds in self.ways.items():
            out[way] = {kind: t.as_json() for kind, t in kinds.items()}
        out["totals"] = self.totals()
        return out

    def totals(self) -> dict[str, int]:
        keys = ("count", "tracebacks", "server_errors", "rows_lost", "secrets_echoed", "hangs")
        sums = dict.fromkeys((*keys, "misplaced_writes", "failures"), 0)
        for kinds in self.ways.values():
            for t in kinds.values():
                for key in keys:
                    sums[key] += getattr(t, key)
                sums["misplaced_writes"] += t.misplaced_writes
                sums["failures"] += len(t.failures)
        return sums


def _last_exception_line(text: str) -> str:
    after = text[text.rindex(TRACEBACK) :].splitlines()
    lines = [line for line in after if line and not line.startswith((" ", "Traceback"))]
    return lines[0][:300] if lines else "?"


# -- processes --------------------------------------------------------------------------
@dataclass
class Run:
    code: int | None  # None: timed out (killed)
    out: str
    seconds: float


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICAST_")}
    env.update(NO_COLOR="1", COLUMNS="200", TERM="dumb", **extra)
    return env


def _limits(mem_gib: float) -> Callable[[], None]:
    def apply() -> None:
        cap = int(mem_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return apply


MEM_GIB = 6.0


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    """Run ``replicast args`` (or a full argv) under a timeout; kill its group on expiry."""
    argv = args if args[0].startswith("/") else [EXE, *args]
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env or base_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_limits(MEM_GIB),
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    return Run(code, out.decode("utf-8", "replace"), time.monotonic() - start)


def shell_repro(args: list[str], env: dict[str, str] | None = None) -> str:
    own = {k: v for k, v in (env or {}).items() if k.startswith("REPLICAST_")}
    prefix = " ".join(f"{k}={_q(v)}" for k, v in own.items())
    cmd = " ".join(_q(a) for a in (args if args[0].startswith("/") else ["replicast", *args]))
    return f"{prefix} {cmd}".strip()


def _q(text: str) -> str:
    safe = all(c.isalnum() or c in "-_./=:@,+%" for c in text) and text
    return text if safe else "'" + text.replace("'", "'\\''") + "'"


def tree(root: Path) -> set[str]:
    """Every path below ``root`` (relative), following no symlinks."""
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- 1. files into ingest ---------------------------------------------------------------
def good_lines(n: int, day: str, node_prefix: str = "h", seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    base = pd.Timestamp(day, tz="UTC")
    lines = []
    for i in range(n):
        ts = (base + pd.Timedelta(minutes=5 * (i // 6))).strftime("%Y-%m-%dT%H:%M:%SZ")
        region = REGIONS[i % 3]
        node = f"{node_prefix}{i % 6}"
        role = "primary" if i % 6 == 0 else "replica"
        lines.append(
            f"{ts},orders,{region},{node},{role},{rng.uniform(0, 1):.4f},"
            f"{rng.uniform(0, 5000):.2f},{rng.uniform(0, 500):.2f},"
            f"{rng.uniform(1e11, 2e11):.0f},{rng.uniform(0, 2):.3f},"
            f"{rng.uniform(0, 1e7):.0f},{rng.uniform(1, 230):.1f}"
        )
    return lines


def write_csv(path: Path, lines: list[str], header: str = COLUMNS) -> None:
    path.write_text("\n".join([header, *lines]) + "\n")


def _mutate(lines: list[str], every: int, fn: Callable[[list[str]], list[str]]) -> list[str]:
    out = []
    for i, line in enumerate(lines):
        out.append(",".join(fn(line.split(","))) if i % every == 3 else line)
    return out


def _set(col: int, values: list[str]) -> Callable[[list[str]], list[str]]:
    it = iter(values * 100)

    def fn(fields: list[str]) -> list[str]:
        fields[col] = next(it)
        return fields

    return fn


# Each builder makes the hostile input under ``d`` and returns (the -s argument, data
# lines it holds or None when "lines" mean nothing, a note).
Built = tuple[str, int | None, str]


def f_empty(d: Path) -> Built:
    (d / "node_metrics.csv").write_bytes(b"")
    return "node_metrics.csv", 0, ""


def f_header_only(d: Path) -> Built:
    (d / "node_metrics.csv").write_text(COLUMNS + "\n")
    return "node_metrics.csv", 0, ""


def f_random_bytes(d: Path) -> Built:
    (d / "node_metrics.csv").write_bytes(random.Random(7).randbytes(256 * 1024))
    return "node_metrics.csv", None, ""


def f_nul_bytes(d: Path) -> Built:
    lines = _mutate(good_lines(60, "2026-02-01"), 10, _set(3, ["h\x000", "\x00\x00"]))
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 60, ""


def f_nul_only(d: Path) -> Built:
    (d / "node_metrics.csv").write_bytes(b"\x00" * 100_000)
    return "node_metrics.csv", None, ""


def f_invalid_utf8(d: Path) -> Built:
    lines = good_lines(60, "2026-02-02")
    data = "\n".join([COLUMNS, *lines]).encode() + b"\n"
    data = data.replace(b",h3,", b",h\xff\xfe3,").replace(b",h4,", b",h\xc3\x28,")
    (d / "node_metrics.csv").write_bytes(data)
    return "node_metrics.csv", 60, ""


def f_stray_quote(d: Path) -> Built:
    lines = good_lines(60, "2026-02-03")
    lines[20] = lines[20].replace(",h2,", ',h"2,')
    lines[41] = lines[41].replace(",orders,", ',"orders,')
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 60, ""


def f_field_counts(d: Path) -> Built:
    lines = good_lines(60, "2026-02-04")
    lines[5] += ",extra,fields"
    lines[15] = ",".join(lines[15].split(",")[:5])
    lines[25] = ""  # quarantined as an "empty row"
    lines[35] = ","
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 60, "one blank line, quarantined as an empty row"


def f_huge_numbers(d: Path) -> Built:
    huge = ["1e308", "1e400", "-1e400", "99999999999999999999999999999999", "0x1p1024"]
    lines = _mutate(good_lines(60, "2026-02-05"), 5, _set(8, huge))
    lines = _mutate(lines, 7, _set(6, ["1" * 400, "-" + "9" * 50]))
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 60, ""


def f_nan_inf(d: Path) -> Built:
    bad = ["NaN", "nan", "inf", "-Infinity", "+inf", "NAN", "1e999"]
    lines = _mutate(good_lines(60, "2026-02-06"), 4, _set(5, bad))
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 60, ""


def f_timestamps(d: Path) -> Built:
    odd = [
        "9999-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1900-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "0",
        "-99999999999",
        "99999999999999999999",
        "2026-02-30T00:00:00Z",
        "2026-02-07T25:61:00Z",
        "1677-09-21T00:12:43Z",
        "2262-04-11T23:47:17Z",
    ]
    lines = _mutate(good_lines(80, "2026-02-07"), 5, _set(0, odd))
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 80, ""


def f_long_line(d: Path) -> Built:
    line = "2026-02-08T00:00:00Z,orders,us-east," + "n" * (50 * 2**20) + ",replica,0.1"
    lines = [good_lines(1, "2026-02-08")[0], line + ",1,1,1,1,1,1"]
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 2, "a 50 MiB node name on the second line"


def f_long_line_no_newline(d: Path) -> Built:
    (d / "node_metrics.csv").write_bytes(b"x" * (50 * 2**20))
    return "node_metrics.csv", None, "50 MiB, no newline at all"


def f_gzip_bomb(d: Path) -> Built:
    path = d / "node_metrics.csv.gz"
    lines = good_lines(2, "2026-02-09")
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write((COLUMNS + "\n" + lines[0] + "\n").encode())
        block = b"\n" * 2**20
        for _ in range(256):  # 256 MiB of blank lines, ~260 KB compressed
            fh.write(block)
        fh.write((lines[1] + "\n").encode())
    return path.name, 2, f"{path.stat().st_size} B -> 256 MiB"


def f_gzip_bomb_field(d: Path) -> Built:
    path = d / "node_metrics.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write((COLUMNS + "\n2026-02-10T00:00:00Z,orders,us-east,n1,replica,").encode())
        block = b"0" * 2**20
        for _ in range(200):  # a 200 MiB number
            fh.write(block)
        fh.write(b"1,1,1,1,1,1,1\n")
    return path.name, 1, "one 200 MiB cpu_util field"


def f_truncated_gzip(d: Path) -> Built:
    path = d / "node_metrics.csv.gz"
    data = gzip.compress(("\n".join([COLUMNS, *good_lines(60, "2026-02-11")]) + "\n").encode())
    path.write_bytes(data[: len(data) // 2])
    return path.name, None, "cut in half"


def _parquet(d: Path, day: str) -> Path:
    frame = pd.read_csv(pd.io.common.StringIO("\n".join([COLUMNS, *good_lines(200, day)])))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    path = d / "node_metrics.parquet"
    frame.to_parquet(path, index=False)
    return path


def f_parquet_flip_middle(d: Path) -> Built:
    path = _parquet(d, "2026-02-12")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    return path.name, 200, "a byte of a data page flipped"


def f_parquet_flip_footer(d: Path) -> Built:
    path = _parquet(d, "2026-02-13")
    data = bytearray(path.read_bytes())
    data[-12] ^= 0xFF
    path.write_bytes(bytes(data))
    return path.name, 200, "a byte of the footer flipped"


def f_parquet_truncated(d: Path) -> Built:
    path = _parquet(d, "2026-02-14")
    path.write_bytes(path.read_bytes()[:-100])
    return path.name, 200, ""


def f_directory(d: Path) -> Built:
    (d / "node_metrics.csv").mkdir()
    return "node_metrics.csv", None, "an empty directory named like a file"


def f_missing(d: Path) -> Built:
    return "no_such_file.csv", None, ""


def f_glob_nothing(d: Path) -> Built:
    return "nothing-*.csv", None, ""


def f_fifo(d: Path) -> Built:
    os.mkfifo(d / "node_metrics.csv")
    return "node_metrics.csv", None, "nobody writes to it"


def f_fifo_in_dir(d: Path) -> Built:
    (d / "in").mkdir()
    os.mkfifo(d / "in" / "node_metrics.csv")
    return "in", None, "a directory source holding a FIFO"


def f_symlink_loop(d: Path) -> Built:
    (d / "a.csv").symlink_to(d / "node_metrics.csv")
    (d / "node_metrics.csv").symlink_to(d / "a.csv")
    return "node_metrics.csv", None, ""


def f_dev_zero(d: Path) -> Built:
    (d / "node_metrics.csv").symlink_to("/dev/zero")
    return "node_metrics.csv", None, "a symlink to /dev/zero (endless NULs)"


def f_no_permission(d: Path) -> Built:
    path = d / "node_metrics.csv"
    write_csv(path, good_lines(60, "2026-02-15"))
    path.chmod(0)
    note = "running as root: mode 000 does not stop the read" if os.geteuid() == 0 else ""
    return path.name, 60 if os.geteuid() == 0 else None, note


def f_bom_crlf(d: Path) -> Built:
    lines = good_lines(60, "2026-02-16")
    data = "\ufeff" + "\r\n".join([COLUMNS, *lines]) + "\r\n"
    (d / "node_metrics.csv").write_bytes(data.encode())
    return "node_metrics.csv", 60, "BOM and CRLF"


def f_missing_column(d: Path) -> Built:
    header = COLUMNS.replace(",cpu_util", "")
    lines = [",".join(x.split(",")[:5] + x.split(",")[6:]) for x in good_lines(60, "2026-02-17")]
    write_csv(d / "node_metrics.csv", lines, header)
    return "node_metrics.csv", None, "cpu_util column missing"


def f_duplicate_header(d: Path) -> Built:
    write_csv(
        d / "node_metrics.csv",
        [x + ",0.5" for x in good_lines(60, "2026-02-18")],
        COLUMNS + ",cpu_util",
    )
    return "node_metrics.csv", None, "cpu_util twice in the header"


def f_formula_injection(d: Path) -> Built:
    lines = _mutate(good_lines(60, "2026-02-19"), 6, _set(3, ["=cmd|'/c calc'!A1", "@SUM(1)"]))
    write_csv(d / "node_metrics.csv", lines)
    return "node_metrics.csv", 60, ""


def f_pg_uri_password(d: Path) -> Built:
    return f"postgresql://replicast:{SECRET}@127.0.0.1:5432/hostile_nope", None, "real server"


def f_pg_uri_closed_port(d: Path) -> Built:
    return f"postgresql://u:{SECRET}@127.0.0.1:1/db?sslmode=disable", None, "closed port"


def f_prom_uri_password(d: Path) -> Built:
    return f"prometheus://u:{SECRET}@127.0.0.1:1", None, "closed port"


def f_unknown_scheme(d: Path) -> Built:
    return f"mysql://u:{SECRET}@127.0.0.1/db", None, ""


FILE_CASES: dict[str, Callable[[Path], Built]] = {
    "empty": f_empty,
    "header_only": f_header_only,
    "random_bytes": f_random_bytes,
    "nul_bytes_in_rows": f_nul_bytes,
    "nul_bytes_only": f_nul_only,
    "invalid_utf8": f_invalid_utf8,
    "stray_quote": f_stray_quote,
    "wrong_field_counts": f_field_counts,
    "huge_numbers": f_huge_numbers,
    "nan_inf_strings": f_nan_inf,
    "far_timestamps": f_timestamps,
    "line_50mb": f_long_line,
    "line_50mb_no_newline": f_long_line_no_newline,
    "gzip_bomb_blank_lines": f_gzip_bomb,
    "gzip_bomb_one_field": f_gzip_bomb_field,
    "gzip_truncated": f_truncated_gzip,
    "parquet_flip_data": f_parquet_flip_middle,
    "parquet_flip_footer": f_parquet_flip_footer,
    "parquet_truncated": f_parquet_truncated,
    "directory": f_directory,
    "missing_file": f_missing,
    "glob_matching_nothing": f_glob_nothing,
    "fifo": f_fifo,
    "fifo_in_directory": f_fifo_in_dir,
    "symlink_loop": f_symlink_loop,
    "symlink_dev_zero": f_dev_zero,
    "no_read_permission": f_no_permission,
    "bom_crlf": f_bom_crlf,
    "missing_column": f_missing_column,
    "duplicate_header": f_duplicate_header,
    "formula_injection": f_formula_injection,
    "pg_uri_password": f_pg_uri_password,
    "pg_uri_closed_port": f_pg_uri_closed_port,
    "prometheus_uri_password": f_prom_uri_password,
    "unknown_uri_scheme": f_unknown_scheme,
}


def _lake_counts(lake_root: Path, known: pd.DataFrame) -> tuple[int, int, int]:
    """(rows of node_metrics not from the known-good file, quarantined rows, known rows kept)."""
    from forecasting.lake import Lake

    lake = Lake(lake_root)
    metrics = lake.read("node_metrics") if "node_metrics" in lake.datasets() else pd.DataFrame()
    quarantine = lake.read("quarantine") if "quarantine" in lake.datasets() else pd.DataFrame()
    kept = 0
    if not metrics.empty:
        got = metrics.assign(ts=pd.to_datetime(metrics["ts"], utc=True))
        merged = known.merge(got, on=["ts", "region", "node"], suffixes=("", "_got"))
        kept = int((merged["cpu_util"].round(4) == merged["cpu_util_got"].round(4)).sum())
    return len(metrics) - kept, len(quarantine), kept


def try_files(results: Results, root: Path, timeout: float) -> None:
    template = root / "template"
    template.mkdir()
    known_path = template / "known_good.csv"
    write_csv(known_path, good_lines(KNOWN_ROWS, KNOWN_DAY, node_prefix="k"))
    first = run(["ingest", "-d", "node_metrics", "-s", str(known_path)], template, timeout=timeout)
    if first.code != 0:
        raise RuntimeError(f"known-good ingest failed:\n{first.out}")
    known = pd.read_csv(known_path)
    known["ts"] = pd.to_datetime(known["ts"], utc=True)
    for kind, build in FILE_CASES.items():
        case = root / f"file-{kind}"
        shutil.copytree(template, case, symlinks=True)
        source, lines, note = build(case)
        args = ["ingest", "-s", source]
        r = run(args, case, timeout=timeout)
        problems: list[str] = []
        lost = 0
        try:
            extra, quarantined, kept = _lake_counts(case / "var" / "lake", known)
        except Exception as exc:  # the lake itself unreadable: that is the finding
            extra, quarantined, kept = 0, 0, 0
            problems.append(f"lake unreadable afterwards: {type(exc).__name__}: {exc}")
        if kept != KNOWN_ROWS:
            problems.append(f"known-good rows: {kept} of {KNOWN_ROWS} left")
            lost += KNOWN_ROWS - kept
        accounted = extra + quarantined
        if lines is not None and r.code is not None:
            refused = r.code != 0 and accounted == 0
            if not refused and accounted < lines:
                lost += lines - accounted
            if accounted > lines:
                results.note("cli_files", kind, f"{accounted} rows for {lines} data lines")
        if r.code == 0 and lines is None and kind not in ("glob_matching_nothing",):
            results.note("cli_files", kind, "exit 0")
        results.record(
            "cli_files",
            kind,
            kind,
            r.code,
            r.out,
            repro=f"cd <dir> && {shell_repro(args)}  # {note or kind}",
            rows_lost=lost,
            problems=problems,
        )
        summary = (
            f"exit {r.code}, {r.seconds:.1f} s, data lines {lines}, good {extra}, "
            f"quarantined {quarantined}"
        )
        results.note("cli_files", kind, summary + (f"; {note}" if note else ""))
        _chmod_back(case)
        shutil.rmtree(case, ignore_errors=True)


def _chmod_back(d: Path) -> None:
    for p in d.rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.chmod(0o644)


# -- 2. command-line options ------------------------------------------------------------
def _segments(src: Path, n: int = 3) -> None:
    for i in range(n):
        seg = src / f"seg-hostile-{i:03d}"
        seg.mkdir(parents=True)
        (seg / "data.bin").write_bytes(random.Random(i).randbytes(64 * 1024))


def try_options(results: Results, root: Path, timeout: float) -> None:
    base = root / "opts"
    base.mkdir()
    marker_name = "PWNED"  # relative: no "/" before the ":" keeps host:path a host
    sync_cases: list[tuple[str, str, list[str]]] = [
        ("sync_paths", "source_missing", ["--source", "nope", "--target", "tgt"]),
        ("sync_paths", "source_is_file", ["--source", "afile", "--target", "tgt"]),
        ("sync_paths", "target_is_file", ["--source", "src", "--target", "afile"]),
        ("sync_paths", "source_dotdot_holds_target", ["--source", "..", "--target", "tgt"]),
        ("sync_paths", "target_inside_source", ["--source", "src", "--target", "src/inner"]),
        ("sync_paths", "target_is_source", ["--source", "src", "--target", "src"]),
        ("sync_paths", "target_data_dir", ["--source", "src", "--target", "var"]),
        ("sync_paths", "target_lake", ["--source", "src", "--target", "var/lake"]),
        (
            "sync_paths",
            "target_data_dir_delete",
            ["--source", "src", "--target", "var", "--delete"],
        ),
        ("sync_paths", "source_data_dir", ["--source", "var", "--target", "tgt"]),
        ("sync_paths", "target_proc", ["--source", "src", "--target", "/proc/self"]),
        (
            "sync_paths",
            "target_proxycommand",
            ["--source", "src", "--target", f"-oProxyCommand=touch {marker_name}:/x"],
        ),
        (
            "sync_paths",
            "target_proxycommand_rsync",
            [
                "--source",
                "src",
                "--transport",
                "rsync",
                "--target",
                f"-oProxyCommand=touch {marker_name}:/x",
            ],
        ),
        (
            "sync_paths",
            "target_host_semicolon_rsync",
            ["--source", "src", "--transport", "rsync", "--target", f"h;touch {marker_name}:/x"],
        ),
        (
            "sync_paths",
            "target_remote_path_injection_rsync",
            [
                "--source",
                "src",
                "--transport",
                "rsync",
                "--target",
                "127.0.0.1:/x;touch${IFS}PWNED",
            ],
        ),
        (
            "sync_paths",
            "pattern_dotdot",
            ["--source", "src", "--target", "tgt", "--pattern", "../*"],
        ),
        (
            "sync_paths",
            "pattern_absolute",
            ["--source", "src", "--target", "tgt", "--pattern", "/etc/*"],
        ),
        (
            "sync_paths",
            "transport_bogus",
            ["--source", "src", "--target", "tgt", "--transport", "ftp"],
        ),
        ("sync_paths", "order_bogus", ["--source", "src", "--target", "tgt", "--order", "chaos"]),
        (
            "sync_paths",
            "json_into_lake",
            ["--source", "src", "--target", "tgt", "--json", "var/lake"],
        ),
    ]
    for value in (
        "-1",
        "1e999",
        "abc",
        "0",
        "",
        "1 PB/s",
        "NaN",
        "-0",
        "99999999999999999999999EiB",
    ):
        sync_cases.append(
            (
                "sync_bwlimit",
                f"bwlimit={value!r}",
                ["--source", "src", "--target", "tgt", "--bwlimit", value],
            )
        )
    for value in ("-1", "1e999", "abc", "0", "", "NaN", "1.5B", "99999999999999999999999EiB"):
        sync_cases.append(
            (
                "sync_budget_bytes",
                f"budget-bytes={value!r}",
                ["--source", "src", "--target", "tgt", "--budget-bytes", value],
            )
        )
    for value in ("-1", "nan", "inf", "0", "1e999"):
        sync_cases.append(
            (
                "sync_budget_seconds",
                f"budget-seconds={value!r}",
                ["--source", "src", "--target", "tgt", "--budget-seconds", value],
            )
        )
    for value in ("0", "-3", "99999999999"):
        sync_cases.append(
            (
                "sync_concurrency",
                f"concurrency={value!r}",
                ["--source", "src", "--target", "tgt", "--concurrency", value],
            )
        )

    for kind, case, extra in sync_cases:
        d = base / f"sync-{len(os.listdir(base))}"
        d.mkdir()
        _segments(d / "src")
        (d / "afile").write_text("not a directory\n")
        (d / "var" / "lake" / "node_metrics").mkdir(parents=True)
        (d / "var" / "lake" / "node_metrics" / "part-0.parquet").write_bytes(b"PAR1 sentinel")
        (d / "var" / "mlflow.db").write_bytes(b"sentinel")
        cwd = d / "sub" if case == "source_dotdot_holds_target" else d
        cwd.mkdir(exist_ok=True)
        before = tree(d)
        args = ["sync", *extra]
        r = run(args, cwd, timeout=timeout)
        after = tree(d)
        new = sorted(after - before)
        allowed_prefixes = (
            "tgt",
            "sub/tgt",
            "var/lake/sync_runs",
            "var/sync",
            "var/locks",
            "sub/var",
        )
        misplaced = [p for p in new if not p.startswith(allowed_prefixes)]
        misplaced += [f"deleted {p}" for p in sorted(before - after)]
        if case in ("target_data_dir", "target_lake"):
            misplaced += [p for p in new if "seg-hostile" in p]
        if case == "target_inside_source":
            misplaced = [p for p in new if p.count("seg-hostile") > 1 or "inner/inner" in p]
        if case == "target_is_source":
            misplaced = []
        for marker in (d / marker_name, cwd / marker_name):
            if marker.exists():
                misplaced.append(f"{marker} (a command ran)")
        if r.code in (2, 3):  # refused (usage, config): nothing should have been copied
            misplaced += [p for p in new if "seg-hostile" in p and p not in misplaced]
        results.record(
            "cli_options",
            kind,
            case,
            r.code,
            r.out,
            repro=f"cd <dir with src/ segments, afile, var/lake> && {shell_repro(args)}",
            misplaced=sorted(set(misplaced)),
        )
        results.note("cli_options", kind, f"{case}: exit {r.code}, {_first_line(r.out)}")
        shutil.rmtree(d, ignore_errors=True)

    _try_backtest(results, base, timeout)
    _try_simulate(results, base, timeout)


def _first_line(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("{")]
    for line in lines:
        if "rror" in line or "invalid" in line.lower() or "refus" in line.lower():
            return line[:200]
    return (lines[-1] if lines else "")[:200]


def _try_backtest(results: Results, base: Path, timeout: float) -> None:
    d = base / "backtest"
    d.mkdir()
    ts = pd.date_range("2026-01-01", periods=24 * 10, freq="h", tz="UTC")
    series: dict[str, bytes | None] = {
        "empty.csv": b"",
        "header_only.csv": b"timestamp,value\n",
        "random.csv": random.Random(3).randbytes(10_000),
        "nul.csv": b"\x00" * 10_000,
        "three_rows.csv": b"timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,2\n"
        b"2026-01-01T02:00:00Z,3\n",
        "all_nan.csv": (
            "timestamp,value\n" + "".join(f"{t.isoformat()},nan\n" for t in ts)
        ).encode(),
        "all_inf.csv": (
            "timestamp,value\n" + "".join(f"{t.isoformat()},inf\n" for t in ts)
        ).encode(),
        "same_ts.csv": (
            "timestamp,value\n" + "".join(f"{ts[0].isoformat()},{i}\n" for i in range(240))
        ).encode(),
        "reversed.csv": (
            "timestamp,value\n"
            + "".join(f"{t.isoformat()},{i % 24}\n" for i, t in enumerate(ts[::-1]))
        ).encode(),
        "text_values.csv": (
            "timestamp,value\n" + "".join(f"{t.isoformat()},x{i}\n" for i, t in enumerate(ts))
        ).encode(),
        "huge_values.csv": (
            "timestamp,value\n" + "".join(f"{t.isoformat()},1e308\n" for t in ts)
        ).encode(),
        "far_timestamps.csv": b"timestamp,value\n0001-01-01T00:00:00Z,1\n9999-12-31T00:00:00Z,2\n",
        "no_timestamp_col.csv": b"a,b\n1,2\n",
        "bad.parquet": b"PAR1" + random.Random(4).randbytes(5000) + b"PAR1",
        "a_directory_of_nothing": None,
        "missing.csv": None,
    }
    for name, data in series.items():
        path = d / name
        if data is not None:
            path.write_bytes(data)
        elif name.startswith("a_directory"):
            path.mkdir()
        args = [
            "backtest",
            "--series",
            str(path),
            "--models",
            "seasonal_naive_day",
            "--json",
            str(d / "out.json"),
        ]
        r = run(args, d, timeout=timeout)
        results.record(
            "cli_options", "backtest_series", name, r.code, r.out, repro=shell_repro(args)
        )
        results.note(
            "cli_options", "backtest_series", f"{name}: exit {r.code}, {_first_line(r.out)}"
        )
    for value in ("0", "-1", "99999999999999999999"):
        for opt in ("--horizon", "--folds"):
            path = d / "reversed.csv"
            args = ["backtest", "--series", str(path), "--models", "seasonal_naive_day", opt, value]
            r = run(args, d, timeout=timeout)
            results.record(
                "cli_options",
                "backtest_numbers",
                f"{opt}={value}",
                r.code,
                r.out,
                repro=shell_repro(args),
            )
            results.note(
                "cli_options",
                "backtest_numbers",
                f"{opt}={value}: exit {r.code}, {_first_line(r.out)}",
            )


def _try_simulate(results: Results, base: Path, timeout: float) -> None:
    cases = {
        "days=-1": ["--days", "-1"],
        "days=0": ["--days", "0"],
        "days=10**6": ["--days", "1000000"],
        "days=10**30": ["--days", "1" + "0" * 30],
        "clusters=-1": ["--days", "1", "--clusters", "-1"],
        "clusters=0": ["--days", "1", "--clusters", "0"],
        "clusters=10**6": ["--days", "1", "--clusters", "1000000"],
        "nodes=-3": ["--days", "1", "--nodes-per-region", "-3"],
        "nodes=0": ["--days", "1", "--nodes-per-region", "0"],
        "nodes=10**9": ["--days", "1", "--nodes-per-region", "1000000000"],
        "segments=-1": ["--days", "1", "--segments-per-cluster", "-1"],
        "segments=10**9": ["--days", "1", "--segments-per-cluster", "1000000000"],
        "seed=-1": ["--days", "1", "--seed", "-1"],
        "seed=2**70": ["--days", "1", "--seed", str(2**70)],
        "start=0001-01-01": ["--days", "1", "--start", "0001-01-01"],
        "start=9999-12-31": ["--days", "2", "--start", "9999-12-31"],
        "start=garbage": ["--days", "1", "--start", "yesterday"],
        "out=/proc": ["--days", "1", "--out-override"],
        "out=a file": ["--days", "1", "--out-file"],
        "sample+days": ["--sample", "--days", "3"],
    }
    for name, extra in cases.items():
        d = base / f"sim-{len(os.listdir(base))}"
        d.mkdir()
        out = d / "out"
        if extra[-1] == "--out-override":
            extra, out = extra[:-1], Path("/proc/hostile")
        elif extra[-1] == "--out-file":
            extra = extra[:-1]
            out.write_text("a file\n")
        args = ["simulate", "--out", str(out), *extra]
        r = run(args, d, timeout=timeout)
        misplaced = []
        if r.code != 0 and out.is_dir() and any(out.iterdir()):
            misplaced = [str(p) for p in out.iterdir()]
        results.record(
            "cli_options",
            "simulate_numbers",
            name,
            r.code,
            r.out,
            repro=shell_repro(args),
            misplaced=misplaced,
        )
        results.note(
            "cli_options",
            "simulate_numbers",
            f"{name}: exit {r.code}, {r.seconds:.1f} s, {_first_line(r.out)}",
        )
        shutil.rmtree(d, ignore_errors=True)


# -- 3. settings ------------------------------------------------------------------------
def try_settings(results: Results, root: Path, timeout: float) -> None:
    tomls = {
        "invalid_toml": "[forecast\nhorizon = \n",
        "toml_nul_byte": 'data_dir = "var\x00x"\n',
        "wrong_type_horizon": '[forecast]\nhorizon = "abc"\n',
        "wrong_type_port": "[serve]\nport = 70000\n",
        "wrong_type_data_dir": "data_dir = 5\n",
        "wrong_type_table": "forecast = 3\n",
        "negative_folds": "[forecast]\nfolds = -2\n",
        "quantiles_out_of_range": "[forecast]\nquantiles = [0.5, 1.5]\n",
        "bad_timezone": '[[fleet.regions]]\nname = "x"\ntimezone = "Mars/Olympus"\n'
        "bandwidth_bytes_s = 1\nrtt_ms = 1\n",
        "bad_cron": '[schedule]\ningest = "61 * * * *"\n',
        "cron_garbage": '[schedule]\ningest = "every tuesday"\n',
        "sync_endpoint_data_dir": '[sync.endpoints.evil]\npath = "{root}/var"\nrole = "target"\n',
        "sync_endpoint_lake": '[sync.endpoints.evil]\npath = "{root}/var/lake"\nrole = "both"\n',
        "sync_endpoint_root": '[sync.endpoints.evil]\npath = "/"\nrole = "target"\n',
        "sync_endpoint_localhost_data_dir": '[sync.endpoints.evil]\npath = "localhost:{root}/var"\n'
        'role = "target"\n',
        "sync_endpoint_relative": '[sync.endpoints.evil]\npath = "var"\nrole = "target"\n',
        "sync_endpoint_proxycommand": '[sync.endpoints.evil]\npath = "-oProxyCommand=x:/a"\n'
        'role = "target"\n',
        "sync_endpoint_bad_name": '[sync.endpoints."../x"]\npath = "/tmp/x"\n',
        "sync_endpoint_unknown_key": '[sync.endpoints.a]\npath = "/tmp/x"\nbogus = 1\n',
        "unknown_keys": "bogus = 1\n[forecast]\nhorizn = 48\n[nonsense]\nx = 1\n",
        "tracking_uri_password": f'mlflow_tracking_uri = "postgresql://u:{SECRET}@127.0.0.1:5432/nope"\n',
        "huge_file": "# " + "x" * (20 * 2**20) + "\n",
    }
    envs = {
        "env_horizon_negative": {"REPLICAST_FORECAST__HORIZON": "-1"},
        "env_horizon_1e99": {"REPLICAST_FORECAST__HORIZON": "1e99"},
        "env_horizon_huge_int": {"REPLICAST_FORECAST__HORIZON": "9" * 5000},
        "env_data_dir_proc": {"REPLICAST_DATA_DIR": "/proc"},
        "env_data_dir_file": {"REPLICAST_DATA_DIR": "/etc/hostname"},
        "env_data_dir_empty": {"REPLICAST_DATA_DIR": " "},
        "env_tracking_pg_password": {
            "REPLICAST_MLFLOW_TRACKING_URI": f"postgresql://replicast:{SECRET}@127.0.0.1:5432/nope"
        },
        "env_tracking_unknown_scheme": {
            "REPLICAST_MLFLOW_TRACKING_URI": f"bogus+scheme://u:{SECRET}@example.invalid/x"
        },
        "env_tracking_http_password": {
            "REPLICAST_MLFLOW_TRACKING_URI": f"http://u:{SECRET}@127.0.0.1:1"
        },
        "env_port_text": {"REPLICAST_SERVE__PORT": "abc"},
        "env_fleet_not_json": {"REPLICAST_FLEET": "{not json"},
        "env_fleet_empty_regions": {"REPLICAST_FLEET": '{"regions": []}'},
        "env_sync_endpoints_proc": {
            "REPLICAST_SYNC__ENDPOINTS": '{"x": {"path": "/proc", "role": "target"}}'
        },
        "env_ingest_sources_uri_password": {
            "REPLICAST_INGEST_SOURCES": f'["postgresql://u:{SECRET}@127.0.0.1:1/db"]'
        },
        "env_schedule_garbage": {"REPLICAST_SCHEDULE": '{"ingest": "x y z"}'},
    }
    cheap = (["schedule", "--list"], ["run", "ingest"])
    for name, text in {**tomls, **{k: None for k in envs}}.items():
        kind = "toml" if text is not None else "env"
        # report reads MLflow: only where the tracking URI or the data dir is the point
        mlflow = "tracking" in name or "data_dir" in name
        for cmd in (*cheap, ["report"]) if mlflow else cheap:
            d = root / f"settings-{name}-{cmd[0]}"
            d.mkdir()
            env_extra = envs.get(name, {})
            if text is not None:
                (d / "replicast.toml").write_text(text.replace("{root}", str(d)))
            env = base_env(**env_extra)
            r = run(list(cmd), d, env=env, timeout=timeout)
            problems = []
            if name.startswith("sync_endpoint") and r.code == 0 and "relative" not in name:
                problems.append("a sync endpoint on replicast's own state was accepted")
            results.record(
                "settings",
                f"{kind}:{name}",
                " ".join(cmd),
                r.code,
                r.out,
                repro=(f"replicast.toml: {text[:200]!r}; " if text else "")
                + shell_repro(list(cmd), env_extra),
                problems=problems,
            )
            results.note(
                "settings",
                f"{kind}:{name}",
                f"{' '.join(cmd)}: exit {r.code}, {_first_line(r.out)}",
            )
            shutil.rmtree(d, ignore_errors=True)


# -- 4. HTTP ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    cwd: Path, env: dict[str, str], log: Path, timeout: float = 120, probe: str = "/readyz"
) -> Iterator[str]:
    """``replicast serve`` as a process on a free port; the base URL once ``probe`` is 200."""
    port = free_port()
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [EXE, "serve", "--host", "127.0.0.1", "-p", str(port)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limits(MEM_GIB),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}{probe}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve: {probe} not 200 within {timeout} s")
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Req:
    kind: str
    case: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str | bytes] = field(default_factory=dict)
    auth: bool = False
    chunked: bool = False


def _raw(base: str, data: bytes, timeout: float) -> tuple[int | str | None, str]:
    """Send raw bytes; the status code, 'closed' when the server hung up, None on timeout."""
    host, port = base.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and len(b"".join(chunks)) > 4096:
                    break
    except TimeoutError:
        return None, ""
    except ConnectionError:
        return "closed", ""
    reply = b"".join(chunks).decode("utf-8", "replace")
    if not reply:
        return "closed", ""
    try:
        return int(reply.split(" ", 2)[1]), reply
    except (IndexError, ValueError):
        return "garbled", reply


def send(client: httpx.Client, base: str, req: Req, timeout: float) -> tuple[int | str | None, str]:
    headers = {"content-type": "application/json", **req.headers}
    if req.auth:
        headers["authorization"] = f"Bearer {TOKEN}"
    content: Any = req.body
    if req.chunked and req.body is not None:
        body = req.body

        def gen() -> Iterator[bytes]:
            for i in range(0, len(body), 65536):
                yield body[i : i + 65536]

        content = gen()
    try:
        resp = client.request(
            req.method, base + req.path, content=content, headers=headers, timeout=timeout
        )
    except httpx.TimeoutException:
        return None, ""
    except httpx.InvalidURL:  # httpx refuses URLs over 64 KiB: send those by hand
        head = f"{req.method} {req.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        return _raw(base, head.encode(), timeout)
    except (httpx.LocalProtocolError, UnicodeEncodeError) as exc:  # the client would not send it
        return "client_refused", str(exc)
    except (
        httpx.RemoteProtocolError,
        httpx.ReadError,
        httpx.WriteError,
        httpx.ConnectError,
    ) as exc:
        return "closed", str(exc)
    return resp.status_code, resp.text


def _j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def http_requests() -> list[Req]:
    reqs: list[Req] = []
    add = reqs.append
    hist_ts = [f"2026-10-0{1 + i // 24}T{i % 24:02d}:00:00Z" for i in range(72)]
    for body in (
        b'{"target":',
        b"not json",
        b"",
        b"[]",
        b"null",
        b'"x"',
        b"{'a': 1}",
        b'{"target": "qps_total",}',
        b"\xff\xfe{}",
        b'{"target": "qps_total"}\x00',
        b'{"target": "cpu_util", "target": "qps_total"}',
    ):
        add(Req("malformed_json", f"forecast {body[:30]!r}", "POST", "/v1/forecast", body))
        add(Req("malformed_json", f"sync {body[:30]!r}", "POST", "/v1/sync/runs", body, auth=True))
    add(
        Req(
            "malformed_json",
            "sizing text/plain",
            "POST",
            "/v1/sizing",
            b"hello",
            {"content-type": "text/plain"},
        )
    )
    add(
        Req(
            "malformed_json",
            "forecast form",
            "POST",
            "/v1/forecast",
            b"a=1",
            {"content-type": "application/x-www-form-urlencoded"},
        )
    )
    wrong = [
        ("forecast", "/v1/forecast", {"target": 5}),
        ("forecast", "/v1/forecast", {"target": "nope"}),
        ("forecast", "/v1/forecast", {"horizon": "abc"}),
        ("forecast", "/v1/forecast", {"horizon": -1}),
        ("forecast", "/v1/forecast", {"horizon": 0}),
        ("forecast", "/v1/forecast", {"horizon": 10**30}),
        ("forecast", "/v1/forecast", {"horizon": 10**6}),
        ("forecast", "/v1/forecast", {"horizon": 1.5}),
        ("forecast", "/v1/forecast", {"horizon": True}),
        ("forecast", "/v1/forecast", {"series_ids": "orders/us-east"}),
        ("forecast", "/v1/forecast", {"series_ids": [1, 2]}),
        ("forecast", "/v1/forecast", {"series_ids": []}),
        ("forecast", "/v1/forecast", {"quantiles": [2]}),
        ("forecast", "/v1/forecast", {"quantiles": [0]}),
        ("forecast", "/v1/forecast", {"quantiles": ["a"]}),
        ("forecast", "/v1/forecast", {"quantiles": []}),
        ("forecast", "/v1/forecast", {"quantiles": [0.5] * 10000}),
        ("forecast", "/v1/forecast", {"bogus": 1}),
        ("forecast", "/v1/forecast", {"history": {"ts": hist_ts, "y": [1.0] * 71}}),
        ("forecast", "/v1/forecast", {"history": {"ts": ["yesterday"], "y": [1]}}),
        ("forecast", "/v1/forecast", {"history": {"ts": [1, 2], "y": [1, 2]}}),
        ("forecast", "/v1/forecast", {"history": {"ts": ["2026-10-01T00:00:00"] * 2, "y": [1, 2]}}),
        ("forecast", "/v1/forecast", {"history": {"ts": [hist_ts[0]] * 72, "y": [1.0] * 72}}),
        ("forecast", "/v1/forecast", {"history": {"ts": hist_ts[::-1], "y": [1.0] * 72}}),
        ("forecast", "/v1/forecast", {"history": {"ts": hist_ts, "y": [None] * 72}}),
        ("forecast", "/v1/forecast", {"history": {"ts": hist_ts, "y": [1e308] * 72}}),
        ("forecast", "/v1/forecast", {"history": {"ts": hist_ts, "y": [-1e308, 1e308] * 36}}),
        (
            "forecast",
            "/v1/forecast",
            {"history": {"ts": ["0001-01-01T00:00:00Z", "9999-12-31T23:00:00Z"], "y": [1, 2]}},
        ),
        ("forecast", "/v1/forecast", {"history": {"ts": hist_ts[:1], "y": [1.0]}}),
        ("forecast", "/v1/forecast", {"history": {"ts": [], "y": []}}),
        (
            "forecast",
            "/v1/forecast",
            {"history": {"ts": hist_ts, "y": [1.0] * 72}, "series_ids": ["orders/us-east"]},
        ),
        ("sizing", "/v1/sizing", {"clusters": 5}),
        ("sizing", "/v1/sizing", {"clusters": ["nope"]}),
        ("sizing", "/v1/sizing", {"risk": 1.5}),
        ("sizing", "/v1/sizing", {"risk": 0}),
        ("sizing", "/v1/sizing", {"target_util": 0}),
        ("sizing", "/v1/sizing", {"target_util": -1}),
        ("sizing", "/v1/sizing", {"horizon": 10**9}),
        ("sizing", "/v1/sizing", {"node_types": ["db.none"]}),
        ("sizing", "/v1/sizing", {"node_types": []}),
        ("sync", "/v1/sync/runs", {"source": 1, "target": 2}),
        ("sync", "/v1/sync/runs", {"source": "src"}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "budget_bytes": -1}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "budget_bytes": 2**70}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "bwlimit": 0}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "bwlimit": "40MiB"}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "concurrency": 10**6}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "delete": "yes"}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "transport": "ftp"}),
        ("sync", "/v1/sync/runs", {"source": "dst", "target": "src"}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "src"}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "cluster": "nope"}),
        ("sync", "/v1/sync/runs", {"source": "src", "target": "dst", "replica": "mars"}),
    ]
    for route, path, obj in wrong:
        add(
            Req(
                "wrong_types",
                f"{route} {json.dumps(obj)[:80]}",
                "POST",
                path,
                _j(obj),
                auth=route == "sync",
            )
        )
    big = _j({"history": {"ts": hist_ts * 2000, "y": [1.0] * 144000}})
    add(Req("huge_body", f"forecast {len(big)} B", "POST", "/v1/forecast", big))
    add(
        Req(
            "huge_body", f"forecast {len(big)} B chunked", "POST", "/v1/forecast", big, chunked=True
        )
    )
    add(Req("huge_body", f"sync {len(big)} B", "POST", "/v1/sync/runs", big, auth=True))
    add(
        Req(
            "huge_body",
            f"sync {len(big)} B chunked",
            "POST",
            "/v1/sync/runs",
            big,
            auth=True,
            chunked=True,
        )
    )
    add(
        Req(
            "huge_body",
            "sizing 20 MB of spaces chunked",
            "POST",
            "/v1/sizing",
            b" " * (20 * 2**20) + b"{}",
            chunked=True,
        )
    )
    add(
        Req(
            "huge_body",
            "gzip content-encoding bomb",
            "POST",
            "/v1/forecast",
            gzip.compress(b" " * (50 * 2**20) + b"{}"),
            {"content-encoding": "gzip"},
        )
    )
    for depth in (100, 1000, 100_000):
        nested = b"[" * depth + b"]" * depth
        add(
            Req(
                "deep_nesting",
                f"forecast y depth {depth}",
                "POST",
                "/v1/forecast",
                b'{"history": {"ts": [], "y": ' + nested + b"}}",
            )
        )
        add(
            Req(
                "deep_nesting",
                f"forecast object depth {depth}",
                "POST",
                "/v1/forecast",
                b'{"a":' * depth + b"1" + b"}" * depth,
            )
        )
        add(
            Req(
                "deep_nesting",
                f"sync depth {depth}",
                "POST",
                "/v1/sync/runs",
                b'{"source": ' + nested + b"}",
                auth=True,
            )
        )
    for token in (b"Infinity", b"-Infinity", b"NaN", b"1e999", b"-1e999"):
        add(
            Req(
                "non_finite",
                f"horizon {token!r}",
                "POST",
                "/v1/forecast",
                b'{"horizon": ' + token + b"}",
            )
        )
        add(
            Req(
                "non_finite",
                f"quantiles {token!r}",
                "POST",
                "/v1/forecast",
                b'{"quantiles": [' + token + b"]}",
            )
        )
        add(
            Req(
                "non_finite",
                f"history y {token!r}",
                "POST",
                "/v1/forecast",
                b'{"history": {"ts": '
                + _j(hist_ts)
                + b', "y": ['
                + b", ".join([token] * 72)
                + b"]}}",
            )
        )
        add(
            Req(
                "non_finite",
                f"sizing risk {token!r}",
                "POST",
                "/v1/sizing",
                b'{"risk": ' + token + b"}",
            )
        )
        add(
            Req(
                "non_finite",
                f"sync bwlimit {token!r}",
                "POST",
                "/v1/sync/runs",
                b'{"source": "src", "target": "dst", "bwlimit": ' + token + b"}",
                auth=True,
            )
        )
    for sid in (
        "nope",
        "orders/mars",
        "../../etc/passwd",
        "orders/us-east\x00",
        "💩/☃",
        "a" * 10000,
        "orders/us-east/../eu-west",
        "%2e%2e",
        "orders/us-east' OR '1'='1",
    ):
        add(
            Req(
                "unknown_series",
                f"series_ids {sid[:40]!r}",
                "POST",
                "/v1/forecast",
                _j({"series_ids": [sid]}),
            )
        )
    for cluster in ("nope", "", "../etc", "orders\x00", "💩", "a" * 5000, "orders;rm -rf /"):
        add(
            Req(
                "unknown_series",
                f"priorities cluster {cluster[:30]!r}",
                "GET",
                "/v1/priorities?" + httpx.QueryParams({"cluster": cluster}).__str__(),
            )
        )
    for q in (
        "cluster=orders&replica=mars",
        "cluster=orders&limit=-1",
        "cluster=orders&limit=1e99",
        "cluster=orders&limit=abc",
        "cluster=orders&limit=99999999999999999999999",
        "",
        "cluster=orders&cluster=users",
        "cluster=%ff%fe",
        "cluster=%00",
    ):
        add(Req("unknown_series", f"priorities {q[:40]}", "GET", f"/v1/priorities?{q}"))
    sync_raw = [
        {"source": "/etc", "target": "dst"},
        {"source": "src", "target": "/tmp/hostile-http"},
        {"source": "src", "target": "evil.example:/tmp"},
        {"source": "src", "target": "-oProxyCommand=touch /tmp/x"},
        {"source": "src", "target": "localhost:/tmp/hostile-http"},
        {"source": "../src", "target": "dst"},
        {"source": "src", "target": "dst/.."},
        {"source": "src\n", "target": "dst"},
        {"source": "src", "target": "dst", "segment_pattern": "../*"},
        {"source": "src", "target": "dst", "segment_pattern": "/etc/*"},
        {"source": "src", "target": "dst", "segment_pattern": "**/../../*"},
        {"source": "src", "target": "dst", "segment_pattern": ".."},
        {"source": "src", "target": "dst", "segment_pattern": "seg/../../.."},
        {"source": "src", "target": "dst", "segment_pattern": "~root/*"},
        {"source": "src", "target": "dst", "segment_pattern": "seg\x00*"},
        {"source": "src", "target": "dst", "segment_pattern": "*" * 200},
        {"source": "src", "target": "dst", "segment_pattern": "[" * 100},
        {"source": "src", "target": "dst", "segment_pattern": "..\\..\\*"},
        {
            "source": "src",
            "target": "dst",
            "transport": "rsync",
            "segment_pattern": "$(touch /tmp/x)",
        },
        {"source": "src", "target": "dst", "transport": "rsync", "segment_pattern": "-e sh"},
    ]
    for obj in sync_raw:
        add(
            Req(
                "sync_paths_hosts",
                json.dumps(obj)[:100],
                "POST",
                "/v1/sync/runs",
                _j(obj),
                auth=True,
            )
        )
    valid_sync = _j({"source": "src", "target": "dst", "dry_run": True})
    for label, hdr in (
        ("no token", {}),
        ("wrong token", {"authorization": "Bearer wrong"}),
        ("token prefix", {"authorization": f"Bearer {TOKEN[:-1]}"}),
        ("token + suffix", {"authorization": f"Bearer {TOKEN}x"}),
        ("basic", {"authorization": "Basic " + "dTpw"}),
        ("bare token", {"authorization": TOKEN}),
        ("lowercase bearer", {"authorization": f"bearer {TOKEN}"}),
        ("empty bearer", {"authorization": "Bearer"}),
        ("token in query", {}),
        ("unicode token", {"authorization": "Bearer ☃".encode()}),
        ("long token", {"authorization": "Bearer " + "x" * 60000}),
    ):
        path = f"/v1/sync/runs?token={TOKEN}" if label == "token in query" else "/v1/sync/runs"
        add(Req("auth", f"sync {label}", "POST", path, valid_sync, hdr))
        add(Req("auth", f"reload {label}", "POST", "/admin/reload", b"", hdr))
        add(Req("auth", f"cancel {label}", "DELETE", "/v1/sync/runs/abc", None, hdr))
    for method, path in (
        ("GET", "/v1/forecast"),
        ("PUT", "/v1/sync/runs"),
        ("DELETE", "/healthz"),
        ("PATCH", "/v1/sizing"),
        ("OPTIONS", "/v1/forecast"),
        ("TRACE", "/v1/forecast"),
        ("HEAD", "/v1/sizing"),
        ("POST", "/healthz"),
        ("GET", "/admin/reload"),
        ("PROPFIND", "/"),
        ("GET", "/nonexistent"),
        ("POST", "/v1/sync/runs/abc"),
    ):
        add(
            Req(
                "wrong_method",
                f"{method} {path}",
                method,
                path,
                b"{}" if method in ("POST", "PUT", "PATCH") else None,
                auth=True,
            )
        )
    for n in (8_000, 60_000, 1_000_000):
        add(
            Req(
                "long_url", f"priorities cluster of {n}", "GET", "/v1/priorities?cluster=" + "a" * n
            )
        )
        add(Req("long_url", f"path of {n}", "GET", "/v1/sync/runs/" + "a" * n))
    add(
        Req(
            "long_url",
            "10000 query params",
            "GET",
            "/v1/priorities?" + "&".join(f"x{i}=1" for i in range(10000)),
        )
    )
    for seg in (
        "%F0%9F%92%A9",
        "%FF%FE",
        "%00",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "☃",
        "abc%",
        "%C0%AF",
        "abc?x=%ZZ",
        "a" * 64,
        "a" * 65,
        "ABC",
        "0x1f",
        "%20",
    ):
        add(Req("path_params", f"GET runs/{seg[:20]}", "GET", f"/v1/sync/runs/{seg}"))
        add(
            Req(
                "path_params",
                f"DELETE runs/{seg[:20]}",
                "DELETE",
                f"/v1/sync/runs/{seg}",
                auth=True,
            )
        )
    for path in (
        "/v1/../admin/reload",
        "//v1//forecast",
        "/v1/forecast/",
        "/v1/%66orecast",
        "/docs/../openapi.json",
        "/openapi.json",
        "/metrics",
        "/readyz",
    ):
        add(Req("path_params", f"GET {path}", "GET", path))
    return reqs


RAW_REQUESTS: list[tuple[str, bytes]] = [
    ("raw bytes in path", b"GET /v1/sync/runs/\xff\xfe\x00 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad percent in path", b"GET /v1/sync/runs/%zz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("utf8 path", "GET /v1/sync/runs/☃ HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
    ("no host", b"GET /healthz HTTP/1.1\r\n\r\n"),
    ("http/0.9", b"GET /healthz\r\n\r\n"),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100),
    ("huge header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 200_000 + b"\r\n\r\n"),
    (
        "declared 5 MB body",
        b"POST /v1/forecast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5000000\r\n\r\n{}",
    ),
    (
        "negative content-length",
        b"POST /v1/forecast HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    ),
    (
        "two content-lengths",
        b"POST /v1/forecast HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}",
    ),
    (
        "bad chunk size",
        b"POST /v1/forecast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n",
    ),
    (
        "request smuggling CL+TE",
        b"POST /v1/forecast HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/reload HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
]


def _sync_endpoint_dirs(d: Path) -> tuple[Path, Path]:
    src, dst = d / "ep" / "src", d / "ep" / "dst"
    _segments(src)
    dst.mkdir(parents=True)
    return src, dst


#: A directory an earlier ``--keep`` run trained in (``<kept>/http``): skips the training.
REUSE_HTTP: Path | None = None


def _http_dir(root: Path) -> Path:
    """A data dir with the sample ingested, a small champion and two sync endpoints."""
    if REUSE_HTTP is not None:
        shutil.rmtree(REUSE_HTTP / "ep" / "dst", ignore_errors=True)
        (REUSE_HTTP / "ep" / "dst").mkdir()
        return REUSE_HTTP
    d = root / "http"
    d.mkdir()
    src, dst = _sync_endpoint_dirs(d)
    (d / "replicast.toml").write_text(
        f'[sync.endpoints.src]\npath = "{src}"\nrole = "source"\n\n'
        f'[sync.endpoints.dst]\npath = "{dst}"\nrole = "target"\nallow_delete = true\n'
    )
    train = run(
        ["train", "--ingest-sample", "-m", "seasonal_naive_day", "-k", "1", "--no-decisions"],
        d,
        timeout=600,
    )
    if train.code != 0:
        raise RuntimeError(f"training failed:\n{train.out[-3000:]}")
    return d


def try_http(results: Results, root: Path, timeout: float) -> None:
    d = _http_dir(root)
    dst = d / "ep" / "dst"
    outside_before = tree(d) - {p for p in tree(d) if p.startswith(("var", "ep/dst"))}
    env = base_env(REPLICAST_SERVE__API_TOKEN=TOKEN)
    log = d / "serve.log"
    with server(d, env, log) as base, httpx.Client() as client:
        for req in http_requests():
            code, text = send(client, base, req, timeout)
            results.note("http", req.kind, f"{code}: {req.case} -> {text[:160]}")
            if code == 202 and req.method == "POST":  # one run per target: let it finish
                results.note("http", req.kind, f"  run ended {_settle(client, base, text)}")
            results.record(
                "http",
                req.kind,
                req.case,
                code,
                text,
                repro=f"curl -X {req.method} '{base}{req.path[:200]}'"
                + (" -H 'authorization: Bearer $TOKEN'" if req.auth else "")
                + (f" --data-binary {req.body[:120]!r}" if req.body else ""),
            )
        for case, data in RAW_REQUESTS:
            code, text = _raw(base, data, timeout)
            results.record(
                "http",
                "raw_protocol",
                case,
                code,
                text,
                repro=f"printf {data[:160]!r} | nc 127.0.0.1 PORT",
            )
        # valid requests last: the endpoints work, and nothing left the target
        code, text = send(
            client,
            base,
            Req(
                "control",
                "valid sync run",
                "POST",
                "/v1/sync/runs",
                _j({"source": "src", "target": "dst", "order": "alpha"}),
                auth=True,
            ),
            timeout,
        )
        results.record(
            "http", "control", "valid sync run", code, text, repro="POST /v1/sync/runs src->dst"
        )
        if code == 202:
            results.note("http", "control", f"valid sync run: {_settle(client, base, text)}")
        code, text = send(client, base, Req("control", "healthz", "GET", "/healthz"), timeout)
        results.record(
            "http", "control", "healthz after everything", code, text, repro="GET /healthz"
        )
        code, text = send(
            client,
            base,
            Req(
                "control",
                "forecast",
                "POST",
                "/v1/forecast",
                _j({"series_ids": ["orders/us-east"]}),
            ),
            timeout,
        )
        results.record(
            "http", "control", "forecast after everything", code, text, repro="POST /v1/forecast {}"
        )
    outside_after = tree(d) - {p for p in tree(d) if p.startswith(("var", "ep/dst"))}
    stray = sorted(outside_after - outside_before - {"serve.log"})
    for p in ("/tmp/x", "/tmp/hostile-http"):
        if Path(p).exists():
            stray.append(p)
    copied = sorted(p for p in tree(dst) if p.count("/") == 0)
    results.note("http", "control", f"target after the valid run: {copied}")
    _server_log(results, log, "serve (token, sync endpoints)", stray)
    _secret_server(results, root, timeout)


def _settle(client: httpx.Client, base: str, accepted: str, limit: float = 60) -> str:
    """Wait (bounded) until the run a 202 answer names is no longer active; its state."""
    run_id = json.loads(accepted)["run_id"]
    deadline = time.monotonic() + limit
    state = "?"
    while time.monotonic() < deadline:
        status = client.get(f"{base}/v1/sync/runs/{run_id}", timeout=10).json()
        state = f"{status['state']} {str(status.get('error') or '')[:120]}".strip()
        if status["state"] not in ("queued", "running", "cancelling"):
            break
        time.sleep(0.2)
    return state


def _server_log(results: Results, log: Path, label: str, stray: list[str]) -> None:
    text = log.read_text(errors="replace")
    # JSON logs carry an unhandled error as exc_info (the traceback object unrendered)
    unhandled = [x for x in text.splitlines() if "unhandled error" in x or "Exception in ASGI" in x]
    if unhandled:
        results.tally("http", "server_log").tracebacks += len(unhandled)
        results.note("http", "server_log", f"{label}: {len(unhandled)} unhandled-error line(s)")
    results.record(
        "http", "server_log", label, "log", text, repro=f"see {log.name}", misplaced=stray
    )
    results.note("http", "server_log", f"{label}: {len(text.splitlines())} log lines")


def _secret_server(results: Results, root: Path, timeout: float) -> None:
    """A server whose tracking URI carries a password: it must never show it."""
    d = root / "http-secret"
    d.mkdir()
    uri = f"postgresql://replicast:{SECRET}@127.0.0.1:5432/hostile_nope"
    env = base_env(REPLICAST_SERVE__API_TOKEN=TOKEN, REPLICAST_MLFLOW_TRACKING_URI=uri)
    log = d / "serve.log"
    try:
        with server(d, env, log, probe="/healthz") as base, httpx.Client() as client:
            for req in (
                Req("tracking_uri_password", "readyz", "GET", "/readyz"),
                Req("tracking_uri_password", "forecast", "POST", "/v1/forecast", b"{}"),
                Req("tracking_uri_password", "sizing", "POST", "/v1/sizing", b"{}"),
                Req("tracking_uri_password", "reload", "POST", "/admin/reload", b"", auth=True),
                Req("tracking_uri_password", "metrics", "GET", "/metrics"),
                Req("tracking_uri_password", "openapi", "GET", "/openapi.json"),
            ):
                code, text = send(client, base, req, timeout)
                results.record(
                    "http",
                    req.kind,
                    req.case,
                    code,
                    text,
                    repro=f"REPLICAST_MLFLOW_TRACKING_URI='{uri}' replicast serve; "
                    f"{req.method} {req.path}",
                    expected=frozenset({503}),  # no champion: the registry is unreachable
                )
    except RuntimeError as exc:  # refusing to start is fine if it says why without the secret
        results.note("http", "tracking_uri_password", f"serve did not start: {str(exc)[:300]}")
    _server_log(results, log, "serve (tracking URI with password)", [])


# -- main -------------------------------------------------------------------------------
SECTIONS: dict[str, Callable[[Results, Path, float], None]] = {
    "cli_files": try_files,
    "cli_options": try_options,
    "settings": try_settings,
    "http": try_http,
}


def table(results: Results) -> str:
    head = (
        "| way in | kind | tries | codes | tracebacks | 5xx | rows lost | secrets | hangs "
        "| misplaced |"
    )
    rows = [head, "|" + "---|" * 10]
    for way, kinds in results.ways.items():
        for kind, t in kinds.items():
            codes = " ".join(f"{k}×{v}" for k, v in sorted(t.codes.items()))
            rows.append(
                f"| {way} | {kind} | {t.count} | {codes} | {t.tracebacks} | {t.server_errors} | "
                f"{t.rows_lost} | {t.secrets_echoed} | {t.hangs} | {t.misplaced_writes} |"
            )
    tot = results.totals()
    rows.append(
        f"| **total** | | {tot['count']} | | {tot['tracebacks']} | {tot['server_errors']} | "
        f"{tot['rows_lost']} | {tot['secrets_echoed']} | {tot['hangs']} | "
        f"{tot['misplaced_writes']} |"
    )
    return "\n".join(rows)


def main() -> None:
    global MEM_GIB, REUSE_HTTP
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS), help="run only these ways in")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per try (a hang beyond)"
    )
    parser.add_argument(
        "--mem-gib", type=float, default=MEM_GIB, help="address-space cap per process"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--http-dir", type=Path, help="reuse <kept dir>/http (no training)")
    args = parser.parse_args()
    MEM_GIB = args.mem_gib
    REUSE_HTTP = args.http_dir
    results = Results()
    root = Path(tempfile.mkdtemp(prefix="replicast-hostile-"))
    started = time.monotonic()
    seconds: dict[str, float] = {}
    try:
        for name in args.only or SECTIONS:
            t0 = time.monotonic()
            SECTIONS[name](results, root, args.timeout)
            seconds[name] = round(time.monotonic() - t0, 1)
            print(f"{name}: {seconds[name]} s", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            _chmod_back(root)
            shutil.rmtree(root, ignore_errors=True)
    out = results.as_json()
    out["seconds"] = {**seconds, "total": round(time.monotonic() - started, 1)}
    out["timeout_s"] = args.timeout
    out["mem_gib"] = MEM_GIB
    out["euid"] = os.geteuid()
    print(table(results))
    failures = [
        (way, kind, f)
        for way, kinds in results.ways.items()
        for kind, t in kinds.items()
        for f in t.failures
    ]
    for way, kind, f in failures:
        print(f"FAIL {way}/{kind}: {f['case']}: {'; '.join(f['why'])}\n    {f['repro'][:300]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
