"""Issue 16, item 1: every message in the user's language. The pages translate a refusal
from its `reason` key (`reason.<key>`), else from its `code` (`error.<code>`) and its
field (`field.<name>`); these tests prove the dictionaries hold what the services can say:

- both dictionaries of i18n.js have the same keys;
- every reason key raised anywhere in services/ and shared/ (an AST scan of `Rejected(...)`,
  `require(...)` and the gateway's `ApiError(...)` with `reason=...`) has a label in both,
  and a Chinese one that names only the values the refusal passes;
- every code those calls use has `error.<code>` in both."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from tests.gateway.test_vocabulary import STATIC, labels

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (ROOT / "services", ROOT / "shared")
CALLS = {"Rejected", "require", "ApiError"}
# The codes the pages make themselves (api.js, mobile.js) or FastAPI answers (errors.py).
# (file, line, codes, reasons, names of the values passed: None when not a literal dict)
Refusal = tuple[str, int, set[str], set[str], set[str] | None]
PAGE_CODES = {"offline", "http_error", "no_position", "bad_request", "method_not_allowed", "too_large", "invalid",
              "missing"}


def _name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _text(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _strings(node: ast.expr | None) -> set[str]:
    """The string constants an expression can be (`"a" if x else "b"` is both)."""
    if node is None:
        return set()
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    text = _text(node)
    return {text} if text is not None else set()


@functools.cache
def refusals() -> list[Refusal]:
    """(file, line, codes, reasons, value names) of every refusal in services/ and shared/.
    A helper that passes a reason on (`_require(state, action, message, reason)`) shows up
    at its callers: every string its `reason` parameter receives is counted."""
    found: list[Refusal] = []
    for root in SCANNED:
        for path in sorted(root.rglob("*.py")):
            if "tests" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or _name(node) not in CALLS:
                    continue
                args = node.args[1:] if _name(node) == "require" else node.args
                keywords = {k.arg: k.value for k in node.keywords if k.arg}
                codes = _strings(args[0]) if args else set()
                reasons = _strings(keywords.get("reason"))
                values = keywords.get("values")
                names = ({_text(k) or "" for k in values.keys if k is not None}
                         if isinstance(values, ast.Dict) else None)
                found.append((str(path.relative_to(ROOT)), node.lineno, codes, reasons, names))
            found.extend(_helper_reasons(path, tree))
    return found


def _helper_reasons(path: Path, tree: ast.Module) -> list[Refusal]:
    """Reasons handed to a module's own helpers whose last parameter is named `reason`
    (ticket.py's `_require`, invoice.py's `_require_draft`)."""
    helpers = {f.name: len(f.args.args) - 1 for f in tree.body
               if isinstance(f, ast.FunctionDef) and f.args.args and f.args.args[-1].arg == "reason"
               and any(isinstance(k.value, ast.Name) and k.value.id == "reason"
                       for call in ast.walk(f) if isinstance(call, ast.Call) for k in call.keywords
                       if k.arg == "reason")}
    found: list[Refusal] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
            at = helpers[node.func.id]
            if len(node.args) > at:
                found.append((str(path.relative_to(ROOT)), node.lineno, set(), _strings(node.args[at]), set()))
    return found


def reason_keys() -> dict[str, set[str] | None]:
    """Every reason key with the value names passed with it (None: not a literal dict)."""
    keys: dict[str, set[str] | None] = {}
    for _file, _line, _codes, reasons, names in refusals():
        for reason in reasons:
            before = keys.get(reason, set())
            keys[reason] = None if names is None or before is None else before | names
    return keys


def codes() -> set[str]:
    return {code for _f, _l, found, _r, _n in refusals() for code in found} | PAGE_CODES


def test_the_scan_finds_the_refusals_it_should() -> None:
    keys = reason_keys()
    # a domain refusal, one passed through a helper, the gateway's own, a query's not_found
    for key in ("ticket.not_assigned_to_technician", "ticket.respond_not_open", "invoice.issued_not_repriced",
                "auth.wrong_password", "auth.role_forbidden", "invoice.not_found", "agreement.not_found"):
        assert key in keys, key
    assert keys["intake.channel_not_offered"] == {"channel", "channels"}
    assert len(keys) >= 80
    assert {"conflict", "forbidden", "not_found", "unauthenticated", "too_many_attempts"} <= codes()


def test_reason_keys_are_stable_dotted_ids() -> None:
    bad = [key for key in reason_keys() if not re.fullmatch(r"[a-z]+(?:_[a-z]+)*\.[a-z0-9_]+", key)]
    assert not bad, bad


def test_both_dictionaries_have_the_same_keys() -> None:
    zh, en = labels("zh"), labels("en")
    assert sorted(set(zh) - set(en)) == [], "in Chinese only"
    assert sorted(set(en) - set(zh)) == [], "in English only"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_reason_has_a_label(language: str) -> None:
    known = labels(language)
    missing = sorted(f"reason.{key}" for key in reason_keys() if not known.get(f"reason.{key}"))
    assert not missing, f"i18n.js ({language}) has no label for {missing}"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_code_has_a_generic_text(language: str) -> None:
    known = labels(language)
    missing = sorted(f"error.{code}" for code in codes() if not known.get(f"error.{code}"))
    assert not missing, f"i18n.js ({language}) has no label for {missing}"


def test_a_label_names_only_the_values_its_refusal_passes() -> None:
    # `{technician}` in a sentence whose refusal passes no `technician` would show the braces.
    zh, en = labels("zh"), labels("en")
    wrong = []
    for key, names in reason_keys().items():
        if names is None:
            continue
        for language, known in (("zh", zh), ("en", en)):
            used = set(re.findall(r"\{(\w+)\}", known.get(f"reason.{key}", "")))
            if not used <= names:
                wrong.append((language, key, sorted(used - names)))
    assert not wrong, wrong


def test_chinese_texts_of_errors_are_chinese() -> None:
    # No English word on a Chinese screen: ids, numbers and placeholders aside.
    zh = labels("zh")
    english = [key for key, text in zh.items() if key.split(".")[0] in ("reason", "error", "field")
               and re.search(r"[A-Za-z]{2,}", re.sub(r"\{\w+\}", "", text))]
    assert not english, english


def test_the_glossary_fixes_the_terms_the_dictionary_uses() -> None:
    glossary = (STATIC / "GLOSSARY.md").read_text(encoding="utf-8")
    zh = labels("zh")
    chinese = "\n".join(zh.values())
    # each preferred term is the one i18n.js uses; each term to avoid is absent from error texts
    rows = re.findall(r"^\|\s*([^|\s][^|]*?)\s*\|\s*([^|]+?)\s*\|\s*([^|]*?)\s*\|", glossary, re.M)
    terms = [(zh_term, avoid) for zh_term, _en, avoid in rows
             if re.search(r"[\u4e00-\u9fff]", zh_term) and zh_term != "术语"]
    assert len(terms) >= 8
    for term, avoid in terms:
        assert term in chinese, f"the glossary's {term} is not used in i18n.js"
        errors = "\n".join(text for key, text in zh.items() if key.split(".")[0] in ("reason", "error", "field"))
        for word in re.findall(r"[\u4e00-\u9fff]+", avoid):
            assert word not in errors, f"error texts use {word}, the glossary says {term}"


def test_the_openapi_error_schema_documents_reason_and_values() -> None:
    from weibao.gateway.schemas import Problem
    assert {"reason", "values"} <= set(Problem.model_fields)
    assert Problem.model_fields["reason"].description


@pytest.mark.parametrize("language", ["zh", "en"])
def test_no_key_is_written_twice_in_a_dictionary(language: str) -> None:
    """A key written twice keeps its last label only, silently: "audit.stream" was both the
    history form's 聚合编号 and the replay status's 消息流, and the form showed 消息流."""
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    opening = re.compile(rf"^(?:const {language} = \{{|Object\.assign\({language}, \{{)$", re.M)
    keys: list[str] = []
    for start in opening.finditer(source):
        block = source[start.end():source.index("\n}", start.end())]
        keys += re.findall(r'^\s+"([^"]+)":', block, re.M)
    assert keys, language
    assert sorted({key for key in keys if keys.count(key) > 1}) == []
