"""What the services answer to the gateway and the gateway to HTTP clients (issue 12,
item 4; issue 14): one model per answer, defined once here and used by both ends.

The services build their answers (dicts, for the wire) and the gateway declares these
models as its routes' `response_model`: FastAPI validates every answer against them, so
a service that adds, drops or renames a field fails the gateway's tests (and the
schemathesis run in CI) instead of reaching a client as an undocumented field. That is
why `View` forbids extra fields: a new field is added here first, with its meaning.

`Listing[Item]` is every paged list (weibao.shared.paging: `items`, `total`,
`next_offset`); `Stored` is what every command answers (the events it stored)."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from weibao.shared.paging import MAX_LIMIT


class View(BaseModel):
    """An answer's shape: every field declared, none other let through."""

    model_config = ConfigDict(extra="forbid")


Item = TypeVar("Item", bound=BaseModel)


class Listing(View, Generic[Item]):
    """A page of a list: ask again with `offset=next_offset`."""

    items: list[Item]
    total: int = Field(ge=0, description="rows in the whole list")
    next_offset: int | None = Field(description=f"the next page's offset (pages of at most {MAX_LIMIT}); "
                                                "null on the last page")


class StoredEvent(View):
    position: int = Field(ge=1, description="the event's position in its service's log")
    version: int = Field(ge=1, description="the event's version in its aggregate's stream")
    type: str = Field(description="the event's type: `private.CheckedIn`, `dispatch.VisitAssigned`, ...")
    data: dict[str, JsonValue] = Field(description=(
        "the event's fields, as its service stored them and the audit trail shows them; "
        "their shape is the event type's (the service's README lists its events)"))


class Stored(View):
    """What a command answers: the events it stored, in order; none for a command that
    changed nothing or for the retry of one already stored (its Idempotency-Key)."""

    events: list[StoredEvent]
