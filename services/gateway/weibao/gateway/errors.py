"""HTTP errors in the one shape every service answers: `{"error": {code, field, message}}`, with
`reason` (a stable key of this refusal's own, which the pages translate) and its `values`
when the refusal names them (weibao.shared.errors).

A service's refusal keeps its code and field; the HTTP status says what kind of
refusal it was, so a client can branch on either."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from weibao.shared.errors import Rejected

# What each refusal code means to HTTP; anything unlisted is a 422 (the input was refused).
STATUS = {
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "concurrency": 409,
    "idempotency_key_reused": 409,  # the same key, caller, route and object with another body
    "internal": 502,
    "unavailable": 503,
    "timeout": 504,
}


class ApiError(Exception):
    def __init__(self, code: str, field: str, message: str, status: int | None = None, *,
                 retry_after: int | None = None, reason: str | None = None,
                 values: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message
        self.reason = reason
        self.values: dict[str, Any] = dict(values or {})
        self.status = status or STATUS.get(code, 422)
        # Seconds until trying again can succeed (RFC 9110 Retry-After): clients and
        # proxies wait that long instead of hammering a throttle.
        self.retry_after = retry_after

    @classmethod
    def of(cls, refusal: Rejected, status: int | None = None) -> ApiError:
        """A service's (or the kit's) refusal as the gateway answers it: the same code,
        field, message, reason and values."""
        return cls(refusal.code, refusal.field, refusal.message, status, reason=refusal.reason,
                   values=refusal.values)

    def body(self) -> dict[str, Any]:
        # The services' one shape (Rejected.as_dict), so the two never drift.
        return {"error": Rejected(self.code, self.field, self.message, reason=self.reason,
                                  values=self.values).as_dict()}


def _field(location: tuple[Any, ...]) -> str:
    # ("body", "site", "latitude") -> "site.latitude"; ("query", "limit") -> "limit"
    parts = [str(p) for p in location[1:]] if location and location[0] in ("body", "query", "path") else \
        [str(p) for p in location]
    return ".".join(parts) or "(body)"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        return JSONResponse(error.body(), status_code=error.status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        # The first problem names the field; all of them come along for forms that show each.
        problems = [{"code": "invalid" if p["type"] != "missing" else "missing", "field": _field(tuple(p["loc"])),
                     "message": p["msg"]} for p in error.errors()]
        first = problems[0] if problems else {"code": "invalid", "field": "(body)", "message": "invalid request"}
        return JSONResponse({"error": {**first, "problems": problems}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        code = codes.get(error.status_code, "http_error")
        # 400 is FastAPI's "error parsing the body"; 413 is the body limit (weibao.gateway.security).
        field = "(body)" if error.status_code in (400, 413) else "(path)"
        return JSONResponse({"error": {"code": code, "field": field, "message": str(error.detail)}},
                            status_code=error.status_code)
