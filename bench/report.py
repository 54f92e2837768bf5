"""Figures as the benchmark prints them: one line per measurement, one table at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass

TARGET = 0.5  # a layer should keep at least half the rate of the layer below


@dataclass(frozen=True)
class Result:
    layer: str
    rate: float
    baseline: str
    baseline_rate: float

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate if self.baseline_rate else 0.0


def per_second(count: int, started: float) -> float:
    return count / max(time.perf_counter() - started, 1e-9)


def show(result: Result) -> Result:
    """Print a measurement as soon as it is taken, and hand it on for the table."""
    print(f"  {result.layer}: {result.rate:,.0f}/s   vs {result.baseline}: {result.baseline_rate:,.0f}/s"
          f"   = {result.ratio:.0%}", flush=True)
    return result


def cost(what: str, rate_on: float, rate_off: float) -> str:
    """Print what a feature adds to each event's time, from rates measured with it on and off (in this run)."""
    line = (f"  {what}: {1e6 / rate_on - 1e6 / rate_off:+,.1f} µs/event"
            f"   ({rate_on:,.0f}/s on vs {rate_off:,.0f}/s off)")
    print(line, flush=True)
    return line


def table(results: list[Result]) -> str:
    header = ("layer", "rate/s", "baseline", "baseline/s", "ratio", f">={TARGET:.0%}")
    rows = [
        (r.layer, f"{r.rate:,.0f}", r.baseline, f"{r.baseline_rate:,.0f}", f"{r.ratio:.1%}",
         "yes" if r.ratio >= TARGET else "NO")
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {1, 3, 4}

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join(text.rstrip() for text in [line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
