"""Structured refusals: what a command answers instead of storing anything.

Pure (no I/O), so domains raise them and every edge (NATS reply, HTTP) renders them the
same way: a code a program can branch on, the field at fault, a sentence for people.

A refusal may also name its `reason`: a stable dotted key of its own ("ticket.not_assigned_to_you"),
one per distinct refusal, that the pages translate (`reason.<key>` in i18n.js), with the
`values` the sentence names (a technician's name, a date) so the translation can use them.
The `message` stays, in English, for logs and programs that read it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Rejected(Exception):
    # Not a frozen dataclass: Python's own machinery (contextlib, asyncio) assigns
    # `__traceback__` to exceptions passing through it, which a frozen one refuses.
    def __init__(self, code: str, field: str, message: str, *, reason: str | None = None,
                 values: Mapping[str, Any] | None = None) -> None:
        super().__init__(code, field, message)
        self.code, self.field, self.message = code, field, message
        self.reason = reason
        self.values: dict[str, Any] = dict(values or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rejected) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((self.code, self.field, self.message, self.reason))

    def __str__(self) -> str:
        return f"{self.code} at {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The error body: code, field and message always; `reason` and `values` when named."""
        body: dict[str, Any] = {"code": self.code, "field": self.field, "message": self.message}
        if self.reason:
            body["reason"] = self.reason
            if self.values:
                body["values"] = dict(self.values)
        return body


def require(condition: bool, code: str, field: str, message: str, *, reason: str | None = None,
            values: Mapping[str, Any] | None = None) -> None:
    if not condition:
        raise Rejected(code, field, message, reason=reason, values=values)
