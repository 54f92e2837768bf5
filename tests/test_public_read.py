"""weibao.shared.public.read: a consumer gets the public dataclass a stream message
carries (issue 14), or None for what it does not read; a misfit of what it reads is a
BadMessage naming the field (the consumer parks it with that reason)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime

import pytest

from weibao.shared import public
from weibao.shared.messages import BadMessage, Message
from weibao.shared.public import contracts, dispatch

WORK = dispatch.WorkLogged("t-1", "c-1", "ag-1", "tech-1", "k-000001", "hardware", "2026-06-01T09:00:00+08:00",
                           "2026-06-01T12:00:00+08:00", "covered", ("C4",))


def on_stream(message: object, service: str = "dispatch") -> Message:
    kind = type(message)
    return Message(service, 7, "ticket-t-1", 3, kind.__name__, getattr(kind, "SCHEMA", 1),
                   datetime(2026, 6, 1, 4, tzinfo=UTC), json.loads(json.dumps(asdict(message))), {})


def test_a_public_message_is_decoded_into_its_dataclass() -> None:
    found = public.read(on_stream(WORK))
    assert found == WORK  # clauses back as a tuple, every field typed
    assert public.read(on_stream(WORK), dispatch.WorkLogged, dispatch.ExpenseRecorded) == WORK


def test_a_misfit_or_another_schema_of_a_wanted_message_is_refused_with_the_reason() -> None:
    misfit = on_stream(WORK)
    misfit = replace(misfit, data={**misfit.data, "kind": "plumbing"})  # not one of dispatch's kinds of work
    with pytest.raises(BadMessage, match="kind"):
        public.read(misfit)
    missing = replace(on_stream(WORK), data={k: v for k, v in on_stream(WORK).data.items() if k != "ticket_id"})
    with pytest.raises(BadMessage, match="ticket_id"):
        public.read(missing)
    with pytest.raises(BadMessage, match="schema 2"):
        public.read(replace(on_stream(WORK), schema_version=2))


def test_what_a_reader_does_not_read_is_none_even_when_it_would_not_fit() -> None:
    # A producer's private event on the same stream.
    assert public.read(replace(on_stream(WORK), type="private.WorkLogged")) is None
    # A message of another schema this reader does not use: no reason to park it.
    newer = replace(on_stream(WORK), schema_version=2)
    assert public.read(newer, dispatch.ExpenseRecorded) is None
    # Another producer's name for a type it does not publish.
    assert public.read(on_stream(WORK, service="contracts")) is None
    site = contracts.SiteLocated("c-1", "客户", "s-1", "机房", "合肥", 31.8, 117.2, "340100", "district")
    assert public.read(on_stream(site, service="contracts"), contracts.SiteLocated) == site
    # Fields a newer producer added are ignored (readers ignore what they do not know).
    extended = on_stream(site, service="contracts")
    assert public.read(replace(extended, data={**extended.data, "floor": 3})) == site
