"""Fixtures: both event-store backends, and a real nats-server per test.

PostgreSQL runs when WEIBAO_TEST_POSTGRES_URL is set (.ci/run sets it); each test gets a
schema of its own, dropped afterwards."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import connect_harness, harness_seed
from weibao.runtime.natsd import NatsServer
from weibao.shared import identities, keys
from weibao.shared.db import make_engine
from weibao.shared.logs import configure
from weibao.shared.streams import setup_streams

POSTGRES_URL = os.environ.get("WEIBAO_TEST_POSTGRES_URL")

configure(json=True, level=os.environ.get("WEIBAO_LOG_LEVEL", "WARNING"))

# One set of signing keys for the whole run, as `weibao up` makes for one machine: every
# service started in a test (in-process or as a subprocess) signs its events and checks
# its upstreams' and its callers' signatures, as in production.
# The NATS identities live beside them (nats/<role>.nk): every broker a test starts admits
# only those, each with its least privilege, and the tests' own harness (HARNESS_SEED).
if "WEIBAO_KEYS" not in os.environ:
    _folder = Path(tempfile.mkdtemp(prefix="weibao-keys-"))
    keys.generate(_folder)
    os.environ["WEIBAO_KEYS"] = str(_folder)
identities.ensure(Path(os.environ["WEIBAO_KEYS"]) / "nats")
if not harness_seed().exists():
    harness_seed().write_text(identities.new_seed() + "\n")


def authenticated() -> str:
    """The broker's authorization: the identities of weibao.shared.identities, and the
    harness with no limits (the tests observe everything, and play the attacker), so the
    services under test run as their least-privileged selves beside it."""
    block = identities.authorization_for(Path(os.environ["WEIBAO_KEYS"]) / "nats")
    harness = identities.public_key(harness_seed())
    return block.replace("  users = [\n", f'  users = [\n    # the tests\' harness\n    {{nkey: "{harness}"}}\n', 1)


def database_url(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}", None
    if POSTGRES_URL is None:
        pytest.skip("PostgreSQL tests need WEIBAO_TEST_POSTGRES_URL (.ci/run sets it)")
    return POSTGRES_URL, f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    return database_url(backend, tmp_path)


@pytest.fixture
async def engine(db_url: tuple[str, str | None]) -> AsyncIterator[AsyncEngine]:
    url, schema = db_url
    engine = make_engine(url, schema=schema)
    yield engine
    await engine.dispose()
    if schema is not None:
        cleanup = make_engine(url)
        async with cleanup.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await cleanup.dispose()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(data_dir=tmp_path / "nats", authorization=authenticated())
    server.start()
    yield server
    server.stop(kill=True)


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NATS]:
    client = await connect_harness(nats_server.url)
    await setup_streams(client.jetstream())
    yield client
    await client.close()


@dataclass
class SecureNats:
    """A nats-server that admits only the NATS identities (weibao.shared.identities),
    generated into `keys`; its log, where each refusal is an `[ERR] ... Publish Violation - Subject "..."` line
    (or Subscription Violation)."""

    server: NatsServer
    keys: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log(self) -> Path:
        return self.server.data_dir / "nats.log"

    def seed(self, role: str) -> str:
        return str(identities.seed_path(self.keys, role))

    def violations(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if " Violation - " in line]


@pytest.fixture
def secure_nats(tmp_path: Path) -> Iterator[SecureNats]:
    keys = tmp_path / "keys" / "nats"
    identities.ensure(keys)
    server = NatsServer(data_dir=tmp_path / "nats-secure", authorization=identities.authorization_for(keys))
    server.start()
    yield SecureNats(server, keys)
    server.stop(kill=True)


@pytest.fixture
def official_calendar_registry() -> Iterator[None]:
    """The process's registry of entered official calendar years (rule D2) as the test
    found it: the years are process-wide reference data, as chinese_calendar's tables are."""
    from weibao.dispatch.domain import deadlines

    before = dict(deadlines._PUBLISHED)
    yield
    deadlines._PUBLISHED.clear()
    deadlines._PUBLISHED.update(before)
