"""Production runs each service as a role that owns only its schema (deploy/postgres)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from weibao.shared.db import make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import NO_STREAM, EventStore

pytestmark = pytest.mark.postgres


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs WEIBAO_TEST_POSTGRES_URL")
async def test_a_role_limited_to_its_schema_starts_and_appends() -> None:
    assert POSTGRES_URL is not None
    name = f"t_role_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE ROLE "{name}" LOGIN'))
        await conn.execute(text(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"'))
    service_url = make_url(POSTGRES_URL).set(username=name).render_as_string(hide_password=False)
    engine = make_engine(service_url, schema=name)
    try:
        store = EventStore(engine)
        await store.create_tables()  # a second start must not need CREATE on the database
        await store.create_tables()
        await store.append("s", [NewEvent("Opened", {})], expected_version=NO_STREAM)
        assert (await store.verify()).ok
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            await conn.execute(text(f'DROP ROLE "{name}"'))
        await admin.dispose()
