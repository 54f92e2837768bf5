"""The auditor's query bodies, asked of every service alike (weibao.shared.audit):
`weibao.<service>.audit.streams`, `.audit.stream` and `.status`.

The gateway's audit routes build these bodies from their query parameters (bound by the
same limits, below) and each service decodes its requests with the same classes, so
the shape is written once, like every other query's (issue 14)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from weibao.shared.commands import Body, Paging

# A stream-id prefix to filter by: longer than any aggregate's kind and id needs; the
# gateway's `prefix` parameter has the same bound.
PREFIX_MAX = 100
EXAMPLE = "2026-06-01T09:30:00+08:00"


class StreamList(Paging):
    """`audit.streams`: a page of the service's aggregates, most recently changed first;
    `prefix` keeps those whose stream id starts with it (empty or none: all)."""

    prefix: str | None = Field(default=None, max_length=PREFIX_MAX)


class StreamHistory(Body):
    """`audit.stream`: one aggregate's history, every event; with `as_of`, only what was
    recorded by then."""

    # Required, but refused by the service as `missing` when absent or empty: the code
    # an auditor's script has always been answered (pydantic would say `invalid`).
    stream_id: str = ""
    as_of: datetime | None = None

    @field_validator("as_of", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        # ISO text with its UTC offset, as the auditor's time has always been read: pydantic
        # would take a number as a Unix time; a naive time's zone would be a guess; an empty
        # one (from a form) is none.
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"an ISO 8601 time, e.g. {EXAMPLE}") from None
        else:
            raise ValueError(f"an ISO 8601 time, e.g. {EXAMPLE}")
        if parsed.utcoffset() is None:
            raise ValueError("a time with its UTC offset, not a naive one")
        return parsed


class StatusQuery(Body):
    """`status`: each read model's position against its upstream; `verify` also checks the
    log's hash chain and signatures against the broker's stream."""

    verify: bool = False
