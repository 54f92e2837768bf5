"""One table of settings (issue 14): weibao.shared.settings is the only module that reads
the environment, every variable is in its table, the README shows that table, and a
value of the wrong type is refused naming the variable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from weibao.shared.settings import Environment, environment, table

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for top in ("shared", "services") for p in (ROOT / top).rglob("*.py")]
SETTINGS = ROOT / "shared" / "weibao" / "shared" / "settings.py"


def reads_environment(tree: ast.AST) -> list[int]:
    """Lines that read a variable: os.environ.get, os.getenv, `in os.environ`,
    os.environ[...] as a value. Writing one for a child process is not reading."""
    found = []
    for node in ast.walk(tree):
        match node:
            case ast.Call(func=ast.Attribute(attr="get", value=ast.Attribute(attr="environ"))):
                found.append(node.lineno)
            case ast.Call(func=ast.Attribute(attr="getenv")):
                found.append(node.lineno)
            case ast.Compare(comparators=[ast.Attribute(attr="environ")]):
                found.append(node.lineno)
            case ast.Subscript(value=ast.Attribute(attr="environ"), ctx=ast.Load()):
                found.append(node.lineno)
    return found


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = {str(path.relative_to(ROOT)): lines for path in SOURCES if path != SETTINGS
               if (lines := reads_environment(ast.parse(path.read_text(), str(path))))}
    assert readers == {}


def test_the_readme_shows_the_table() -> None:
    assert table() in (ROOT / "README.md").read_text()


def test_a_value_of_the_wrong_type_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "soon")
    with pytest.raises(ValidationError, match="WEIBAO_TICK_INTERVAL"):
        environment()
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "-1")
    with pytest.raises(ValidationError, match="WEIBAO_TICK_INTERVAL"):
        environment()


def test_unset_is_the_default_and_explicit_tells_them_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("WEIBAO_DEMO", "0")
    monkeypatch.setenv("WEIBAO_DB_SCHEMA", "")  # empty is unset
    found = environment()
    assert (found.nats_url, found.explicit("nats_url"), found.demo, found.db_schema) == (
        "nats://127.0.0.1:4222", None, False, None)
    monkeypatch.setenv("NATS_URL", "tls://a:4222,tls://b:4222")
    assert environment().explicit("nats_url") == "tls://a:4222,tls://b:4222"
    assert len(Environment.model_fields) == table().count("\n| `")
