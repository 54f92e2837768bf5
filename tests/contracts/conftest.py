"""Agreements signed from the shipped templates, for the contracts tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from weibao.contracts.adapters.templates import TemplateFile, load_templates
from weibao.contracts.domain.agreement import Agreement, Office, SignAgreement, decide, evolve

HEFEI = Office("合肥办事处", "3401", 31.8206, 117.2272)

YIZHUO_PARAMETERS: dict[str, Any] = {
    "fee.percent": "10",
    "fee.licence_price": "120000",
    "onsite.local_hours": 8,
    "onsite.out_of_town_days": 2,
    "hardware.day_rate": "800",
}


@pytest.fixture(scope="session")
def templates() -> dict[str, TemplateFile]:
    return load_templates()


def signed(template: TemplateFile, go_live: date = date(2025, 3, 1), **parameters: Any) -> Agreement:
    terms = template.resolve(parameters)
    command = SignAgreement("agr-1", "cust-1", template.template.id, terms, go_live, go_live, HEFEI)
    return apply(Agreement(), decide(command, Agreement()))


def apply(state: Agreement, events: list[Any]) -> Agreement:
    for event in events:
        state = evolve(state, event)
    return state
