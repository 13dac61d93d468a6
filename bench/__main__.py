"""python -m bench [--runs N] [--only NAME,...] [--output PATH]: run the benchmarks, write docs/benchmarks.md.

scripts/bench is the one command (it installs wrk and the loopback peers first). Everything runs on
127.0.0.1; every load loop is bounded in count and time. Budget misses are reported in the table, not
through the exit status; a benchmark that cannot measure (a peer fails to start...) exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import api_list, direct_upload, events, report, scale, startup, upload, webhooks
from .harness import ROOT, BenchError, machine

BENCHMARKS = {"api": api_list, "upload": upload, "direct": direct_upload, "startup": startup, "webhooks": webhooks,
              "events": events, "scale": scale}
ANALYSIS = ROOT / "bench" / "analysis.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the report (default: docs/benchmarks.md when all run, else stdout only)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names or args.runs < 1:
        parser.error(f"--only takes names from {', '.join(BENCHMARKS)} (got {args.only!r}); --runs must be ≥ 1")
    output = args.output or (ROOT / "docs" / "benchmarks.md" if set(names) == set(BENCHMARKS) else None)

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.monotonic()
    load = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows, setups, notes = [], {}, []
    try:
        described = machine()
        for name in names:
            log(f"{name}:")
            result = BENCHMARKS[name].run(args.runs, log)
            if isinstance(result, tuple):  # startup also returns its import report
                result, note = result
                notes.append(note)
            rows.extend(result)
            setups[name] = BENCHMARKS[name].SETUP
    except BenchError as exc:
        print(f"scripts/bench: {exc}", file=sys.stderr)
        return 2
    command = "scripts/bench" + (f" {' '.join(argv if argv is not None else sys.argv[1:])}" if (argv or sys.argv[1:]) else "")
    text = report.render(command=command, runs=args.runs, machine=described, load=load, rows=rows, setups=setups,
                         notes=notes, analysis=ANALYSIS.read_text() if ANALYSIS.exists() else "",
                         seconds=time.monotonic() - started)
    print("\n" + report.table(rows))
    if output is not None:
        output.write_text(text)
        print(f"\nwrote {os.path.relpath(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
