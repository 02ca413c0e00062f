"""``python -m replication``: a lean sync entry point (no CLI framework) for scripts and trials.

It takes the same core options as ``replicast sync`` and prints the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from forecasting.errors import ReplicastError
from forecasting.units import parse_rate, parse_size
from replication.executor import run_sync
from replication.request import SyncRequest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication", description=__doc__)
    parser.add_argument("--source", required=True, type=Path)
    parser.add_argument("--target", required=True)
    parser.add_argument("--transport", choices=["delta", "rsync"], default="delta")
    parser.add_argument("--order", choices=["priority", "alpha"], default="priority")
    parser.add_argument("--bwlimit")
    parser.add_argument("--budget-bytes")
    parser.add_argument("--budget-seconds", type=float)
    parser.add_argument("--whole-file", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--no-record", action="store_true", help="skip the sync_runs row")
    args = parser.parse_args(argv)
    request = SyncRequest(
        source=args.source,
        target=args.target,
        transport=args.transport,
        order=args.order,
        bwlimit=parse_rate(args.bwlimit) if args.bwlimit else None,
        budget_bytes=parse_size(args.budget_bytes, what="--budget-bytes")
        if args.budget_bytes
        else None,
        budget_seconds=args.budget_seconds,
        whole_file=args.whole_file,
        concurrency=args.concurrency,
        state_dir=args.state_dir,
        record=not args.no_record,
    )
    try:
        result = run_sync(request)
    except ReplicastError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(result.to_dict(), default=str) + "\n")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
