"""Structured refusals: what a command answers instead of storing anything.

Pure (no I/O), so domains raise them and every edge (NATS reply, HTTP) renders them the
same way: a code a program can branch on, the field at fault, a sentence for people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rejected(Exception):
    code: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} at {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "message": self.message}


def require(condition: bool, code: str, field: str, message: str) -> None:
    if not condition:
        raise Rejected(code, field, message)
