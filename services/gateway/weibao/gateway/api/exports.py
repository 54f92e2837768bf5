"""Billing exports, streamed: the gateway pages through `billing.export.lines` and
formats as it goes (the format is billing's published one, in weibao.shared.public),
so a 100,000-line export never sits whole in the gateway's memory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response

from weibao.gateway.deps import AUDIT, BILLING, Caller, caller
from weibao.gateway.errors import ApiError
from weibao.shared.public.billing import ExportLine, csv_stream, json_stream, line_of, xlsx_file

router = APIRouter(tags=["billing"])
Reader = Annotated[Caller, caller(*BILLING, *AUDIT)]
Period = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]
PAGE = 2000  # rows per request to billing: well under NATS's message size limit

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


async def _lines(call: Caller, filters: dict[str, Any], first: list[dict[str, Any]],
                 after: str | None) -> AsyncIterator[ExportLine]:
    page: list[dict[str, Any]] = first
    while True:
        for row in page:
            yield line_of(row)
        if after is None:
            return
        answer = await call.ask("billing", "export.lines", {**filters, "limit": PAGE, "after": after})
        page, after = answer["lines"], answer.get("next")


@router.get("/exports/invoice-lines", summary="Invoice lines as CSV (UTF-8 with BOM), XLSX or JSON, with the "
            "columns documented in weibao.shared.public.billing; filter by customer, period or invoice")
async def invoice_lines(call: Reader, *, format: Literal["csv", "xlsx", "json"] = "csv",
                        customer_id: str | None = None, period_from: Period = None, period_to: Period = None,
                        invoice_id: str | None = None) -> Response:
    filters = {k: v for k, v in {"customer_id": customer_id, "period_from": period_from, "period_to": period_to,
                                 "invoice_id": invoice_id}.items() if v is not None}
    # The first page is fetched before answering, so a refused filter is a proper
    # error response rather than a download that breaks off.
    first = await call.ask("billing", "export.lines", {**filters, "limit": PAGE})
    lines = _lines(call, filters, first["lines"], first.get("next"))
    name = "invoice-lines" + "".join(f"-{v}" for v in filters.values())
    headers = {"Content-Disposition": f'attachment; filename="{name}.{format}"'}
    if format == "csv":
        return StreamingResponse(csv_stream(lines), media_type=MEDIA["csv"], headers=headers)
    if format == "json":
        return StreamingResponse(json_stream(lines), media_type=MEDIA["json"], headers=headers)
    # XLSX is a zip whose directory comes last: written to a temporary file, then sent.
    descriptor, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(descriptor)
    try:
        await xlsx_file(lines, path)
    except Exception as error:
        os.unlink(path)
        raise ApiError("internal", "(export)", "the export failed; see the gateway's log") from error
    return FileResponse(path, media_type=MEDIA["xlsx"], headers=headers, background=BackgroundTask(os.unlink, path))
