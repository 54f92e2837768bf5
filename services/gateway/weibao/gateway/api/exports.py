"""Billing exports, streamed: the gateway pages through `billing.export.lines` and
formats as it goes (the format is billing's published one, in weibao.shared.public),
so a 100,000-line export never sits whole in the gateway's memory."""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import IO, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from weibao.gateway.deps import AUDIT, BILLING, Caller, caller
from weibao.gateway.errors import ApiError
from weibao.gateway.export_files import csv_stream, json_stream, xlsx_file
from weibao.gateway.schemas import EXPORT
from weibao.shared.public.billing import ExportLine, line_of

router = APIRouter(tags=["billing"])
Reader = Annotated[Caller, caller(*BILLING, *AUDIT)]
Period = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]
PAGE = 2000  # rows per request to billing: well under NATS's message size limit
Filter = Annotated[str | None, Query(max_length=100)]
CHUNK = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")  # what an ASCII filename keeps; all else becomes "_"

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


@router.get("/exports/invoice-lines", responses=EXPORT,
            summary="Invoice lines as CSV (UTF-8 with BOM), XLSX or JSON, with the "
            "columns documented in weibao.shared.public.billing, formats in weibao.gateway.export_files; "
            "filter by customer, period or invoice")
async def invoice_lines(call: Reader, *, format: Literal["csv", "xlsx", "json"] = "csv",
                        customer_id: Filter = None, period_from: Period = None, period_to: Period = None,
                        invoice_id: Filter = None) -> Response:
    filters = {k: v for k, v in {"customer_id": customer_id, "period_from": period_from, "period_to": period_to,
                                 "invoice_id": invoice_id}.items() if v is not None}
    # The first page is fetched before answering, so a refused filter is a proper
    # error response rather than a download that breaks off.
    first = await call.ask("billing", "export.lines", {**filters, "limit": PAGE})
    lines = _lines(call, filters, first["lines"], first.get("next"))
    headers = {"Content-Disposition": attachment("invoice-lines", list(filters.values()), format)}
    if format == "csv":
        return StreamingResponse(csv_stream(lines), media_type=MEDIA["csv"], headers=headers)
    if format == "json":
        return StreamingResponse(json_stream(lines), media_type=MEDIA["json"], headers=headers)
    # XLSX is a zip whose directory comes last: written whole before it is sent, to an
    # anonymous temporary file (no name in the temp folder: the system drops it when it
    # is closed, whether the export is sent, fails, or the client goes away).
    file = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - closed by _chunks or below
    try:
        await xlsx_file(lines, file)
        size = file.tell()
        file.seek(0)
    except Exception as error:
        file.close()
        raise ApiError("internal", "(export)", "the export failed; see the gateway's log") from error
    return StreamingResponse(_chunks(file), media_type=MEDIA["xlsx"],
                             headers={**headers, "Content-Length": str(size)})


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    # A plain iterator: Starlette reads it in a worker thread, so the disk never blocks the loop.
    with file:
        while chunk := file.read(CHUNK):
            yield chunk


def attachment(stem: str, values: list[str], extension: str) -> str:
    """A Content-Disposition naming the download after its filters (RFC 6266): an ASCII
    `filename` any browser takes, and the exact name in `filename*` (RFC 5987), UTF-8 and
    percent-encoded, so a filter's quotes, semicolons, line breaks or Chinese can neither
    break the header nor inject a parameter."""
    name = stem + "".join(f"-{v}" for v in values)
    fallback = _UNSAFE.sub("_", name)[:150]
    return f"attachment; filename=\"{fallback}.{extension}\"; filename*=UTF-8''{quote(name[:150], safe='')}.{extension}"
