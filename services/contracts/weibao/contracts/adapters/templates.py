"""Agreement templates: TOML files a vendor can read and write, checked on load.

A template gives the terms of a kind of agreement and names the blanks a signature
fills (`parameters`, dotted paths into the terms). Its `[example]` table is a sample
signature: the file is only accepted if the example makes a complete, valid agreement,
so a broken template fails at start-up, naming the file, the field and the reason."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import TypeAdapter, ValidationError

from weibao.contracts.domain.terms import UNKNOWN, WANTS, Template, TermError, Terms
from weibao.shared.errors import Rejected

SHIPPED = Path(__file__).resolve().parent.parent / "templates"


class TemplateError(Exception):
    def __init__(self, file: str, field: str, reason: str) -> None:
        super().__init__(f"{file}: {field}: {reason}")
        self.file, self.field, self.reason = file, field, reason


@dataclass(frozen=True)
class TemplateFile:
    template: Template
    raw_terms: Mapping[str, Any]
    path: Path

    def resolve(self, parameters: Mapping[str, Any]) -> Terms:
        """The terms of one signed agreement: the template's, with the blanks filled.

        Any term may be given (an agreement may differ from its template); every
        declared parameter must be. Refusals name `parameters.<path>`."""
        for path in self.template.parameters:
            if path not in parameters:
                raise Rejected("missing", f"parameters.{path}", "this template needs it at signing")
        for path in parameters:
            if not is_term_path(path):
                raise Rejected("unknown", f"parameters.{path}", unknown_reason(path))
        try:
            return validate_terms(merge(self.raw_terms, parameters))
        except ValidationError as error:
            location, reason = refusal(error)
            raise Rejected("invalid", f"parameters.{location}", reason) from error


def refusal(error: ValidationError) -> tuple[str, str]:
    """The first problem as (dotted path of the term, what it wants in words).

    A term's own check (`TermError`) names the term below the section that raised it;
    a value of the wrong type is told what the term wants (`WANTS`), not the type
    name of some branch the validator tried (a list of service hours once read
    `onsite.service_hours.constrained-str`)."""
    first = error.errors()[0]
    parts = [str(part) for part in first["loc"] if not isinstance(part, int) and part != "[key]"]
    found = (first.get("ctx") or {}).get("error")
    if isinstance(found, TermError):
        return ".".join([*parts, found.field]), found.reason
    path = ".".join(parts)
    if first["type"] in ("unexpected_keyword_argument", "extra_forbidden") and parts:
        return path, UNKNOWN.get(_pattern(".".join(parts[:-1])), first["msg"])
    # the innermost term with words for it: `onsite.service_hours`, not its item [1]
    while parts:
        wanted = WANTS.get(_pattern(".".join(parts)))
        if wanted is not None:
            return ".".join(parts), wanted
        parts.pop()
    return path, first["msg"]


def _pattern(path: str) -> str:
    """The key of `WANTS` and `UNKNOWN` for a path: `terms.` dropped, a priority as `*`."""
    parts = path.removeprefix("terms.").split(".")
    return ".".join("*" if i == 2 and parts[:2] == ["onsite", "priority_targets"] else part
                    for i, part in enumerate(parts))


def merge(raw: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(raw))
    for path, value in parameters.items():
        node = merged
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return merged


def validate_terms(data: Mapping[str, Any]) -> Terms:
    return TypeAdapter(Terms).validate_python(dict(data))


def is_term_path(path: str) -> bool:
    kind: Any = Terms
    for part in path.split("."):
        if not (isinstance(kind, type) and is_dataclass(kind)):
            return False
        names = {f.name for f in fields(kind)}
        if part not in names:
            return False
        hint = get_type_hints(kind)[part]
        # Optional nested sections (`Fee | None`) continue into the section's fields.
        kind = next((arg for arg in getattr(hint, "__args__", (hint,)) if is_dataclass(arg)), hint)
    return True


def unknown_reason(path: str) -> str:
    """Why a dotted path names no term, in words: the section it leaves says what it holds."""
    parts = path.split(".")
    for end in range(1, len(parts) + 1):
        if not is_term_path(".".join(parts[:end])):
            return UNKNOWN.get(_pattern(".".join(parts[:end - 1])), "no such term")
    return "no such term"


def load_template(path: Path) -> TemplateFile:
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise TemplateError(name, "(file)", f"not valid TOML: {error}") from error
    example = data.pop("example", {})
    raw_terms = data.get("terms", {})
    for path_ in data.get("parameters", []):
        if not is_term_path(path_):
            raise TemplateError(name, f"parameters.{path_}", "no such term")
        if path_ not in example:
            raise TemplateError(name, f"example.{path_}", "the example signature must fill every parameter")
    try:
        template = TypeAdapter(Template).validate_python({**data, "terms": merge(raw_terms, example)})
    except ValidationError as error:
        raise TemplateError(name, *refusal(error)) from error
    if path.stem != template.id:
        raise TemplateError(name, "id", f"must equal the file name, {path.stem!r}")
    return TemplateFile(template, raw_terms, path)


def load_templates(folder: Path = SHIPPED) -> dict[str, TemplateFile]:
    """Every `*.toml` in `folder`, by id."""
    return {loaded.template.id: loaded for loaded in map(load_template, sorted(folder.glob("*.toml")))}
