"""The attack of the Trust issue, replayed on the running services: a well-formed
`dispatch.ExpenseRecorded` with the next position, published by someone who is not
dispatch, must never reach an invoice (B1 bills what dispatch recorded, nothing else);
the real event at that position is still billed; billing parks the forgery with its
reason and raises an alarm; the audit's verification names the foreign message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nats.aio.client import Client as NATS

from tests.billing.test_billing_e2e import invoice_lines, report, technician_on_site
from tests.dispatch.test_dispatch_e2e import ask
from tests.helpers import eventually, stream_messages
from weibao.shared import keys
from weibao.shared.events import RecordedEvent, canonical_json, event_hash
from weibao.shared.messages import decode, encode


def forgery_after(last: dict[str, Any], template: dict[str, Any], signer: keys.Signer | None) -> RecordedEvent:
    """What an attacker reading the stream can build: the next position, linked to the
    last real event, its hash right; an amount of his choosing."""
    data = {**template["data"], "amount": "88888.00", "receipt_no": "FP-EVIL", "key": "evil"}
    meta = {"actor": "technician:near"}
    moment = datetime.now(UTC)
    position = last["position"] + 1
    digest = event_hash(last["hash"], position=position, stream_id=template["stream_id"], version=99,
                        type=template["type"], schema_version=template["schema_version"],
                        data_json=canonical_json(data), meta_json=canonical_json(meta), recorded_at=moment)
    return RecordedEvent(position, template["stream_id"], 99, template["type"], template["schema_version"], data,
                         meta, moment, last["hash"], digest, signer.key_id if signer else None,
                         signer.sign(keys.EVENT, digest.encode()) if signer else None)


async def test_b1_a_forged_expense_never_reaches_the_invoice(system: None, nc: NATS) -> None:
    await technician_on_site(nc)
    await report(nc, "expense", "expense-1", kind="lodging", amount="268.00", receipt_no="FP-1",
                 receipt_date="2026-06-01", nights=1)
    await invoice_lines(nc, "c-1-2026-06", 1)

    messages = await stream_messages(nc, "dispatch")
    bodies = [body for _, _, body in messages if isinstance(body, dict)]
    template = next(b for b in reversed(bodies) if b["type"] == "ExpenseRecorded")
    last = bodies[-1]
    # One signed with a key of the attacker's own, one unsigned, both at the next position.
    for signer in (keys.Signer.generate("dispatch"), None):
        payload, headers = encode("dispatch", forgery_after(last, template, signer))
        await nc.jetstream().publish("dispatch.ExpenseRecorded", payload, headers=headers)

    async def billing_refused_both() -> bool:
        health = json.loads((await nc.request("weibao.billing.health", b"{}", timeout=5)).data)
        return sum(health.get("refused", {}).values()) >= 2

    await eventually(billing_refused_both)
    # The real event at that position still arrives and is billed once.
    await report(nc, "expense", "expense-2", kind="meals", amount="60.00", receipt_no="FP-2",
                 receipt_date="2026-06-01")
    invoice = await invoice_lines(nc, "c-1-2026-06", 2)
    assert sorted(Decimal(line["amount"]) for line in invoice["lines"]) == [Decimal("60.00"), Decimal("268.00")]

    health = json.loads((await nc.request("weibao.billing.health", b"{}", timeout=5)).data)
    assert health["status"] == "alarm"
    status = await ask(nc, "dispatch.status", {"verify": True})
    chain = status["result"]["chain"]
    assert chain["ok"] is False and chain["first_broken"] is None  # the log is whole; its stream is not
    assert chain["stream"]["foreign"] == 2 and chain["stream"]["missing"] == 0
    # What dispatch's relay published is exactly its log, every event signed.
    assert chain["signatures"] == "checked" and chain["signed"] == chain["checked"]
    real = [decode(f"dispatch.{b['type']}", json.dumps(b).encode(), {"Weibao-Position": str(b["position"])})
            for b in bodies]
    assert all(m.signature for m in real)
