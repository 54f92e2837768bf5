"""The gateway benchmark on a tiny run: the real system it starts stores every check-in
exactly once and the counts add up. Never timings: the benchmark prints those."""

from __future__ import annotations

from pathlib import Path

from bench.gateway import Options, make_plan, percentile, run


async def test_a_tiny_gateway_benchmark_stores_each_check_in_once(tmp_path: Path) -> None:
    options = Options(visits=5, concurrency=2, sample=2, warmup=2)
    report = await run(options, tmp_path)
    plan = report.plan
    assert plan == make_plan(options)
    assert [len(lane) for lane in plan.lanes(plan.visits)] == [3, 2]  # each client its own technician's share

    measured = {v.ticket_id for v in plan.visits}
    assert sorted(s.ticket_id for s in report.gateway.shots) == sorted(measured)  # each ticket once
    assert [phase.count for phase in report.bare] == [5, 5]
    assert [s.shot.ticket_id for s in report.sightings] == [v.ticket_id for v in plan.samples]
    assert all(s.polls for s in report.sightings)
    # The log: every ticket checked in (warm-up, measured, sample), each exactly once.
    assert report.check_ins == {v.ticket_id: 1 for v in plan.tickets}
    assert len(report.check_ins) == 2 + 5 + 2


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 0.99) == 7.0
