"""Public messages: what one service tells the others, versioned.

Only these cross service boundaries; each service's domain events stay private (they
travel on `<service>.private.<Type>` as part of the log's exact copy, and no other
service reads them). Readers ignore fields they do not know; a breaking change is a new
`SCHEMA` version of the message.

A producer encodes with its module's CODEC; a consumer gets the decoded object from
`read` and matches on its type, so the contract between two services is checked by mypy
and a message that does not fit it is parked with the reason, not read half-way."""

from __future__ import annotations

from pydantic import ValidationError

from weibao.shared import codec
from weibao.shared.messages import BadMessage, Message
from weibao.shared.public import contracts, dispatch

Published = contracts.Published | dispatch.Published

_PRODUCERS = {contracts.SERVICE: contracts.CODEC, dispatch.SERVICE: dispatch.CODEC}


def read(message: Message, *wanted: type) -> Published | None:
    """The public message `message` carries, decoded, if it is one of the `wanted` kinds
    (any kind when none are named); None otherwise (a producer's private events, which
    travel on the same stream, and messages this reader does not use: a new schema of
    one of those is no reason to park it)."""
    known = _PRODUCERS.get(message.service)
    if known is None or not known.knows(message.type):
        return None
    kind, version = known.kinds[message.type], known.versions[message.type]
    if wanted and kind not in wanted:
        return None
    if message.schema_version != version:
        raise BadMessage(f"{message.type} schema {message.schema_version} is unknown here (we read {version})")
    try:
        found: Published = codec.load(kind, dict(message.data))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(data)"
        raise BadMessage(f"{message.type} does not fit its schema: {where}: {first['msg']}") from error
    return found
