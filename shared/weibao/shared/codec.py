"""Domain events <-> stored events, one codec per service.

Domain events are frozen dataclasses; pydantic turns them into JSON-ready data and back
(dates as ISO text, Decimals as strings, tuples as lists), so no service writes its own
serialiser and a field added with a default reads old events unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from weibao.shared.errors import Rejected
from weibao.shared.events import NewEvent

T = TypeVar("T")


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    """Building an adapter is costly; each event class gets one, on first use."""
    found = _adapters.get(kind)
    if found is None:
        found = _adapters[kind] = TypeAdapter(kind)
    return found


def dump(value: Any) -> Any:
    """A dataclass (or any pydantic-known value) as plain JSON data."""
    return _adapter(type(value)).dump_python(value, mode="json")


def load(kind: type[T], data: Any) -> T:
    result: T = _adapter(kind).validate_python(data)
    return result


def parse(kind: type[T], data: Any, *, field: str = "") -> T:
    """Validate outside data into `kind`; refuse with the first bad field's path."""
    try:
        return load(kind, data)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(part) for part in (field, *first["loc"]) if part != "")
        raise Rejected("invalid", path or "(body)", first["msg"]) from error


class Stored(Protocol):
    """What an event is decoded from: a log's RecordedEvent or a consumer's Message."""

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


class Codec:
    """Stored type = `prefix` + class name. A service's private events use the prefix
    "private.", so they travel on `<service>.private.<Name>` and never collide with a
    public message of the same name."""

    def __init__(self, kinds: Iterable[type], schema_versions: Mapping[str, int] | None = None,
                 *, prefix: str = "") -> None:
        self.prefix = prefix
        self.kinds = {prefix + kind.__name__: kind for kind in kinds}
        self.versions = {prefix + name: version for name, version in (schema_versions or {}).items()}

    def knows(self, type_name: str) -> bool:
        return type_name in self.kinds

    def encode(self, event: Any) -> NewEvent:
        name = self.prefix + type(event).__name__
        if name not in self.kinds:
            raise KeyError(f"{name} is not an event of this codec")
        return NewEvent(name, dump(event), self.versions.get(name, 1))

    def decode(self, recorded: Stored) -> Any:
        kind = self.kinds.get(recorded.type)
        if kind is None:
            raise KeyError(f"unknown event type {recorded.type!r}")
        return _adapter(kind).validate_python(dict(recorded.data))
