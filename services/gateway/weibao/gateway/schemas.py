"""What the HTTP API answers, for /openapi.json: the error shape every refusal has, the
statuses a route may answer with it, and the bodies of the replies.

Every route declares its answer (issue 12, item 4): a service's answers are its models
in weibao.shared.views (extra fields forbidden: a field is added there first, with its
meaning); the gateway's own (the session, the users, the audit status, the export's
rows) are here."""

from __future__ import annotations

import re
from types import GenericAlias
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from weibao.shared.public import billing as published
from weibao.shared.users import Role
from weibao.shared.views import View
from weibao.shared.views.audit import ServiceStatus


class Problem(BaseModel):
    code: str = Field(description="what kind of refusal: invalid, missing, not_found, forbidden, conflict, ...")
    field: str = Field(description="the field it concerns, dotted (`site.latitude`), or `(body)`, `(role)`, ...")
    message: str = Field(description="the refusal in English, for logs and people reading the API; "
                                     "pages show `reason` (or `code` and `field`) in their own language")
    reason: str | None = Field(default=None, description=(
        "a stable dotted key of this refusal's own (`ticket.not_assigned_to_you`), one per distinct "
        "refusal, for a client to translate (`reason.<key>` in the pages' dictionaries); absent when "
        "the refusal has none yet: translate `code` and `field` then"))
    values: dict[str, Any] | None = Field(default=None, description=(
        "what the reason's sentence names, by name (`technician`, `due`): names of people and things, "
        "times with their UTC offset; present only with `reason`"))


class ErrorDetail(Problem):
    problems: list[Problem] | None = Field(default=None, description="every problem of a refused body (422)")


class Error(BaseModel):
    """Every error answers this shape, whatever its status."""

    error: ErrorDetail


_MEANINGS = {
    400: "the body could not be read: not JSON, or not the content type the route takes",
    401: "not signed in, or the token expired or is invalid",
    403: "the caller's role (or the object's owner) does not allow this",
    404: "no such object or route",
    409: "a conflict: the object changed meanwhile, or an Idempotency-Key was reused with another body",
    413: "the request body is larger than the gateway accepts",
    422: "the request was refused: the field named is missing, malformed or out of range",
    429: "too many requests; retry later",
    502: "a service failed or answered something the gateway could not use",
    503: "a service is unavailable",
    504: "a service did not answer in time",
}
# One dict for every route (the API router declares it): each status a route may answer
# with the error shape. 404 includes unknown ids in the path; 413 the body limit.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Error, "description": meaning} for status, meaning in _MEANINGS.items()}


# -- the gateway's own answers: the session, the admin's users, the audit status ----------


class User(View):
    """Who is signed in."""

    username: str = Field(description="their user name")
    role: Role = Field(description="what they may do: dispatcher, technician, billing, auditor or admin")
    display_name: str = Field(description="their name as the pages show it (may be empty)")
    technician_id: str | None = Field(description="the technician they are; null for every other role")


class Session(View):
    """A signed-in session: send `Authorization: Bearer <access_token>` with every request."""

    access_token: str = Field(description="the bearer token")
    token_type: Literal["bearer"] = Field(description="always `bearer`")
    expires_in: int = Field(ge=1, description="seconds until the token expires")
    user: User = Field(description="who signed in")


class SignedOut(View):
    ok: bool = Field(description="always true: whatever was presented is no longer a session")
    revoked: int = Field(ge=0, description="how many of the tokens presented (header, cookie) were revoked")


class Account(User):
    """A user as the admin manages them (never a password hash)."""

    disabled: bool = Field(description="true when they may not sign in (and every token of theirs is refused)")


class Accounts(View):
    """Every user, by name."""

    items: list[Account] = Field(description="the users, by user name")


class ServiceUnreachable(View):
    """A service that did not answer the status question: the refusal the gateway met."""

    service: str = Field(description="the service")
    error: ErrorDetail = Field(description="why it gave no status (unavailable, timeout, ...)")


class ReplayStatus(View):
    """Each service's replay status, or why it gave none."""

    services: list[ServiceStatus | ServiceUnreachable] = Field(
        description="contracts, dispatch and billing, in that order")


# Bodies that are not JSON: the printable page, the exports, the live stream.
Responses = dict[int | str, dict[str, Any]]
# A route whose body is not JSON (response_class) would have FastAPI document its errors
# in that media type; they are JSON, so they are spelled out here by reference.
_ERROR = "#/components/schemas/Error"
JSON_ERRORS: Responses = {
    status: {"description": meaning, "content": {"application/json": {"schema": {"$ref": _ERROR}}}}
    for status, meaning in _MEANINGS.items()}
HTML: Responses = {200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "the HTML page"},
                   **JSON_ERRORS}


def _columns() -> dict[str, str]:
    """Each export column's meaning, as billing publishes it (weibao.shared.public.billing's
    list of columns, `- ``name`` -- meaning`)."""
    doc = published.__doc__ or ""
    found = re.findall(r"^- ``(\w+)`` -- (.+?)(?=^- ``|^\s*$)", doc, flags=re.MULTILINE | re.DOTALL)
    return {name: " ".join(meaning.split()) for name, meaning in found}


# A row of the JSON export: `row_of`'s object, keyed by billing's published COLUMNS, in
# their order: every column text, but the line's number (`texts_of`). Built from COLUMNS,
# so a column billing adds is in the schema at once, with its published meaning (a test
# holds every column documented). The export is a list of them (`list[ExportRow]`, spelled
# at run time: mypy takes a model built at run time for no type).
_MEANING = _columns()
_ROW: dict[str, Any] = {name: (int if name == "line_no" else str, Field(description=_MEANING.get(name)))
                        for name in published.COLUMNS}
ExportRow: type[View] = create_model(
    "ExportRow", __base__=View, __doc__="One invoice (or credit note) line of the export, with its invoice's header.",
    **_ROW)
EXPORT: Responses = {200: {"description": "the export file, as an attachment",
                           "model": GenericAlias(list, (ExportRow,)), "content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}}}}}
EVENTS: Responses = {200: {"description": "server-sent events: `hello`, then `change` and `resync`",
                           "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **JSON_ERRORS}
