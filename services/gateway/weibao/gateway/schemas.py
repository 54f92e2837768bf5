"""What the HTTP API answers, for /openapi.json: the error shape every refusal has, the
statuses a route may answer with it, and the bodies of the replies.

The services are the authority on what a record holds, and they add fields as they
grow; these models pin what a client may rely on (an object, a page's `items`/`total`/
`next_offset`, a session's token) and let the rest through (`extra="allow"`), so a
service's new field is never a gateway error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from weibao.shared.paging import MAX_LIMIT


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


class Record(BaseModel):
    """An object as the service answers it (its fields documented with the service)."""

    model_config = ConfigDict(extra="allow")


class Page(BaseModel):
    """A page of a list (weibao.shared.paging): ask again with `offset=next_offset`."""

    model_config = ConfigDict(extra="allow")

    items: list[Record]
    total: int = Field(ge=0, description="rows in the whole list")
    next_offset: int | None = Field(description=f"the next page's offset (pages of at most {MAX_LIMIT}); "
                                                "null on the last page")


class Template(Record):
    id: str
    name: str


class ServiceStatus(Record):
    service: str | None = None


class Status(BaseModel):
    services: list[ServiceStatus]


class User(BaseModel):
    username: str
    role: str
    display_name: str
    technician_id: str | None


class Session(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    user: User


class SignedOut(BaseModel):
    ok: bool


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
EXPORT: Responses = {200: {"description": "the export file, as an attachment", "content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}}}}}
EVENTS: Responses = {200: {"description": "server-sent events: `hello`, then `change` and `resync`",
                           "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **JSON_ERRORS}
