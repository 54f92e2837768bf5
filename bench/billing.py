"""python -m bench.billing [--visits N] [--lines N] [--page N] [--quick]: billing's figures.

(a) Visits into invoice lines: `Billing.handle`, the policy billing's dispatch consumer
    runs, on a SQLite store: N synthetic visits (VisitCompleted, WorkLogged, two
    ExpenseRecorded: three lines each), in the consumer's batches of 500 messages per
    transaction. Beside it, the layer below: `EventStore.append` of the same events, one
    event per append, in as many transactions.
(b) An export of N lines from stored invoices: pages of `weibao.billing.export.lines` (the
    query the gateway pages through; its reply through JSON and back, as over NATS) streamed
    into CSV and XLSX, with time and peak memory (tracemalloc: Python's own allocations).
    Beside it, csv.writer writing N prepared rows to a file.

Prints figures; nothing asserts on time."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.report import Result, show, table
from weibao.billing.adapters.invoices import INVOICE, InvoiceBook, invoice_stream, invoices_of
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.application.policy import BillingPolicy, Config
from weibao.billing.application.queries import Queries
from weibao.billing.domain import invoice as domain
from weibao.billing.entrypoints.endpoints import Policy
from weibao.gateway.export_files import csv_stream, xlsx_file
from weibao.shared.commands.billing import ExportQuery
from weibao.shared.db import begin_write, make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.logs import configure
from weibao.shared.messages import Message
from weibao.shared.public.billing import COLUMNS, line_of, row_of
from weibao.shared.public.contracts import CoverageGranted, Office, SiteLocated
from weibao.shared.public.dispatch import ExpenseRecorded, VisitCompleted, WorkLogged
from weibao.shared.readmodels import create_tables

BATCH = 500  # the tracking consumer's fetch: one transaction per batch
VISITS_PER_CUSTOMER = 20  # a month's invoice of 60 lines per customer
LINES_PER_INVOICE = 50
TERMS = {"customer_pays_expenses": True, "hardware": {"day_rate": "800"}, "billing_period": "monthly"}
HEFEI = Office("合肥办事处", "3401", 31.8206, 117.2272)
AT = datetime(2026, 6, 1, tzinfo=UTC)


def message(service: str, position: int, public: Any) -> Message:
    kind = type(public)
    return Message(service, position, f"{kind.__name__}-{position}", 1, kind.__name__, kind.SCHEMA, AT,
                   json.loads(json.dumps(asdict(public))), {})


# -- (a) visits into invoice lines --------------------------------------------------------


@dataclass(frozen=True)
class VisitFigures:
    visits: int
    messages: int
    lines: int
    events: int  # appended by billing: drafts opened and lines added
    transactions: int
    seconds: float
    baseline_events: int
    baseline_seconds: float


def visit_messages(visits: int) -> list[Message]:
    """Each visit: hardware work over 25 h (2 days, C4), a hotel night, a train ticket, done."""
    found: list[Message] = []
    for n in range(visits):
        customer, ticket = f"cust-{n // VISITS_PER_CUSTOMER}", f"t-{n}"
        day = datetime(2026, 6, 1 + n % 28, 1, tzinfo=UTC)
        for public in (
            WorkLogged(ticket, customer, f"ag-{customer}", "tech-1", "w", "hardware", day.isoformat(),
                       (day + timedelta(hours=25)).isoformat(), "billable", ("C3",)),
            ExpenseRecorded(ticket, customer, f"ag-{customer}", "tech-1", "e-1", "lodging", "268.00", f"HT-{n}",
                            day.date().isoformat(), 1, ""),
            ExpenseRecorded(ticket, customer, f"ag-{customer}", "tech-1", "e-2", "transport", "224.50", f"G-{n}",
                            day.date().isoformat(), None, ""),
            VisitCompleted(ticket, customer, f"ag-{customer}", "tech-1", day.isoformat(), "已修复", "billable",
                           ("C3",)),
        ):
            found.append(message("dispatch", len(found) + 1, public))
    return found


async def visits_into_lines(engine: AsyncEngine, visits: int, *, batch: int = BATCH) -> VisitFigures:
    store = EventStore(engine)
    await store.create_tables()
    billing = BillingPolicy(store, TermsBook(), Config.load(), lambda: date(2026, 6, 30), invoices_of(store))
    await create_tables(engine, Policy(billing, "dispatch"))
    customers = (visits + VISITS_PER_CUSTOMER - 1) // VISITS_PER_CUSTOMER
    async with begin_write(engine) as conn:  # the agreements' terms, as contracts publishes them
        for n in range(customers):
            await billing.handle(conn, message("contracts", n + 1, CoverageGranted(
                f"ag-cust-{n}", f"cust-{n}", ("s",), "2025-06-01", "2026-05-31", "free", ("C1",), HEFEI, TERMS)))
    inbound = visit_messages(visits)
    first = await store.last_position()
    started = time.perf_counter()
    for start in range(0, len(inbound), batch):
        async with begin_write(engine) as conn:
            for one in inbound[start:start + batch]:
                await billing.handle(conn, one)
    seconds = time.perf_counter() - started
    recorded = [e async for e in store.read_all(first)]
    lines = sum(1 for e in recorded if e.type == "private.LineAdded")
    transactions = (len(inbound) + batch - 1) // batch
    baseline_seconds = await append_alone(store, [NewEvent(e.type, e.data) for e in recorded], transactions)
    return VisitFigures(visits, len(inbound), lines, len(recorded), transactions, seconds,
                        await store.version("bench-baseline"), baseline_seconds)


async def append_alone(store: EventStore, events: list[NewEvent], transactions: int) -> float:
    """The layer below: the same events appended one per call, in as many transactions."""
    per = max(1, -(-len(events) // max(transactions, 1)))
    version = 0
    started = time.perf_counter()
    for start in range(0, len(events), per):
        async with begin_write(store.engine) as conn:
            for event in events[start:start + per]:
                await store.append("bench-baseline", [event], expected_version=version, conn=conn)
                version += 1
    return time.perf_counter() - started


# -- (b) an export from stored invoices --------------------------------------------------


@dataclass(frozen=True)
class Run:
    rows: int
    seconds: float
    peak_bytes: int
    size_bytes: int


@dataclass(frozen=True)
class ExportFigures:
    lines: int
    fill_seconds: float
    csv: Run
    xlsx: Run
    baseline: Run
    prepared_bytes: int  # what holding every row in memory takes (the unstreamed way)
    sql: Run  # the same rows, keyset-paged straight from SQL into csv.writer


def invoice_messages(lines: int) -> list[Message]:
    """Issued invoices of LINES_PER_INVOICE lines each, as billing's own stream carries them."""
    found: list[Message] = []
    for n in range(-(-lines // LINES_PER_INVOICE)):
        month = n // 400  # 400 customers, one invoice a month each
        period = f"{2026 + month // 12}-{month % 12 + 1:02d}"
        customer = f"cust-{n % 400}"
        invoice_id = f"{customer}-{period}"
        stream = invoice_stream(invoice_id)
        events: list[Any] = [domain.DraftOpened(invoice_id, customer, period, date.fromisoformat(f"{period}-01"))]
        count = min(LINES_PER_INVOICE, lines - n * LINES_PER_INVOICE)
        for k in range(count):
            amount = Decimal(100 + k) + Decimal("0.25")
            events.append(domain.LineAdded(domain.Line(
                f"dispatch:{n * LINES_PER_INVOICE + k + 1}:0", "expense", f"交通费（票据 G{7200 + k}），合肥南—郑州东",
                Decimal(1), "项", amount, amount, Decimal("0.06"), ("B1", "C5"),
                (("dispatch", n * LINES_PER_INVOICE + k + 1, "ExpenseRecorded"),))))
        state = domain.Invoice()
        for event in events:
            state = domain.evolve(state, event)
        events.append(domain.InvoiceIssued(f"INV-2026-{n + 1:06d}", date.fromisoformat(f"{period}-28"),
                                           tuple(x.item_id for x in state.lines), state.totals))
        for number, event in enumerate(events, start=1):
            stored = INVOICE.encode(event)
            found.append(Message("billing", len(found) + 1, stream, number, stored.type, 1, AT,
                                 json.loads(json.dumps(dict(stored.data))), {}))
    return found


async def fill(engine: AsyncEngine, lines: int) -> tuple[InvoiceBook, float]:
    """The invoice read model, fed as its consumer feeds it, and the customers' names."""
    terms = TermsBook()
    book = InvoiceBook(names=terms.customers)
    await create_tables(engine, book)
    store = EventStore(engine)
    await create_tables(engine, Policy(BillingPolicy(store, terms, Config.load(), date.today, invoices_of(store)), "x"))
    async with begin_write(engine) as conn:
        for n in range(400):
            await terms(conn, message("contracts", n + 1, SiteLocated(
                f"cust-{n}", f"合肥第{n}贸易有限公司", f"s-{n}", "总部", "合肥", 31.8, 117.2, "3401", "street")))
    inbound = invoice_messages(lines)
    started = time.perf_counter()
    for start in range(0, len(inbound), BATCH):
        async with begin_write(engine) as conn:
            await book.apply_batch(conn, inbound[start:start + BATCH])
    return book, time.perf_counter() - started


async def paged(queries: Queries, page: int) -> AsyncIterator[Any]:
    """What the gateway does: page through export.lines, each reply through JSON as over NATS."""
    after = None
    while True:
        reply = await queries.export_lines(ExportQuery(limit=page, after=after))
        for row in json.loads(json.dumps(reply, ensure_ascii=False))["lines"]:
            yield line_of(row)
        after = reply["next"]
        if after is None:
            return


async def measured(work: Callable[[], Awaitable[int]], path: Path) -> Run:
    """Time a run, then its peak memory in a second run under tracemalloc (which slows it)."""
    started = time.perf_counter()
    rows = await work()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        await work()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Run(rows, seconds, peak, size_of(path))


def size_of(path: Path) -> int:
    return path.stat().st_size


async def export_lines(engine: AsyncEngine, lines: int, folder: Path, *, page: int = 1000) -> ExportFigures:
    book, fill_seconds = await fill(engine, lines)
    queries = Queries(engine, book, invoices_of(EventStore(engine)), TermsBook())
    csv_path, xlsx_path, raw_path = folder / "export.csv", folder / "export.xlsx", folder / "baseline.csv"

    async def to_csv() -> int:
        rows = 0
        with csv_path.open("wb") as out:
            async for chunk in csv_stream(paged(queries, page)):
                out.write(chunk)
                rows += chunk.count(b"\r\n")
        return rows - 1  # the header

    async def to_xlsx() -> int:
        return await xlsx_file(paged(queries, page), xlsx_path)

    csv_run = await measured(to_csv, csv_path)
    xlsx_run = await measured(to_xlsx, xlsx_path)

    # The baseline's rows are prepared first (outside its clock), as plain text lists.
    tracemalloc.start()
    prepared = [[str(value) for value in row_of(line).values()] async for line in paged(queries, page)]
    prepared_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    async def raw() -> int:
        with raw_path.open("w", newline="", encoding="utf-8-sig") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(COLUMNS)
            writer.writerows(prepared)
        return len(prepared)

    baseline = await measured(raw, raw_path)
    sql_path = folder / "sql.csv"

    async def straight() -> int:
        """The same rows and order, as SQL hands them over: no typed rows, no JSON hop."""
        t, table = book.invoices, book.lines
        query = (select(*table.c, t.c.number, t.c.status, t.c.issued_on, t.c.month)
                 .join_from(table, t, t.c.invoice_id == table.c.invoice_id).where(t.c.status != "draft")
                 .order_by(table.c.invoice_id, table.c.document, table.c.seq).limit(page))
        rows, after = 0, None
        with sql_path.open("w", newline="", encoding="utf-8-sig") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(COLUMNS)
            async with engine.connect() as conn:
                while True:
                    keyed = query if after is None else query.where(
                        tuple_(table.c.invoice_id, table.c.document, table.c.seq) > tuple_(*after))
                    fetched = (await conn.execute(keyed)).all()
                    writer.writerows(fetched)
                    rows += len(fetched)
                    if len(fetched) < page:
                        return rows
                    after = (fetched[-1].invoice_id, fetched[-1].document, fetched[-1].seq)

    sql = await measured(straight, sql_path)
    return ExportFigures(lines, fill_seconds, csv_run, xlsx_run, baseline, prepared_bytes, sql)


# -- the command ------------------------------------------------------------------------


def mb(count: int) -> str:
    return f"{count / 2**20:,.1f} MB"


async def run(args: argparse.Namespace) -> None:
    print(f"Weibao billing benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {version('SQLAlchemy')}, openpyxl {version('openpyxl')}")
    print("SQLite: WAL, synchronous=FULL, BEGIN IMMEDIATE; figures only, nothing asserts on time\n")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="weibao-bench-billing-") as name:
        folder = Path(name)
        engine = make_engine(f"sqlite:///{folder / 'visits.db'}")
        try:
            print(f"(a) {args.visits:,} visits through Billing.handle, {BATCH} messages per transaction")
            v = await visits_into_lines(engine, args.visits)
        finally:
            await engine.dispose()
        print(f"  {v.visits:,} visits ({v.messages:,} messages) -> {v.lines:,} invoice lines, {v.events:,} events "
              f"appended, {v.transactions:,} transactions in {v.seconds:.2f} s: {v.visits / v.seconds:,.0f} visits/s, "
              f"{v.lines / v.seconds:,.0f} lines/s")
        results.append(show(Result("Billing.handle: events appended", v.events / v.seconds,
                                   "EventStore.append, same events", v.baseline_events / v.baseline_seconds)))

        engine = make_engine(f"sqlite:///{folder / 'export.db'}")
        try:
            print(f"\n(b) an export of {args.lines:,} lines, pages of {args.page:,} from export.lines")
            x = await export_lines(engine, args.lines, folder, page=args.page)
        finally:
            await engine.dispose()
        print(f"  read model fed by its consumer's batches: {x.lines / x.fill_seconds:,.0f} lines/s")
        for label, found in (("CSV", x.csv), ("XLSX", x.xlsx), ("baseline csv.writer", x.baseline),
                             ("(diagnostic) keyset SQL -> csv.writer", x.sql)):
            print(f"  {label}: {found.rows:,} rows in {found.seconds:.2f} s "
                  f"({found.rows / found.seconds:,.0f} rows/s), peak memory {mb(found.peak_bytes)}, "
                  f"file {mb(found.size_bytes)}")
        print(f"  the {x.lines:,} rows held in memory at once (the unstreamed way): {mb(x.prepared_bytes)}")
        for label, found in (("export.lines -> CSV", x.csv), ("export.lines -> XLSX", x.xlsx)):
            results.append(show(Result(f"{label} rows", found.rows / found.seconds,
                                       "csv.writer, prepared rows", x.baseline.rows / x.baseline.seconds)))
        results.append(show(Result("(diagnostic) export.lines -> CSV rows", x.csv.rows / x.csv.seconds,
                                   "keyset SQL -> csv.writer", x.sql.rows / x.sql.seconds)))
    print()
    print(table(results))
    print("""
baselines:
  EventStore.append: the events billing appended, re-appended one per call to one stream, in as many
    begin_write transactions as billing's run used (the policy also reads the terms, the item index,
    the draft row and the invoice's stream, and writes the item and draft rows).
  csv.writer: the export's rows already rendered as text lists in memory, written to a file; its
    peak memory leaves out the rows themselves (shown separately as 'held in memory at once').
  (diagnostic) keyset SQL -> csv.writer: the same rows in the same order, paged by the same key from
    the read model's tables and written as SQL returns them: what the typed rows, their checks, the
    JSON hop and the column formats cost on top.""")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.billing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, help="visits through Billing.handle (default 2000)")
    parser.add_argument("--lines", type=int, help="lines in the export (default 100000)")
    parser.add_argument("--page", type=int, default=1000, help="export.lines page size (default 1000, max 5000)")
    parser.add_argument("--quick", action="store_true", help="small run: 200 visits, 10000 lines")
    args = parser.parse_args()
    if args.visits is None:
        args.visits = 200 if args.quick else 2_000
    if args.lines is None:
        args.lines = 10_000 if args.quick else 100_000
    os.environ["WEIBAO_LOG_LEVEL"] = "WARNING"
    configure(level="WARNING")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

