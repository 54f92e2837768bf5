"""Text every backend stores (weibao.shared.text): what PostgreSQL text cannot hold, what
UTF-8 cannot encode and what is no text at all is refused, naming the field's path."""

from __future__ import annotations

from typing import Any

import pytest

from weibao.shared.errors import Rejected
from weibao.shared.text import check, problem

BAD = [  # pairs, not a dict: linters compare lone surrogates as if they were one key
    ("\x00", "NUL"),  # PostgreSQL: invalid byte sequence for encoding "UTF8": 0x00
    ("\ud800", "surrogate"),
    ("\udfff", "surrogate"),
    ("\x01", "control"),
    ("\x08", "control"),
    ("\x0b", "control"),
    ("\x0c", "control"),
    ("\x1b", "control"),
    ("\x1f", "control"),
    ("\ufffe", "non-character"),
    ("\uffff", "non-character"),
]
GOOD = ["", "打印服务停止", "安徽省合肥市庐阳区 1号", "🛠️ 已修复 👍", "line one\nline two\r\n\tindented",
        "Ω café naïve", "\u00a0no-break", "\u200bzero width", "\U0010fffd"]


@pytest.mark.parametrize(("char", "words"), BAD, ids=[f"U+{ord(c):04X}" for c, _ in BAD])
def test_each_bad_class_is_refused_with_its_reason_and_place(char: str, words: str) -> None:
    with pytest.raises(Rejected) as refused:
        check({"summary": f"ok{char}ok"})
    assert refused.value.code == "invalid"
    assert refused.value.field == "summary"
    assert words in refused.value.message
    assert f"U+{ord(char):04X}" in refused.value.message
    assert "character 3" in refused.value.message


@pytest.mark.parametrize("value", GOOD)
def test_text_people_write_passes(value: str) -> None:
    assert problem(value) is None
    check({"summary": value, value: [value, {"note": value}]})


def test_other_json_values_pass() -> None:
    check({"n": 1, "x": 1.5, "yes": True, "none": None, "list": [], "map": {}})
    check(None)
    check(7)


def test_nested_paths_are_named() -> None:
    cases: list[tuple[Any, str]] = [
        ({"parameters": {"onsite.service_hours": ["08:00", "09\x0018:00"]}}, "parameters.onsite.service_hours[1]"),
        ({"sites": [{"name": "ok"}, {"name": "ok", "address": "\ud83d"}]}, "sites[1].address"),
        ({"skills": ["a", "b", "\x07"]}, "skills[2]"),
        ([{"a": "\x00"}], "[0].a"),
        ("\x00", "(body)"),
    ]
    for value, path in cases:
        with pytest.raises(Rejected) as refused:
            check(value)
        assert refused.value.field == path, value


def test_dict_keys_are_checked_and_named_safely() -> None:
    with pytest.raises(Rejected) as refused:
        check({"shift": {"mon\x00": "08:00"}})
    assert refused.value.field == "shift.mon\\u0000"  # the path itself is storable text
    assert "name" in refused.value.message
    assert problem(refused.value.field) is None


def test_the_first_bad_string_in_document_order_is_named() -> None:
    with pytest.raises(Rejected) as refused:
        check({"a": ["fine", "\x00"], "b\x00": "x", "c": "\x00"})
    assert refused.value.field == "a[1]"
    with pytest.raises(Rejected) as refused:
        check({"a": "fine", "b\x00": "x", "c": "\x00"})
    assert refused.value.field == "b\\u0000"


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    value: Any = "\x00"
    for _ in range(5000):
        value = {"a": [value]}
    with pytest.raises(Rejected) as refused:
        check(value)
    assert refused.value.field.startswith("a[0].a[0]")
