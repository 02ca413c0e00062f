"""Benchmark the HTTP service against ``mlflow models serve`` on the same champion.

Starts ``replicast serve`` and ``mlflow models serve --env-manager local -m
models:/replicast-load@champion`` on loopback ports and loads both with wrk (a Lua
script posts the bodies) at 1, 8 and 32 connections: one single-series forecast per
request (replicast: a known series whose history the service caches; mlflow: the
same series' last ``--history-hours`` of history in the request, which the pyfunc
needs). Then, on replicast only:

- **swap under load**: wrk at 8 connections while a new champion version is
  registered and ``POST /admin/reload`` swaps it in: errors, and which versions
  the responses named (each must name exactly one);
- **SIGTERM under load**: wrk at 8 connections, SIGTERM to the server mid-run:
  5xx count (must be 0), socket errors after the listener closed, exit code.

The registry lives in ``--data-dir`` (default ``bench/out/serve-var``); if it has no
champion the sample fleet is ingested and a small model trained first (minutes).

Usage: ``python bench/serve.py --json bench/out/serve.json [--duration 20]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "bench-token-not-secret"
SERIES = "orders/us-east"
TARGET = "qps_total"

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("%(body)s", "rb"):read("*a")

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  status_5xx = 0
  status_other = 0
  versions = {}
  multi_version = 0
end

function response(status, headers, body)
  if status >= 500 then
    status_5xx = status_5xx + 1
  elseif status ~= 200 then
    status_other = status_other + 1
  end
  if status == 200 and %(check_versions)s then
    local n = 0
    for v in string.gmatch(body, '"model_version":"([^"]*)"') do
      n = n + 1
      versions[v] = (versions[v] or 0) + 1
    end
    if n ~= 1 then multi_version = multi_version + 1 end
  end
end

function done(summary, latency, requests)
  local s5, so, mv = 0, 0, 0
  local seen = {}
  for _, t in ipairs(threads) do
    s5 = s5 + t:get("status_5xx")
    so = so + t:get("status_other")
    mv = mv + t:get("multi_version")
    local v = t:get("versions")
    for k, c in pairs(v) do seen[k] = (seen[k] or 0) + c end
  end
  local parts = {}
  for k, c in pairs(seen) do table.insert(parts, string.format('"%%s":%%d', k, c)) end
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_s":%%.3f,"rps":%%.1f,"p50_ms":%%.3f,"p90_ms":%%.3f,' ..
    '"p99_ms":%%.3f,"max_ms":%%.3f,"errors_connect":%%d,"errors_read":%%d,"errors_write":%%d,' ..
    '"errors_timeout":%%d,"errors_status":%%d,"status_5xx":%%d,"status_other":%%d,' ..
    '"responses_not_one_version":%%d,"versions":{%%s}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, s5, so, mv, table.concat(parts, ",")))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"[bench/serve] {message}", file=sys.stderr, flush=True)


def bench_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # mlflow execs `uvicorn`
    env["REPLICAST_DATA_DIR"] = str(data_dir)
    env["REPLICAST_SERVE__API_TOKEN"] = TOKEN
    env["REPLICAST_SERVE__REFRESH_SECONDS"] = "3600"  # the bench reloads explicitly
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{data_dir / 'mlflow.db'}"
    env.pop("REPLICAST_CONFIG", None)
    env.pop("REPLICAST_MLFLOW_TRACKING_URI", None)
    return env


def settings_for(data_dir: Path) -> Any:
    from forecasting.settings import Settings

    return Settings(data_dir=data_dir)


def ensure_champion(data_dir: Path, env: dict[str, str]) -> str:
    """The champion's version; ingest the sample and train a small model if there is none."""
    from models.mlflow_registry import LOAD_MODEL, Registry

    settings = settings_for(data_dir)
    version = Registry.from_settings(settings).champion_version(LOAD_MODEL)
    if version is not None:
        return version
    log(f"no champion in {data_dir}: ingesting the sample and training (takes minutes)")
    subprocess.run(
        [
            str(BIN / "replicast"),
            "train",
            "--ingest-sample",
            "-m",
            "lightgbm",
            "-m",
            "seasonal_naive_day",
            "-k",
            "1",
        ],
        env=env,
        cwd=data_dir.parent,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    version = Registry.from_settings(settings).champion_version(LOAD_MODEL)
    if version is None:
        raise SystemExit("training registered no champion; see `replicast train` output")
    return version


def mlflow_body(data_dir: Path, hours: int) -> dict[str, Any]:
    """The pyfunc request: the series' last ``hours`` of history plus target/horizon params."""
    from forecasting.lake import Lake
    from pipelines.load_series import read_series

    frame = read_series(Lake(data_dir / "lake"), [TARGET])[TARGET]
    hist = frame[frame["series_id"] == SERIES].tail(hours)
    return {
        "dataframe_split": {
            "columns": ["series_id", "ts", "y"],
            "data": [[r.series_id, r.ts.isoformat(), float(r.y)] for r in hist.itertuples()],
        },
        "params": {"target": TARGET, "horizon": 24},
    }


class Server:
    """A server subprocess in its own session, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, url: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited early; see {self.log_path}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"{self.name} not ready after {timeout} s; see {self.log_path}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def run_wrk(
    url: str, body: Path, connections: int, duration: float, workdir: Path, check_versions: bool
) -> dict[str, Any]:
    script = workdir / f"post-{body.stem}.lua"
    script.write_text(
        LUA % {"body": str(body), "check_versions": "true" if check_versions else "false"}
    )
    threads = max(1, min(connections, 2))
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result = json.loads(line.removeprefix("WRKJSON "))
            result["connections"] = connections
            result["errors"] = sum(
                result[k]
                for k in (
                    "errors_connect",
                    "errors_read",
                    "errors_write",
                    "errors_timeout",
                    "errors_status",
                )
            )
            return result
    raise SystemExit(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")


def register_new_champion(data_dir: Path) -> str:
    """Register the current champion's model again with a better score: a new version."""
    from models.mlflow_registry import LOAD_MODEL, Registry

    registry = Registry.connect(settings_for(data_dir))
    current = registry.load_champion(LOAD_MODEL)
    python_model = current.pyfunc.unwrap_python_model()
    score = (current.score if current.score is not None else 1.0) * 0.999
    example = pd_example(data_dir)
    with registry.run("bench-serve-swap"):
        gate = registry.register_with_gate(
            name=LOAD_MODEL,
            python_model=python_model,
            input_example=example,
            score=score,
            score_name=current.tags.get("score_name", "bench"),
        )
    if gate.alias != "champion":
        raise SystemExit(f"re-registered version {gate.version} did not become champion")
    return gate.version


def pd_example(data_dir: Path) -> Any:
    import pandas as pd

    body = mlflow_body(data_dir, 48)["dataframe_split"]
    frame = pd.DataFrame(body["data"], columns=body["columns"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.assign(target=TARGET)


def swap_under_load(
    base: str, body: Path, duration: float, data_dir: Path, workdir: Path
) -> dict[str, Any]:
    before = httpx.get(f"{base}/readyz").json()["model_version"]
    result: dict[str, Any] = {}

    def swap() -> None:
        time.sleep(2.0)
        t0 = time.monotonic()
        result["new_version"] = register_new_champion(data_dir)
        reload = httpx.post(
            f"{base}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
        )
        result["reload_status"] = reload.status_code
        result["reload"] = reload.json()
        result["swap_seconds"] = round(time.monotonic() - t0, 3)

    thread = threading.Thread(target=swap)
    thread.start()
    # registering takes a while on a busy machine: keep the load on until well after it
    load = run_wrk(f"{base}/v1/forecast", body, 8, max(duration, 30.0), workdir, True)
    thread.join()
    after = httpx.get(f"{base}/readyz").json()["model_version"]
    new = result.get("new_version")
    return {
        "version_before": before,
        "version_after": after,
        **result,
        "load": load,
        "ok": load["errors"] == 0
        and load["responses_not_one_version"] == 0
        and set(load["versions"]) == {before, new}
        and after == new,
    }


def sigterm_under_load(
    server: Server, base: str, body: Path, duration: float, workdir: Path
) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def terminate() -> None:
        time.sleep(duration / 2)
        outcome["signalled_at_s"] = round(duration / 2, 3)
        t0 = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)
        outcome["exit_code"] = server.proc.wait(60)
        outcome["exit_seconds"] = round(time.monotonic() - t0, 3)

    thread = threading.Thread(target=terminate)
    thread.start()
    load = run_wrk(f"{base}/v1/forecast", body, 8, duration, workdir, check_versions=False)
    thread.join()
    return {
        **outcome,
        "load": load,
        "note": "socket errors after SIGTERM are new requests refused by the closed listener "
        "or on keep-alive connections the server closed; in-flight requests must not 5xx",
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown: -15 is clean
        "ok": load["status_5xx"] == 0
        and load["errors_status"] == 0
        and outcome["exit_code"] in (0, -signal.SIGTERM),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="write the figures here")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load run")
    parser.add_argument("--connections", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--workers", type=int, default=1, help="replicast serve workers")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPO / "bench" / "out" / "serve-var",
        help="data dir with the registry (trained on the sample if it has no champion)",
    )
    parser.add_argument(
        "--history-hours", type=int, default=192, help="history rows sent to mlflow per request"
    )
    parser.add_argument("--skip-mlflow", action="store_true", help="only load replicast")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = bench_env(data_dir)
    version = ensure_champion(data_dir, env)
    log(f"champion version {version} in {data_dir}")
    levels = [int(c) for c in args.connections.split(",") if c.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    rc_body = workdir / "replicast.json"
    rc_body.write_text(json.dumps({"target": TARGET, "series_ids": [SERIES], "horizon": 24}))
    ml_request = mlflow_body(data_dir, args.history_hours)
    ml_body = workdir / "mlflow.json"
    ml_body.write_text(json.dumps(ml_request))
    rows = ml_request["dataframe_split"]["data"]
    adhoc_body = workdir / "replicast-adhoc.json"
    adhoc_body.write_text(
        json.dumps(
            {
                "target": TARGET,
                "history": {
                    "series_id": SERIES,
                    "ts": [r[1] for r in rows],
                    "y": [r[2] for r in rows],
                },
                "horizon": 24,
            }
        )
    )

    rc_port, ml_port = free_port(), free_port()
    rc_base, ml_base = f"http://127.0.0.1:{rc_port}", f"http://127.0.0.1:{ml_port}"
    rc = Server(
        "replicast",
        [
            str(BIN / "replicast"),
            "serve",
            "--port",
            str(rc_port),
            "--workers",
            str(args.workers),
        ],
        env,
        workdir,
    )
    ml = None
    if not args.skip_mlflow:
        ml = Server(
            "mlflow",
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "--env-manager",
                "local",
                "-m",
                "models:/replicast-load@champion",
                "-h",
                "127.0.0.1",
                "-p",
                str(ml_port),
            ],
            env,
            workdir,
        )
    figures: dict[str, Any] = {
        "duration_s": args.duration,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "champion_version": version,
        "request": {
            "replicast": f"POST /v1/forecast one known series ({SERIES}, {TARGET}, 24 steps)",
            "mlflow": f"POST /invocations {args.history_hours} h history of {SERIES}, 24 steps",
            "replicast_adhoc": f"POST /v1/forecast with the same {args.history_hours} h history",
        },
        "replicast": {},
        "mlflow": {},
        "ratios": {},
    }
    try:
        rc.wait_ready(f"{rc_base}/readyz")
        if ml is not None:
            ml.wait_ready(f"{ml_base}/ping")
        sample_rc = httpx.post(
            f"{rc_base}/v1/forecast",
            content=rc_body.read_bytes(),
            headers={"content-type": "application/json"},
        ).json()
        figures["replicast_model_version"] = sample_rc["model_version"]
        if ml is not None:
            sample_ml = httpx.post(
                f"{ml_base}/invocations",
                content=ml_body.read_bytes(),
                headers={"content-type": "application/json"},
                timeout=60,
            )
            sample_ml.raise_for_status()
            a = sample_rc["forecasts"][0]["values"]["q0.5"]
            b = [row["q0.5"] for row in sample_ml.json()["predictions"]]
            figures["median_forecast_max_rel_diff"] = max(
                abs(x - y) / max(abs(y), 1e-9) for x, y in zip(a, b, strict=True)
            )
        for c in levels:
            log(f"replicast at {c} connections")
            figures["replicast"][str(c)] = run_wrk(
                f"{rc_base}/v1/forecast", rc_body, c, args.duration, workdir, False
            )
            if ml is not None:
                log(f"mlflow at {c} connections")
                figures["mlflow"][str(c)] = run_wrk(
                    f"{ml_base}/invocations", ml_body, c, args.duration, workdir, False
                )
                r, m = figures["replicast"][str(c)], figures["mlflow"][str(c)]
                figures["ratios"][str(c)] = {
                    "rps": ratio(r["rps"], m["rps"]),
                    "p99_mlflow_over_replicast": ratio(m["p99_ms"], r["p99_ms"]),
                }
        log("replicast, ad-hoc history (the model runs on every request), 8 connections")
        figures["replicast_adhoc"] = {
            "8": run_wrk(f"{rc_base}/v1/forecast", adhoc_body, 8, args.duration, workdir, False)
        }
        if "8" in figures["mlflow"]:
            figures["ratios"]["adhoc_8"] = {
                "rps": ratio(figures["replicast_adhoc"]["8"]["rps"], figures["mlflow"]["8"]["rps"])
            }
        if ml is not None:
            ml.stop()
            ml = None
        log("model swap under load (8 connections)")
        figures["swap_under_load"] = swap_under_load(
            rc_base, rc_body, args.duration, data_dir, workdir
        )
        log("SIGTERM under load (8 connections)")
        figures["sigterm_under_load"] = sigterm_under_load(
            rc, rc_base, rc_body, min(args.duration, 10.0), workdir
        )
        at8 = figures["replicast"].get("8")
        figures["goals"] = {
            "rps_ratio_at_8_ge_10": (figures["ratios"].get("8") or {}).get("rps", 0) >= 10
            if figures["ratios"]
            else None,
            "p99_at_8_le_20ms": at8["p99_ms"] <= 20 if at8 else None,
            "zero_errors": all(r["errors"] == 0 for r in figures["replicast"].values()),
            "swap_ok": figures["swap_under_load"]["ok"],
            "sigterm_ok": figures["sigterm_under_load"]["ok"],
        }
    finally:
        rc.stop()
        if ml is not None:
            ml.stop()
        figures["loadavg_end"] = os.getloadavg()
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str))
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
