"""The auditor's queries (weibao.shared.audit), asked of the contracts service over NATS:
their bodies decoded by the shared schemas (weibao.shared.commands.audit, issue 14), a
bad field refused in the structured shape (code, field, message) naming the field it
always named, and the answers unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from weibao.shared import codec
from weibao.shared.commands.audit import StatusQuery, StreamHistory, StreamList
from weibao.shared.errors import Rejected

from .conftest import OFFICE, YIZHUO_PARAMETERS, ask


@pytest.mark.parametrize(("schema", "body", "field"), [
    (StreamHistory, {"stream_id": "s", "as_of": "2026-06-01T09:30:00"}, "as_of"),  # naive: its zone a guess
    (StreamHistory, {"stream_id": "s", "as_of": 1_780_000_000}, "as_of"),  # not a Unix time
    (StreamHistory, {"stream_id": "s", "as_of": "yesterday"}, "as_of"),
    (StreamHistory, {"stream_id": "s", "as_of": "9999-12-31T00:00:00+00:00"}, "as_of"),  # overflows the store
    (StreamHistory, {"stream_id": "s", "asof": "2026-06-01T09:30:00+08:00"}, "asof"),  # a typo, named
    (StreamList, {"limit": "many"}, "limit"),
    (StreamList, {"limit": True}, "limit"),
    (StreamList, {"prefix": "x" * 101}, "prefix"),
    (StatusQuery, {"verify": "perhaps"}, "verify"),
])
def test_a_bad_audit_body_is_refused_naming_the_field(schema: type[Any], body: dict[str, Any], field: str) -> None:
    with pytest.raises(Rejected) as refused:
        codec.parse(schema, body)
    assert (refused.value.code, refused.value.field) == ("invalid", field)


def test_an_empty_as_of_from_a_form_is_none_and_an_aware_one_is_read() -> None:
    assert codec.parse(StreamHistory, {"stream_id": "s", "as_of": ""}).as_of is None
    then = codec.parse(StreamHistory, {"stream_id": "s", "as_of": "2026-06-01T09:30:00+08:00"}).as_of
    assert then == datetime(2026, 6, 1, 1, 30, tzinfo=UTC)


async def _sign(nc: NATS) -> None:
    signed = await ask(nc, "sign", {"agreement_id": "a-1", "customer_id": "c-1",
                                    "template_id": "yizhuo-crm-maintenance", "parameters": YIZHUO_PARAMETERS,
                                    "go_live": "2025-03-01", "office": OFFICE})
    assert signed["ok"], signed


async def test_the_auditor_reads_a_history_and_is_refused_by_field_over_nats(contracts: None, nc: NATS) -> None:
    await _sign(nc)
    history = await ask(nc, "audit.stream", {"stream_id": "agreement-a-1"})
    assert history["ok"], history
    assert history["result"]["as_of"] is None and history["result"]["events"]
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    then = await ask(nc, "audit.stream", {"stream_id": "agreement-a-1", "as_of": before})
    assert then["ok"] and then["result"]["events"] == [] and then["result"]["as_of"] == before

    for name, body, code, field in [
        ("audit.stream", {}, "missing", "stream_id"),
        ("audit.stream", {"stream_id": ""}, "missing", "stream_id"),
        ("audit.stream", {"stream_id": "agreement-nowhere"}, "not_found", "stream_id"),
        ("audit.stream", {"stream_id": "agreement-a-1", "as_of": "2026-06-01T09:30:00"}, "invalid", "as_of"),
        ("audit.streams", {"limit": 0}, "invalid", "limit"),  # the kit's paging ranges
        ("audit.streams", {"offset": -1}, "invalid", "offset"),
        ("status", {"verify": "perhaps"}, "invalid", "verify"),
    ]:
        answer = await ask(nc, name, body)
        assert not answer["ok"], (name, body, answer)
        assert set(answer["error"]) >= {"code", "field", "message"}
        assert (answer["error"]["code"], answer["error"]["field"]) == (code, field), (name, body, answer)

    status = await ask(nc, "status", {})
    assert status["ok"] and status["result"]["service"] == "contracts" and "chain" not in status["result"]
