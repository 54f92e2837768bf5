"""The event-store contract: every backend (SQLite, PostgreSQL) passes the same suite."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.shared.db import begin_write
from weibao.shared.events import NewEvent, RecordedEvent, fold
from weibao.shared.eventstore import (
    ANY,
    FINGERPRINT,
    NO_STREAM,
    CommandReused,
    ConcurrencyError,
    EventStore,
    events_table,
)


@pytest.fixture
async def store(engine: AsyncEngine) -> EventStore:
    store = EventStore(engine)
    await store.create_tables()
    return store


def opened(n: int) -> list[NewEvent]:
    return [NewEvent("Opened", {"n": i, "名": "易卓"}) for i in range(n)]


async def test_append_then_load_in_version_order(store: EventStore) -> None:
    result = await store.append("agreement-1", opened(3), expected_version=NO_STREAM)
    assert result.version == 3
    loaded = await store.load("agreement-1")
    assert [e.version for e in loaded] == [1, 2, 3]
    assert [e.position for e in loaded] == [1, 2, 3]
    assert loaded[1].data == {"n": 1, "名": "易卓"}
    assert await store.version("agreement-1") == 3
    assert await store.load("agreement-unknown") == []


async def test_stale_expected_version_raises_and_stores_nothing(store: EventStore) -> None:
    await store.append("s", opened(2), expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError) as raised:
        await store.append("s", opened(1), expected_version=1)
    assert (raised.value.expected, raised.value.actual) == (1, 2)
    assert await store.last_position() == 2
    assert len(await store.load("s")) == 2


async def test_no_stream_expectation_fails_on_existing_stream(store: EventStore) -> None:
    await store.append("s", opened(1), expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError):
        await store.append("s", opened(1), expected_version=NO_STREAM)


async def test_any_version_appends_regardless(store: EventStore) -> None:
    await store.append("s", opened(1), expected_version=ANY)
    await store.append("s", opened(1), expected_version=ANY)
    assert await store.version("s") == 2


async def test_two_writers_on_one_stream_one_wins(store: EventStore) -> None:
    """Fault: two writers decide on the same version; exactly one append is stored."""
    await store.append("s", opened(1), expected_version=NO_STREAM)
    outcomes = await asyncio.gather(
        *(store.append("s", [NewEvent("Changed", {"by": w})], expected_version=1) for w in range(2)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, ConcurrencyError) for o in outcomes) == 1
    assert [e.type for e in await store.load("s")] == ["Opened", "Changed"]


async def test_same_command_id_stores_once(store: EventStore) -> None:
    first = await store.append("s", opened(2), expected_version=NO_STREAM, command_id="cmd-1")
    again = await store.append("s", opened(2), expected_version=NO_STREAM, command_id="cmd-1")
    assert again.duplicate and not first.duplicate
    assert [e.position for e in again.events] == [e.position for e in first.events]
    assert await store.last_position() == 2


async def test_a_command_id_reused_with_another_request_is_refused(store: EventStore) -> None:
    """Trust item 6: the same key with another body is another request. Compared through
    the command's own row, so a first run that stored nothing (a no-op) counts too."""
    one, other = {FINGERPRINT: "body-a"}, {FINGERPRINT: "body-b"}
    await store.append("s", [], expected_version=ANY, command_id="noop", meta=one)
    await store.append("s", opened(1), expected_version=ANY, command_id="cmd", meta=one)
    for command_id in ("noop", "cmd"):
        with pytest.raises(CommandReused):
            await store.append("s", opened(1), expected_version=ANY, command_id=command_id, meta=other)
        with pytest.raises(CommandReused):
            await store.command_result(command_id, other)
        assert (await store.append("s", opened(1), expected_version=ANY, command_id=command_id, meta=one)).duplicate
        # A caller that sends no fingerprint (the CLI) keeps plain command-id idempotency.
        assert (await store.command_result(command_id)) is not None
    assert await store.last_position() == 1


async def test_command_id_recorded_in_meta_with_correlation(store: EventStore) -> None:
    meta = {"correlation_id": "c-1", "causation_id": "m-0", "actor": "dispatcher:li"}
    await store.append("s", opened(1), expected_version=NO_STREAM, command_id="cmd-9", meta=meta)
    (event,) = await store.load("s")
    assert event.command_id == "cmd-9"
    assert event.meta["actor"] == "dispatcher:li"


async def test_append_joins_callers_transaction_and_rolls_back_with_it(store: EventStore) -> None:
    with pytest.raises(RuntimeError):
        async with begin_write(store.engine) as conn:
            await store.append("s", opened(2), expected_version=NO_STREAM, conn=conn)
            raise RuntimeError("the caller's other write failed")
    assert await store.last_position() == 0


async def test_positions_gap_free_in_commit_order_under_concurrency(store: EventStore) -> None:
    """16 appenders, and a reader that must never see position N+1 before N."""
    writers, per_writer = 16, 12
    seen: list[int] = []
    done = asyncio.Event()

    async def write(w: int) -> None:
        version = 0
        for _ in range(per_writer):
            result = await store.append(f"w-{w}", [NewEvent("Tick", {"w": w})], expected_version=version)
            version = result.version

    async def read() -> None:
        after = 0
        while not done.is_set() or after < writers * per_writer:
            chunk = await store.read_from(after, 50)
            for event in chunk:
                seen.append(event.position)
            if chunk:
                after = chunk[-1].position
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    await asyncio.wait_for(reader, 60)
    total = writers * per_writer
    assert seen == list(range(1, total + 1))
    assert await store.last_position() == total
    assert (await store.verify()).ok


async def test_read_from_and_read_all(store: EventStore) -> None:
    await store.append("a", opened(5), expected_version=NO_STREAM)
    await store.append("b", opened(5), expected_version=NO_STREAM)
    assert [e.position for e in await store.read_from(3, limit=4)] == [4, 5, 6, 7]
    assert [e.position async for e in store.read_all(after=8, batch=1)] == [9, 10]


async def test_as_of_folds_only_events_recorded_by_then(engine: AsyncEngine) -> None:
    moments = iter(datetime(2026, 3, day, 9, tzinfo=UTC) for day in (1, 2, 3))
    store = EventStore(engine, clock=lambda: next(moments))
    await store.create_tables()
    for n in range(3):
        await store.append("s", [NewEvent("Paid", {"amount": 100 * (n + 1)})], expected_version=n)
    as_of = await store.load("s", as_of=datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert [e.data["amount"] for e in as_of] == [100, 200]

    def total(state: int, event: RecordedEvent) -> int:
        return state + int(event.data["amount"])

    assert fold(total, 0, as_of) == 300
    assert fold(total, 0, await store.load("s")) == 600
    assert as_of[0].recorded_at == datetime(2026, 3, 1, 9, tzinfo=UTC)
    # The same instant told at China time reaches no further (SQLite compares text).
    beijing = datetime(2026, 3, 2, 12, tzinfo=UTC).astimezone(timezone(timedelta(hours=8)))
    assert [e.data["amount"] for e in await store.load("s", as_of=beijing)] == [100, 200]
    assert [e.data["amount"] for e in await store.load("s", as_of=beijing - timedelta(hours=3))] == [100, 200]
    assert [e.data["amount"] for e in await store.load("s", as_of=beijing - timedelta(hours=3, seconds=1))] == [100]


async def test_verify_passes_on_a_clean_log(store: EventStore) -> None:
    await store.append("a", opened(4), expected_version=NO_STREAM)
    report = await store.verify()
    assert report.ok and report.checked == 4


async def test_verify_names_the_first_tampered_event(store: EventStore) -> None:
    await store.append("a", opened(5), expected_version=NO_STREAM)
    async with store.engine.begin() as conn:
        await conn.execute(update(events_table).where(events_table.c.position == 3).values(data='{"n":99}'))
    report = await store.verify()
    assert not report.ok
    assert report.first_broken == 3
    assert "hash" in report.reason


async def test_verify_names_a_removed_event(store: EventStore) -> None:
    await store.append("a", opened(5), expected_version=NO_STREAM)
    async with store.engine.begin() as conn:
        await conn.execute(events_table.delete().where(events_table.c.position == 2))
    report = await store.verify()
    assert report.first_broken == 2
    assert "missing" in report.reason


async def test_verify_detects_a_rewritten_timestamp(store: EventStore) -> None:
    await store.append("a", opened(2), expected_version=NO_STREAM)
    later = datetime.now(UTC) + timedelta(days=1)
    async with store.engine.begin() as conn:
        await conn.execute(update(events_table).where(events_table.c.position == 2).values(recorded_at=later))
    assert (await store.verify()).first_broken == 2


async def test_rows_are_never_updated_by_the_store(store: EventStore) -> None:
    await store.append("a", opened(2), expected_version=NO_STREAM)
    before = await store.load("a")
    await store.append("a", opened(2), expected_version=2)
    assert (await store.load("a"))[:2] == before


async def test_unique_stream_version_is_enforced_by_the_database(store: EventStore) -> None:
    """Even a writer that bypasses the store cannot store two events at one version."""
    await store.append("a", opened(1), expected_version=NO_STREAM)
    (event,) = await store.load("a")
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with store.engine.begin() as conn:
            await conn.execute(
                events_table.insert().values(
                    position=99, stream_id="a", version=1, type="X", schema_version=1, data="{}", meta="{}",
                    recorded_at=event.recorded_at, prev_hash="", hash="",
                )
            )


async def test_concurrent_appends_share_commits_and_keep_each_outcome(store: EventStore) -> None:
    """Group commit: appends that arrive together commit together, and each still gets
    exactly the outcome it would have had alone (stored, duplicate, conflict)."""
    from sqlalchemy import event as sa_event

    await store.append("shared", opened(1), expected_version=NO_STREAM)
    await store.append("again", opened(1), expected_version=NO_STREAM, command_id="cmd-again")
    commits: list[int] = []

    def count(_conn: object) -> None:
        commits.append(1)

    sa_event.listen(store.engine.sync_engine, "commit", count)
    try:
        outcomes = await asyncio.gather(
            *(store.append(f"own-{i}", opened(1), expected_version=NO_STREAM) for i in range(12)),
            store.append("shared", [NewEvent("Changed", {"by": "a"})], expected_version=1),
            store.append("shared", [NewEvent("Changed", {"by": "b"})], expected_version=1),
            store.append("again", opened(1), expected_version=NO_STREAM, command_id="cmd-again"),
            return_exceptions=True,
        )
    finally:
        sa_event.remove(store.engine.sync_engine, "commit", count)
    stored = [o for o in outcomes[:12] if not isinstance(o, BaseException)]
    assert len(stored) == 12 and all(not o.duplicate for o in stored)
    assert sum(isinstance(o, ConcurrencyError) for o in outcomes[12:14]) == 1  # one of two writers wins
    duplicate = outcomes[14]
    assert not isinstance(duplicate, BaseException) and duplicate.duplicate
    assert len(commits) < 15  # fewer commits than appends: they shared transactions
    assert await store.last_position() == 2 + 12 + 1
    assert (await store.verify()).ok


async def test_a_failing_append_does_not_fail_the_others_in_its_group(store: EventStore) -> None:
    """Nothing lost: an append that cannot be stored fails alone; the group's others are stored."""
    results = await asyncio.gather(
        store.append("good-1", opened(1), expected_version=NO_STREAM),
        store.append("bad", [NewEvent("Opened", {"when": object()})], expected_version=NO_STREAM),
        store.append("good-2", opened(1), expected_version=NO_STREAM),
        return_exceptions=True,
    )
    assert isinstance(results[1], TypeError)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    assert sorted(e.stream_id for e in await store.read_from(0)) == ["good-1", "good-2"]
    assert await store.load("bad") == []
