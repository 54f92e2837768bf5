"""Structured refusals: what a command answers instead of storing anything.

Pure (no I/O), so domains raise them and every edge (NATS reply, HTTP) renders them the
same way: a code a program can branch on, the field at fault, a sentence for people."""

from __future__ import annotations

from typing import Any


class Rejected(Exception):
    # Not a frozen dataclass: Python's own machinery (contextlib, asyncio) assigns
    # `__traceback__` to exceptions passing through it, which a frozen one refuses.
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(code, field, message)
        self.code, self.field, self.message = code, field, message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rejected) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((self.code, self.field, self.message))

    def __str__(self) -> str:
        return f"{self.code} at {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "message": self.message}


def require(condition: bool, code: str, field: str, message: str) -> None:
    if not condition:
        raise Rejected(code, field, message)
