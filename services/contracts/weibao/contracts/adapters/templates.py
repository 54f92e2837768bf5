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

from weibao.contracts.domain.terms import Template, Terms
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
                raise Rejected("unknown", f"parameters.{path}", "no such term")
        try:
            return validate_terms(merge(self.raw_terms, parameters))
        except ValidationError as error:
            first = error.errors()[0]
            location = ".".join(str(part) for part in first["loc"])
            raise Rejected("invalid", f"parameters.{location}", first["msg"]) from error


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
        first = error.errors()[0]
        raise TemplateError(name, ".".join(str(p) for p in first["loc"]), first["msg"]) from error
    if path.stem != template.id:
        raise TemplateError(name, "id", f"must equal the file name, {path.stem!r}")
    return TemplateFile(template, raw_terms, path)


def load_templates(folder: Path = SHIPPED) -> dict[str, TemplateFile]:
    """Every `*.toml` in `folder`, by id."""
    return {loaded.template.id: loaded for loaded in map(load_template, sorted(folder.glob("*.toml")))}
