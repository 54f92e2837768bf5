"""The contracts service's commands and queries on NATS (`weibao.contracts.<name>`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, date
from functools import partial
from typing import Any

import structlog
from faststream.nats import NatsBroker
from sqlalchemy import select

from weibao.contracts.adapters.agreement_register import AgreementRegister, agreement_ids
from weibao.contracts.adapters.agreement_register import agreements as agreements_page
from weibao.contracts.adapters.customer_directory import CustomerDirectory
from weibao.contracts.adapters.customer_directory import customers as customers_page
from weibao.contracts.adapters.templates import load_templates
from weibao.contracts.application.agreements import Agreements, stream_of
from weibao.contracts.application.customers import Customers
from weibao.contracts.application.overview import Overview
from weibao.contracts.application.quotas import Quotas
from weibao.contracts.application.warranties import Warranties
from weibao.contracts.domain import agreement as domain
from weibao.shared import codec
from weibao.shared.clock import china_today
from weibao.shared.errors import Rejected, require
from weibao.shared.fields import instant
from weibao.shared.readmodels import StreamIndex
from weibao.shared.rpc import command, events_reply, expose, history_reply
from weibao.shared.service import Runtime
from weibao.shared.settings import environment

log = structlog.get_logger("weibao.contracts")

def application(runtime: Runtime, today: Callable[[], date] = china_today) -> Agreements:
    return Agreements(runtime.store, load_templates(), today)


def register(broker: NatsBroker, runtime: Runtime) -> None:
    agreements = application(runtime)
    # The read models service.py built, whose consumers keep them: the lists read their tables.
    directory, agreement_register = runtime.read_model(CustomerDirectory), runtime.read_model(AgreementRegister)

    expose(broker, "contracts", "sign", command(agreements.sign), keys=runtime.keys)
    expose(broker, "contracts", "pay", command(agreements.pay), keys=runtime.keys)
    expose(broker, "contracts", "amend", command(agreements.amend), keys=runtime.keys)
    expose(broker, "contracts", "terminate", command(agreements.terminate), keys=runtime.keys)
    expose(broker, "contracts", "change.record", command(agreements.change_request), keys=runtime.keys)  # rules C8, B6

    async def assess(body: Mapping[str, Any], meta: Mapping[str, Any]) -> Any:
        today = date.fromisoformat(body["today"]) if body.get("today") else None
        events = await agreements.assess(str(body.get("agreement_id", "")), today, command_id=None, meta=meta)
        return events_reply(events)

    async def coverage(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await agreements.coverage(body)

    async def agreement(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        as_of = instant(body, "as_of")
        # The log keeps UTC; SQLite compares the text, so the instant goes in as UTC too.
        state, version = await agreements.load(str(body.get("agreement_id", "")),
                                               as_of=as_of.astimezone(UTC) if as_of else None)
        require(state.status != "none", "not_found", "agreement_id", "no such agreement")
        return {"version": version, **domain.summary(state), "terms": codec.dump(state.terms)}

    async def history(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        events = await runtime.store.load(stream_of(str(body.get("agreement_id", ""))))
        return history_reply(events)

    async def templates(_body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return [{"id": t.template.id, "name": t.template.name, "parameters": t.template.parameters,
                 "description": t.template.description} for t in agreements.templates.values()]

    quotas = Quotas(agreements)
    for action in ("reserve", "consume", "release", "expire"):
        expose(broker, "contracts", f"quota.{action}", command(partial(quotas.use, action)), keys=runtime.keys)

    async def quota_balance(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await quotas.balance(body)

    warranties = Warranties(runtime.store)
    for action in ("register", "repair", "return", "replace"):
        expose(broker, "contracts", f"warranty.{action}", command(partial(warranties.record, action)),
               keys=runtime.keys)

    async def warranty_verdict(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await warranties.verdict(body)

    customers = Customers(runtime.store)
    expose(broker, "contracts", "customer.register", command(customers.register), keys=runtime.keys)
    expose(broker, "contracts", "customer.add_site", command(customers.add_site), keys=runtime.keys)
    expose(broker, "contracts", "customer.move_site", command(customers.move_site), keys=runtime.keys)

    async def customer(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        state = await customers.load(str(body.get("customer_id", "")))
        require(bool(state.customer_id), "not_found", "customer_id", "no such customer")
        return state

    async def customer_list(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await customers_page(runtime.engine, directory, body)

    def template_name(template_id: str) -> str:
        found = agreements.templates.get(template_id)
        return found.template.name if found else template_id

    async def agreement_list(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await agreements_page(runtime.engine, agreement_register, body, template_name)

    overview = Overview(agreements, customers, quotas, partial(agreement_ids, runtime.engine, agreement_register))

    async def customer_overview(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await overview.of(str(body.get("customer_id", "")))

    expose(broker, "contracts", "customer", customer, keys=runtime.keys)
    expose(broker, "contracts", "customers", customer_list, keys=runtime.keys)
    expose(broker, "contracts", "customer.overview", customer_overview, keys=runtime.keys)
    expose(broker, "contracts", "agreements", agreement_list, keys=runtime.keys)
    expose(broker, "contracts", "quota.balance", quota_balance, keys=runtime.keys)
    expose(broker, "contracts", "warranty.verdict", warranty_verdict, keys=runtime.keys)
    expose(broker, "contracts", "assess", assess, keys=runtime.keys)
    expose(broker, "contracts", "coverage", coverage, keys=runtime.keys)
    expose(broker, "contracts", "agreement", agreement, keys=runtime.keys)
    expose(broker, "contracts", "history", history, keys=runtime.keys)
    expose(broker, "contracts", "templates", templates, keys=runtime.keys)


async def assess_daily(runtime: Runtime, stop: asyncio.Event) -> None:
    """Lapse and fee-due checks for every agreement, on the service's own clock (C1, B4)."""
    interval = environment().assess_interval
    agreements = application(runtime)
    index = StreamIndex("contracts").table
    while not stop.is_set():
        async with runtime.engine.connect() as conn:
            ids = [row.stream_id.removeprefix("agreement-") for row in
                   await conn.execute(select(index.c.stream_id).where(index.c.stream_id.like("agreement-%")))]
        today = china_today()
        for agreement_id in ids:
            try:
                # One assessment a day per agreement: the command id makes reruns no-ops.
                await agreements.assess(agreement_id, today, command_id=f"assess:{agreement_id}:{today}")
            except Rejected as error:
                log.warning("assess.refused", agreement_id=agreement_id, **error.as_dict())
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            continue
