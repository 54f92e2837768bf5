"""Every read model of every service replays equal to the live one on the demo data,
and leaves no `__replay` table behind (`weibao replay SERVICE MODEL`)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import eventually
from tests.test_runtime import System, health, wait_healthy
from weibao.billing.service import spec as billing
from weibao.contracts.service import spec as contracts
from weibao.dispatch.service import spec as dispatch
from weibao.runtime import demo
from weibao.shared.eventstore import EventStore
from weibao.shared.service import ServiceSpec


def models(spec: ServiceSpec) -> list[str]:
    # The store is only handed to policies, which keep it for later: never touched here.
    return [model.name for _, model in spec.read_models(EventStore(None))]  # type: ignore[arg-type]


MODELS = [(spec.name, name) for spec in (contracts, dispatch, billing) for name in models(spec)]


async def quiet(system: System) -> None:
    """Wait until every service has relayed its whole log and its consumers stopped moving
    (two looks alike): a replay compares with the live model at one position."""
    last: dict[str, Any] = {}

    async def settled() -> bool:
        nonlocal last
        status, body = await asyncio.to_thread(health, system.http_port)
        services = body.get("services", {})
        relayed = status == 200 and all(s["relayed_position"] == s["log_position"] for s in services.values())
        now = {name: s.get("consumers") for name, s in services.items()}
        same, last = now == last, now
        return relayed and same

    await eventually(settled, timeout=120, every=1.0)


@pytest.fixture(scope="module")
def demo_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    system = System(tmp_path_factory.mktemp("replay-all"))
    system.env.update(WEIBAO_DEMO="1", WEIBAO_DEMO_PULSE="0")  # the demo data, standing still
    system.up()

    async def ready() -> None:
        await wait_healthy(system)
        await eventually(lambda: _exists(system.workdir / "var" / demo.MARKER), timeout=180, every=0.5)
        await quiet(system)

    try:
        asyncio.run(ready())
        yield system
    finally:
        if system.process is not None and system.process.poll() is None:
            system.ctrl_c()


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


def replay_tables(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        return [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if "__replay" in name]


def test_the_three_services_have_read_models_and_policies() -> None:
    assert {"policy_contracts", "policy_dispatch", "invoice_book"} <= {name for _, name in MODELS}


@pytest.mark.parametrize(("service", "model"), MODELS)
def test_b8_every_read_model_and_billing_policy_replays_equal(demo_system: System, service: str, model: str) -> None:
    replay = demo_system.cli("replay", service, model)
    assert replay.stdout, replay.stderr
    report = json.loads(replay.stdout.strip().splitlines()[-1])
    assert report["equal"] is True, json.dumps(report["differences"], ensure_ascii=False)[:4000]
    assert replay.returncode == 0
    assert report["applied"] > 0 or report["live_position"] == 0
    assert replay_tables(demo_system.workdir / "var" / f"{service}.db") == []
