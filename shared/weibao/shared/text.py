"""Text every backend stores: the characters a command may carry, checked at the edge.

A string PostgreSQL cannot hold (NUL), that cannot be encoded as UTF-8 (a lone
surrogate) or that is no text at all (a C0 control other than tab, line feed and
carriage return; the non-characters U+FFFE and U+FFFF) is refused with the path of the
field that carries it. Checked before anything is decided, it never reaches a log that
SQLite would have taken and PostgreSQL's consumer would then park: one rule for every
backend, so a request answers the same wherever it is stored."""

from __future__ import annotations

import re
from typing import Any

from weibao.shared.errors import Rejected

_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _why(char: str) -> str:
    point = ord(char)
    code = f"U+{point:04X}"
    if point == 0:
        return f"a NUL character ({code}), which PostgreSQL text cannot hold"
    if 0xD800 <= point <= 0xDFFF:
        return f"a lone surrogate ({code}), which is no character and cannot be encoded as UTF-8"
    if point < 0x20:
        return f"a control character ({code}); of those only tab, line feed and carriage return are text"
    return f"the non-character {code}"


def problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None when it can."""
    found = _BAD.search(value)
    if found is None:
        return None
    return f"character {found.start() + 1} is {_why(found.group())}"


def _shown(key: str) -> str:
    # A bad key is named with its bad characters escaped: the path itself must be safe text.
    return _BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check(value: Any, path: str = "") -> None:
    """Raise Rejected("invalid", <path>, <reason>) on the first string (dict keys
    included, in document order) that cannot be stored; paths read `summary`,
    `sites[0].name`, `parameters.onsite.service_hours[1]`, `(body)` for the value itself."""
    # A stack, not recursion: a deeply nested body is refused by JSON parsing's own
    # limits, never by this walk running out of stack.
    stack: list[tuple[Any, str, bool]] = [(value, path, False)]
    while stack:
        item, where, is_key = stack.pop()
        if isinstance(item, str):
            if (reason := problem(item)) is not None:
                if is_key:
                    raise Rejected("invalid", _join(where, _shown(item)), f"in the field's name, {reason}")
                raise Rejected("invalid", where or "(body)", reason)
        elif isinstance(item, dict):
            children: list[tuple[Any, str, bool]] = []
            for key, child in item.items():
                name = str(key)
                children += [(name, where, True), (child, _join(where, name), False)]
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(child, f"{where}[{i}]", False) for i, child in enumerate(item)]))
