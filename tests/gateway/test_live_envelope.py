"""The live feed's reading of a relayed message (issue 14): a typed envelope decoded in
one pass, not keys looked up in raw JSON. A technician hears only of their own visits;
everyone else of every event; a page is told the envelope, never the data."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest

from weibao.gateway.api.live import ABOUT_A_VISIT, _envelope, visible
from weibao.gateway.auth import Principal
from weibao.shared.events import RecordedEvent
from weibao.shared.messages import encode
from weibao.shared.public import dispatch

NEAR = Principal("near", "technician", "Near", "near")
FAR = Principal("far", "technician", "Far", "far")
DISPATCHER = Principal("li", "dispatcher", "Li", None)
ASSIGNED = dispatch.VisitAssigned("t-1", "near", "2026-06-01T01:00:00Z", False, "dispatcher:li", None, {})


def relayed(type_: str, data: dict[str, Any]) -> bytes:
    event = RecordedEvent(7, "ticket-t-1", 2, type_, 1, data, {}, datetime(2026, 6, 1, 1, tzinfo=UTC), "0" * 64,
                          "1" * 64)
    return encode("dispatch", event)[0]


def test_a_technician_hears_only_their_own_visits_public_or_private() -> None:
    public = _envelope(relayed("VisitAssigned", asdict(ASSIGNED)))
    private = _envelope(relayed("private.CheckedIn", {"ticket_id": "t-1", "technician_id": "near", "key": "k"}))
    opened = _envelope(relayed("private.TicketOpened", {"ticket_id": "t-1", "summary": "打印服务停止"}))
    assert public is not None and private is not None and opened is not None
    assert visible(NEAR, public) and visible(NEAR, private) and not visible(NEAR, opened)
    assert not visible(FAR, public) and not visible(FAR, private)
    assert all(visible(DISPATCHER, envelope) for envelope in (public, private, opened))


def test_a_page_is_told_the_envelope_only() -> None:
    envelope = _envelope(relayed("VisitAssigned", asdict(ASSIGNED)))
    assert envelope is not None
    change = envelope.model_dump(include={"service", "stream_id", "type", "position", "recorded_at"})
    assert change == {"service": "dispatch", "stream_id": "ticket-t-1", "type": "VisitAssigned", "position": 7,
                      "recorded_at": "2026-06-01T01:00:00.000000Z"}  # as the relay wrote it


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"type": "VisitAssigned"}', b"\xff\xfe"])
def test_what_is_no_envelope_is_dropped(raw: bytes) -> None:
    assert _envelope(raw) is None


def test_data_that_is_no_object_is_heard_by_the_office_only() -> None:
    odd = _envelope(b'{"stream_id": "ticket-t-1", "type": "x", "data": null}')
    assert odd is not None and visible(DISPATCHER, odd) and not visible(NEAR, odd)


def test_the_public_messages_about_a_visit_name_their_technician() -> None:
    # The same field the feed reads (mypy checks this tuple's types; this checks it runs).
    assert all("technician_id" in kind.__dataclass_fields__ for kind in ABOUT_A_VISIT)  # type: ignore[attr-defined]
