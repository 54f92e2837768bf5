"""Issue 16, item 1: a refusal carries its reason key and values from the domain, through
a service's reply and the kit's client, to the gateway's HTTP body, beside the code,
field and message every client already reads (which keep their shape without a reason)."""

from __future__ import annotations

import pytest

from weibao.gateway.errors import ApiError
from weibao.shared.client import ServiceError, result_of
from weibao.shared.errors import Rejected, require
from weibao.shared.rpc import reply_error


def test_without_a_reason_the_body_keeps_its_three_fields() -> None:
    assert Rejected("conflict", "ticket_id", "nothing to decline").as_dict() == {
        "code": "conflict", "field": "ticket_id", "message": "nothing to decline"}
    assert ApiError("forbidden", "(role)", "no").body() == {
        "error": {"code": "forbidden", "field": "(role)", "message": "no"}}


def test_a_reason_and_its_values_travel_from_the_domain_to_the_http_body() -> None:
    with pytest.raises(Rejected) as raised:
        require(False, "overpaid", "amount", "only 10.00 yuan is outstanding", reason="invoice.overpaid",
                values={"outstanding": "10.00"})
    reply = reply_error(raised.value)
    assert reply["error"] == {"code": "overpaid", "field": "amount", "message": "only 10.00 yuan is outstanding",
                              "reason": "invoice.overpaid", "values": {"outstanding": "10.00"}}
    with pytest.raises(ServiceError) as caught:
        result_of(reply)
    heard = caught.value
    assert (heard.reason, heard.values) == ("invoice.overpaid", {"outstanding": "10.00"})
    assert ApiError.of(heard).body() == {"error": reply["error"]}
    assert ApiError.of(heard).status == 422


def test_a_reply_from_an_older_service_has_no_reason() -> None:
    with pytest.raises(ServiceError) as caught:
        result_of({"ok": False, "error": {"code": "not_found", "field": "invoice_id", "message": "no such invoice"}})
    assert caught.value.reason is None and caught.value.values == {}
    assert ApiError.of(caught.value, 404).body() == {
        "error": {"code": "not_found", "field": "invoice_id", "message": "no such invoice"}}
