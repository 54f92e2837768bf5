"""The customer directory and the agreement register on both backends: rows as the
domain's events leave customers and agreements (C1, C2), and their list queries'
search, filters and pages. The messages are the domain's own events, encoded as the
service stores them, with other aggregates' and public messages between them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.contracts.adapters.agreement_register import AgreementRegister, agreement_ids, agreements
from weibao.contracts.adapters.customer_directory import CustomerDirectory, customers
from weibao.contracts.adapters.templates import TemplateFile
from weibao.contracts.application import agreements as agreements_app
from weibao.contracts.application import customers as customers_app
from weibao.contracts.application.published import PUBLIC
from weibao.contracts.domain import agreement as agreement_domain
from weibao.contracts.domain import customer as customer_domain
from weibao.shared.codec import Codec
from weibao.shared.db import begin_write
from weibao.shared.errors import Rejected
from weibao.shared.messages import Message
from weibao.shared.readmodels import create_tables

from .conftest import HEFEI, YIZHUO_PARAMETERS

AT = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


class Log:
    """Aggregates' events as the stream carries them: private, then their public twins."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.states: dict[str, Any] = {}
        self.versions: dict[str, int] = {}

    def do(self, stream: str, command: Any, decide: Any, evolve: Any, initial: Any, private: Codec,
           translate: Any) -> None:
        state = self.states.get(stream, initial)
        for event in decide(command, state):
            state = evolve(state, event)
            for new in (private.encode(event), *(PUBLIC.encode(m) for m in translate(event, state))):
                version = self.versions[stream] = self.versions.get(stream, 0) + 1
                self.messages.append(Message("contracts", len(self.messages) + 1, stream, version, new.type,
                                             new.schema_version, AT, new.data, {}))
        self.states[stream] = state

    def customer(self, command: customer_domain.Command, customer_id: str) -> None:
        self.do(f"customer-{customer_id}", command, customer_domain.decide, customer_domain.evolve,
                customer_domain.Customer(), customers_app.PRIVATE, customers_app.translate)

    def agreement(self, command: agreement_domain.Command, agreement_id: str) -> None:
        self.do(f"agreement-{agreement_id}", command, agreement_domain.decide, agreement_domain.evolve,
                agreement_domain.Agreement(), agreements_app.PRIVATE, agreements_app.translate)


def place(address: str, latitude: float, longitude: float, city: str, code: str) -> customer_domain.Location:
    return customer_domain.Location(address, latitude, longitude, code, city=city)


HEFEI_SITE = place("安徽省合肥市蜀山区长江西路100号", 31.85, 117.25, "合肥市", "3401")
CANTON_SITE = place("广州市天河区体育西路1号", 23.13, 113.32, "广州市", "4401")


def sign(log: Log, template: TemplateFile, agreement_id: str, customer_id: str, **parameters: Any) -> None:
    log.agreement(agreement_domain.SignAgreement(
        agreement_id, customer_id, template.template.id, template.resolve(parameters), date(2025, 3, 1),
        date(2025, 3, 1), HEFEI, ("s-1",)), agreement_id)


@pytest.fixture
async def directory(engine: AsyncEngine) -> CustomerDirectory:
    model = CustomerDirectory()
    await create_tables(engine, model)
    return model


@pytest.fixture
async def register(engine: AsyncEngine) -> AgreementRegister:
    model = AgreementRegister()
    await create_tables(engine, model)
    return model


async def feed(engine: AsyncEngine, models: list[Any], log: Log) -> None:
    async with begin_write(engine) as conn:
        for message in log.messages:
            for model in models:
                await model(conn, message)


async def test_customers_with_their_sites_found_by_a_part_of_name_or_id(
        engine: AsyncEngine, directory: CustomerDirectory, templates: dict[str, TemplateFile]) -> None:
    log = Log()
    log.customer(customer_domain.RegisterCustomer("c-1", "合肥天宇贸易"), "c-1")
    log.customer(customer_domain.AddSite("s-1", "总部", HEFEI_SITE), "c-1")
    log.customer(customer_domain.AddSite("s-2", "广州分部", CANTON_SITE), "c-1")
    sign(log, templates["xxx-software-service"], "a-1", "c-1")  # another aggregate in between
    log.customer(customer_domain.RegisterCustomer("c-2", "郑州 100%_Store"), "c-2")
    log.customer(customer_domain.MoveSite("s-1", CANTON_SITE), "c-1")  # rule C9: a move changes where
    await feed(engine, [directory], log)

    every = await customers(engine, directory, {})
    assert [c["customer_id"] for c in every["items"]] == ["c-1", "c-2"] and every["total"] == 2
    first = every["items"][0]
    assert [s["site_id"] for s in first["sites"]] == ["s-1", "s-2"]  # in the order added
    assert first["sites"][0] == {"site_id": "s-1", "name": "总部", "address": CANTON_SITE.address,
                                 "latitude": 23.13, "longitude": 113.32, "city": "广州市", "city_code": "4401"}
    assert every["items"][1]["sites"] == []

    async def found(q: str) -> list[str]:
        return [c["customer_id"] for c in (await customers(engine, directory, {"q": q}))["items"]]

    assert await found("天宇") == ["c-1"]
    assert await found("C-2") == ["c-2"]  # ids and Latin names regardless of case
    assert await found("store") == ["c-2"]
    assert await found("100%") == ["c-2"]  # LIKE's wildcards are plain text here
    assert await found("0%_s") == ["c-2"]
    assert await found("_") == ["c-2"]
    assert await found("%") == ["c-2"]
    assert await found("上海") == []
    second = await customers(engine, directory, {"limit": 1, "offset": 1})
    assert ([c["customer_id"] for c in second["items"]], second["total"], second["next_offset"]) == (["c-2"], 2, None)
    head = await customers(engine, directory, {"limit": "1"})
    assert head["next_offset"] == 1


async def test_agreements_by_customer_and_standing(engine: AsyncEngine, register: AgreementRegister,
                                                   templates: dict[str, TemplateFile]) -> None:
    log = Log()
    sign(log, templates["yizhuo-crm-maintenance"], "a-1", "c-1", **YIZHUO_PARAMETERS)
    sign(log, templates["xxx-software-service"], "a-2", "c-1")
    sign(log, templates["xxx-software-service"], "a-3", "c-2")
    log.agreement(agreement_domain.AssessCoverage(date(2026, 3, 2)), "a-1")  # rule C1: the free year ran out
    log.agreement(agreement_domain.RecordFeePayment("p-1", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28),
                                                    date(2026, 3, 5)), "a-1")  # rule C2: paying reopens it
    log.agreement(agreement_domain.AssessCoverage(date(2026, 3, 2)), "a-2")
    log.agreement(agreement_domain.TerminateAgreement(date(2025, 6, 1), "客户停用"), "a-3")
    await feed(engine, [register], log)

    def name(template_id: str) -> str:
        return f"«{template_id}»"

    every = await agreements(engine, register, {}, name)
    assert [a["agreement_id"] for a in every["items"]] == ["a-1", "a-2", "a-3"]
    paid, lapsed, ended = every["items"]
    assert paid == {"agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
                    "template_name": "«yizhuo-crm-maintenance»", "status": "active", "go_live": "2025-03-01",
                    "free_until": "2026-02-28", "covered_until": "2027-02-28", "lapsed_on": None,
                    "terminated_on": None, "site_ids": ["s-1"]}
    assert (lapsed["covered_until"], lapsed["lapsed_on"]) == ("2026-02-28", "2026-03-01")
    assert (ended["status"], ended["terminated_on"]) == ("terminated", "2025-06-01")

    async def ids(body: dict[str, Any]) -> list[str]:
        return [a["agreement_id"] for a in (await agreements(engine, register, body, name))["items"]]

    assert await ids({"customer_id": "c-1"}) == ["a-1", "a-2"]
    assert await ids({"status": "terminated"}) == ["a-3"]
    assert await ids({"customer_id": "c-2", "status": "active"}) == []
    assert await agreement_ids(engine, register, "c-1") == ["a-1", "a-2"]
    page = await agreements(engine, register, {"limit": 2}, name)
    assert (page["total"], page["next_offset"]) == (3, 2)


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "lapsed"}, "status"), ({"limit": 0}, "limit"), ({"limit": 201}, "limit"),
    ({"offset": -1}, "offset"), ({"offset": "first"}, "offset"),
])
async def test_a_bad_agreement_list_request_is_refused_by_field(engine: AsyncEngine, register: AgreementRegister,
                                                                body: dict[str, Any], field: str) -> None:
    with pytest.raises(Rejected) as refused:
        await agreements(engine, register, body, str)
    assert (refused.value.code, refused.value.field) == ("invalid", field)
