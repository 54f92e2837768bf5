"""Issue 14, one shape for each thing: the pages' selects offer the shared schemas' own
lists (`GET /api/v1/vocabulary`, read from the Literals the API validates with), every
value has a label in Chinese and in English (i18n.js), and no page keeps a list of its
own that could drift from what the API accepts (it had: the phone offered no `travel`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from weibao.gateway.api import vocabulary
from weibao.shared.commands.dispatch import DeskWork, Expense, NewTicket, Reclassification, Response, Work
from weibao.shared.public import billing as public_billing
from weibao.shared.public import dispatch as public_dispatch

STATIC = Path(vocabulary.__file__).resolve().parents[1] / "static"
LISTS = vocabulary.VOCABULARY
PAGES = ("console.js", "mobile.js", "console.html", "audit.js", "audit.html", "api.js", "views.js", "map.js")


def labels(language: str) -> dict[str, str]:
    """The keys of one language in i18n.js: its `const zh = {...}` and every
    `Object.assign(zh, {...})` after it, each block closing on a line of its own."""
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    found: dict[str, str] = {}
    opening = re.compile(rf"^(?:const {language} = \{{|Object\.assign\({language}, \{{)$", re.M)
    for start in opening.finditer(source):
        block = source[start.end():source.index("\n}", start.end())]
        found.update(re.findall(r'^\s+"([^"]+)":\s*"((?:[^"\\]|\\.)*)",?$', block, re.M))
    return found


def test_the_parser_reads_both_dictionaries() -> None:
    zh, en = labels("zh"), labels("en")
    assert zh["channel.phone"] == "电话" and en["channel.phone"] == "phone"
    assert zh["skill.hardware"] == "硬件"  # a key from an Object.assign block
    assert len(zh) > 300 and len(en) > 300


def strings(annotation: object) -> set[str]:
    """The string values a Literal (or an optional one) admits."""
    return {value for arg in get_args(annotation) for value in ({arg} if isinstance(arg, str) else strings(arg))}


def test_the_vocabulary_is_the_shared_literals() -> None:
    # The lists the API validates with, field by field: what a select offers is accepted.
    fields = {
        "channel": NewTicket.model_fields["channel"], "cause": NewTicket.model_fields["cause"],
        "priority": NewTicket.model_fields["priority"], "phase": Reclassification.model_fields["phase"],
        "response": Response.model_fields["kind"], "desk_channel": DeskWork.model_fields["channel"],
        "work": Work.model_fields["kind"], "expense": Expense.model_fields["kind"],
    }
    for name, field in fields.items():
        assert set(LISTS[name]) == strings(field.annotation), name
    assert LISTS["invoice_status"] == get_args(public_billing.InvoiceStatus)
    assert "travel" in LISTS["expense"]  # the drift the audit found: the phone could not record it
    assert LISTS["channel"] == get_args(public_dispatch.Channel)


async def test_the_route_answers_every_list() -> None:
    answer = await vocabulary.vocabulary()
    assert answer == {name: list(values) for name, values in LISTS.items()}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_value_of_every_list_has_a_label(language: str) -> None:
    known = labels(language)
    missing = [f"{name}.{value}" for name, values in LISTS.items() for value in values
               if not known.get(f"{name}.{value}")]
    assert not missing, f"i18n.js ({language}) has no label for {missing}"


def test_chinese_labels_are_chinese() -> None:
    # A Chinese screen shows no English word for a value (QQ is its name in Chinese too).
    zh = labels("zh")
    english = [f"{name}.{value}" for name, values in LISTS.items() for value in values
               if re.fullmatch(r"[A-Za-z _-]+", zh[f"{name}.{value}"]) and zh[f"{name}.{value}"] != "QQ"]
    assert not english, english


def literal_lists(source: str) -> list[list[str]]:
    """Every array literal of two or more strings in a script."""
    return [re.findall(r'"([^"]*)"', match) for match in
            re.findall(r'\[\s*"[^"\n]*"(?:\s*,\s*"[^"\n]*")+\s*,?\s*\]', source)]


@pytest.mark.parametrize("page", PAGES)
def test_no_page_keeps_its_own_copy_of_a_list(page: str) -> None:
    source = (STATIC / page).read_text(encoding="utf-8")
    for values in literal_lists(source):
        for name, words in LISTS.items():
            assert not set(values) <= set(words), f"{page} lists {values}: use the vocabulary's {name!r}"
    # A select's choices written into the page (a datalist only suggests: skills are free text).
    options = {value for select in re.findall(r"<select\b.*?</select>", source, re.S)
               for value in re.findall(r'<option value="([^"]+)"', select)}
    for name, words in LISTS.items():
        assert not options & set(words), f"{page} offers {sorted(options & set(words))} of {name!r} by hand"


def test_the_check_sees_a_hard_coded_list() -> None:
    assert literal_lists('const K = ["transport", "lodging",\n  "meals"];') == [["transport", "lodging", "meals"]]


def test_the_phone_keeps_the_vocabulary_in_its_offline_shell() -> None:
    worker = (STATIC / "sw.js").read_text(encoding="utf-8")
    assert '"/api/v1/vocabulary"' in worker
