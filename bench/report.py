"""docs/benchmarks.md: the machine, the command, one table of every figure, and the notes of each benchmark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .harness import Row


def _cell(figure, fmt: str) -> str:
    return figure.show(fmt) if figure is not None else "—"


def table(rows: Sequence[Row]) -> str:
    lines = ["| Benchmark | Unit | Portal: median (min–max) | Floor | Floor: median (min–max) | "
             "Ratio: median (min–max) | Budget | Met |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        met = "—" if row.budget.startswith("(") else ("yes" if row.met else "**no**")
        lines.append(f"| {row.name} | {row.unit} | {_cell(row.portal, row.fmt)} | {row.floor_name or '—'} | "
                     f"{_cell(row.floor, row.fmt)} | {_cell(row.ratio, '{:.2f}')} | {row.budget} | {met} |")
    return "\n".join(lines)


def render(*, command: str, runs: int, machine: Mapping[str, str], load: str, rows: Sequence[Row],
           setups: Mapping[str, str], notes: Sequence[str], analysis: str, seconds: float) -> str:
    machine_lines = "\n".join(f"| {key} | {value} |" for key, value in machine.items())
    setup_lines = "\n".join(f"- **{name}**: {text}" for name, text in setups.items())
    note_lines = "\n".join(f"- {note}" for note in notes)
    return f"""# Benchmarks

Produced by `{command}` ({runs} runs per figure, {seconds / 60:.1f} minutes). Every ratio is paired: each
run measures the portal and its floor back to back on the same machine, the ratio is taken per run,
and the table gives the median and the min–max of those per-run ratios. Benchmarks are not part of the
test suite; see bench/README.md for what each one does.

## Machine

| | |
|---|---|
{machine_lines}
| load average when the run started | {load} |

## Results

{table(rows)}

## How each was measured

{setup_lines}

{note_lines}

{analysis}
"""
