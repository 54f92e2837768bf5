"""The dispatcher's contracts queries over real NATS: customers found by name or id with
their sites, agreements by customer and standing, the customer page in one answer
(coverage today, C1/C2; free quotas left, C7/C10), and the read models behind them
rebuilt by replay equal to the live ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import eventually
from weibao.contracts.service import spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.service import Settings, replay_command

from .conftest import OFFICE, ask, running


async def ok(nc: NATS, name: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await ask(nc, name, body)
    assert answer["ok"], (name, answer)
    return answer


async def customers_and_agreements(nc: NATS) -> None:
    """c-1 with two sites, an active agreement (a-1) and a terminated one (a-2); c-2 with
    no site and one agreement (a-3); one of a-1's free installations used (C10)."""
    await ok(nc, "customer.register", {
        "customer_id": "c-1", "name": "合肥天宇贸易",
        "sites": [{"site_id": "hefei", "name": "合肥总部", "address": "安徽省合肥市蜀山区长江西路100号"},
                  {"site_id": "canton", "name": "广州分部", "address": "广州市天河区体育西路1号"}]})
    await ok(nc, "customer.register", {"customer_id": "c-2", "name": "郑州华达"})
    signed = (("a-1", "c-1", "xxx-software-service"), ("a-2", "c-1", "chaoren-software-sale"),
              ("a-3", "c-2", "xxx-software-service"))
    for agreement, customer, template in signed:
        await ok(nc, "sign", {"agreement_id": agreement, "customer_id": customer, "template_id": template,
                              "go_live": "2025-03-01", "office": OFFICE, "site_ids": ["hefei"]})
    await ok(nc, "terminate", {"agreement_id": "a-2", "on": "2025-03-01", "reason": "合同到期不续"})
    await ok(nc, "quota.consume", {"agreement_id": "a-1", "kind": "installation", "ref": "i-1", "units": 1,
                                   "on": "2025-03-01"})


async def answered(nc: NATS, name: str, body: dict[str, Any], expected: list[str], key: str) -> dict[str, Any]:
    """A list once its read model (it may lag) shows `expected` ids, in order."""
    page: dict[str, Any] = {}

    async def shown() -> bool:
        nonlocal page
        page = (await ok(nc, name, body))["result"]
        return [item[key] for item in page["items"]] == expected

    await eventually(shown)
    return page


async def test_customers_found_by_name_or_id_with_their_sites(contracts: None, nc: NATS) -> None:
    await customers_and_agreements(nc)
    # The directory applies the log in order: c-2 shown, c-1's sites (before it) are too.
    every = await answered(nc, "customers", {}, ["c-1", "c-2"], "customer_id")
    assert (every["total"], every["next_offset"]) == (2, None)
    sites = every["items"][0]["sites"]
    assert [(s["site_id"], s["city_code"]) for s in sites] == [("hefei", "3401"), ("canton", "4401")]  # C9
    assert {"name", "address", "latitude", "longitude", "city"} <= set(sites[0])
    await answered(nc, "customers", {"q": "天宇"}, ["c-1"], "customer_id")
    await answered(nc, "customers", {"q": "C-2"}, ["c-2"], "customer_id")
    first = await answered(nc, "customers", {"limit": 1}, ["c-1"], "customer_id")
    assert first["next_offset"] == 1
    refused = await ask(nc, "customers", {"limit": 0})
    assert (refused["error"]["code"], refused["error"]["field"]) == ("invalid", "limit")


async def test_agreements_by_customer_and_standing(contracts: None, nc: NATS) -> None:
    await customers_and_agreements(nc)
    # The register applies the log in order: once it shows the termination, it shows all before it.
    await answered(nc, "agreements", {"status": "terminated"}, ["a-2"], "agreement_id")
    mine = await answered(nc, "agreements", {"customer_id": "c-1"}, ["a-1", "a-2"], "agreement_id")
    names = {t["id"]: t["name"] for t in (await ok(nc, "templates", {}))["result"]}
    active, ended = mine["items"]
    assert active["template_name"] == names["xxx-software-service"]
    assert (active["status"], active["covered_until"], active["site_ids"]) == ("active", "2026-02-28", ["hefei"])
    assert (ended["status"], ended["terminated_on"]) == ("terminated", "2025-03-01")
    await answered(nc, "agreements", {"status": "active"}, ["a-1", "a-3"], "agreement_id")
    refused = await ask(nc, "agreements", {"status": "lapsed"})
    assert (refused["error"]["code"], refused["error"]["field"]) == ("invalid", "status")


async def test_the_customer_page_in_one_answer(contracts: None, nc: NATS) -> None:
    await customers_and_agreements(nc)
    page: dict[str, Any] = {}

    async def both() -> bool:  # which agreements a customer has comes from a read model
        nonlocal page
        page = (await ok(nc, "customer.overview", {"customer_id": "c-1"}))["result"]
        return [a["agreement_id"] for a in page["agreements"]] == ["a-1", "a-2"]

    await eventually(both)
    assert page["customer"]["name"] == "合肥天宇贸易"
    assert [s["site_id"] for s in page["customer"]["sites"]] == ["hefei", "canton"]
    active, ended = page["agreements"]
    # rule C1: the first year after go-live is free service
    assert (active["coverage"]["on"], active["coverage"]["period"], active["coverage"]["verdict"]) == (
        "2025-03-01", "free", "covered")
    assert "C1" in active["coverage"]["clauses"]
    balances = {q["kind"]: q for q in active["quotas"]}
    assert set(balances) == {"installation", "training_seat", "onsite_training_session"}
    assert balances["installation"]["available"] == 2  # rule C10 [2]: three free, one used
    assert balances["training_seat"]["available"] == 3  # rule C7 [2]: three people per enterprise
    same = await ok(nc, "quota.balance", {"agreement_id": "a-1", "kind": "installation"})
    assert same["result"] == balances["installation"]  # as quota.balance answers
    assert ended["status"] == "terminated" and ended["quotas"] == []
    assert ended["coverage"]["period"] == "none" and ended["coverage"]["verdict"] == "billable"  # C1, B3

    unknown = await ask(nc, "customer.overview", {"customer_id": "nobody"})
    assert (unknown["error"]["code"], unknown["error"]["field"]) == ("not_found", "customer_id")


async def test_an_agreement_as_of_a_naive_time_is_refused(contracts: None, nc: NATS) -> None:
    await customers_and_agreements(nc)
    refused = await ask(nc, "agreement", {"agreement_id": "a-2", "as_of": "2025-03-01T09:00:00"})
    assert (refused["error"]["code"], refused["error"]["field"]) == ("invalid", "as_of")
    before = await ask(nc, "agreement", {"agreement_id": "a-2", "as_of": "2020-01-01T00:00:00+08:00"})
    assert before["error"]["code"] == "not_found"


async def test_the_read_models_rebuilt_by_replay_equal_the_live_ones(
        nats_server: NatsServer, nc: NATS, monkeypatch: pytest.MonkeyPatch, clock: dict[str, str],
        db_url: tuple[str, str | None], engine: AsyncEngine, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    for name, value in clock.items():
        monkeypatch.setenv(name, value)
    url, schema = db_url  # `engine` drops a PostgreSQL test schema afterwards
    settings = Settings(nats_server.url, url, schema)
    async with running(nc, settings):
        await customers_and_agreements(nc)
        await answered(nc, "agreements", {"status": "terminated"}, ["a-2"], "agreement_id")
        await answered(nc, "customers", {"q": "郑州"}, ["c-2"], "customer_id")
    capsys.readouterr()
    for model in ("customer_directory", "agreement_register"):
        assert await replay_command(spec, settings, model, show_progress=False) == 0, model
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["equal"] and report["applied"] == report["live_position"] > 0, report
