"""bench.billing on tiny sizes, so it does not rot: the counts it reports are right.
Nothing here looks at a time."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook

from bench.billing import export_lines, visits_into_lines
from weibao.shared.db import make_engine
from weibao.shared.public.billing import COLUMNS


async def test_visits_become_three_lines_each_and_the_baseline_appends_the_same_events(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'visits.db'}")
    try:
        found = await visits_into_lines(engine, 25, batch=7)
    finally:
        await engine.dispose()
    # 4 messages a visit (VisitCompleted bills nothing): hardware days, a hotel, a ticket
    assert (found.visits, found.messages, found.lines) == (25, 100, 75)
    # 20 visits a customer, all in June: 2 drafts opened, then the 75 lines
    assert found.events == found.baseline_events == 77
    assert found.transactions == 15  # 100 messages, 7 per transaction


async def test_the_export_pages_every_stored_line_into_csv_and_xlsx(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'export.db'}")
    try:
        found = await export_lines(engine, 120, tmp_path, page=50)
    finally:
        await engine.dispose()
    assert found.csv.rows == found.xlsx.rows == found.baseline.rows == 120
    with (tmp_path / "export.csv").open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 121
    assert len({(row[1], row[7]) for row in rows[1:]}) == 120  # every (invoice, line) once
    sheet = load_workbook(tmp_path / "export.xlsx", read_only=True).worksheets[0]
    assert sum(1 for _ in sheet.iter_rows()) == 121
    assert found.csv.peak_bytes > 0 and found.prepared_bytes > 0
