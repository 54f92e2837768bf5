"""The scaling benchmark in its quick form: the system it starts takes the generated history
(`weibao verify` passes on it, the board counts it right, dispatch folds each sampled request
to the state it was left in) and the table has every figure at every size. Never timings:
the benchmark prints those."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.scale import BASELINES, IDLE, OPEN_SHARE, OPERATIONS, QUICK_SIZES, quick_options, rows, run, table


async def test_the_quick_scaling_benchmark_prints_a_whole_table(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    options = quick_options()
    report = await run(options, tmp_path)

    assert [f.size for f in report] == list(QUICK_SIZES)
    for figures in report:
        assert figures.open == figures.size // OPEN_SHARE
        # The service's view of the history: every request on the board, the open ones open.
        assert (figures.board_open, figures.board_all) == (figures.open, figures.size)
        assert figures.consistent[0] == figures.consistent[1] > 0
        # `weibao verify dispatch`: chain, signatures and the stream, over the history and the run's own requests.
        assert figures.verify_ok, figures.verified
        assert figures.verified["exit_code"] == 0
        assert figures.verified["signed"] == figures.verified["checked"] > figures.events
        assert figures.verified["stream"]["ok"]
        assert set(figures.idle_cpu) == set(IDLE)
        assert figures.idle_events >= 0
        assert {name: len(v) for name, v in figures.latencies.items()} == dict.fromkeys(OPERATIONS, options.samples)
        assert {name: len(v) for name, v in figures.baselines.items()} == dict.fromkeys(BASELINES, options.samples)
        assert set(figures.first_start) == {"dispatch", "billing"}

    # Every cell of the table holds a number; the first column is the base of the ratios.
    found = rows(report)
    assert all(len(row.values) == len(QUICK_SIZES) for row in found)
    assert all(math.isfinite(v) and v >= 0 for row in found for v in row.values), [
        row.label for row in found if not all(math.isfinite(v) for v in row.values)]
    printed = capsys.readouterr().out
    text = table(report)
    assert text in printed
    assert "n/a" not in text
    assert len(text.splitlines()) == 2 + len(found)
    for row in found:
        line = next(line for line in text.splitlines() if line.startswith(row.label))
        assert line.count("(x") == len(QUICK_SIZES) - 1
