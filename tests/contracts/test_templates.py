"""Agreement templates as data: the five seeds load; broken files name file and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from weibao.contracts.adapters.templates import TemplateError, TemplateFile, load_template, load_templates
from weibao.shared.errors import Rejected

from .conftest import YIZHUO_PARAMETERS


def test_the_five_seed_agreements_ship_as_templates(templates: dict[str, TemplateFile]) -> None:
    assert set(templates) == {
        "yizhuo-crm-maintenance", "xxx-software-service", "chaoren-software-sale",
        "quansousuo-purchasing", "ziguang-three-guarantees",
    }


def test_seed_terms_carry_their_clauses(templates: dict[str, TemplateFile]) -> None:
    xxx = templates["xxx-software-service"].template.terms
    assert (xxx.onsite.parallel_run_days, xxx.onsite.cutover_days) == (2, 1)  # rule C14
    assert xxx.installation.free == 3 and xxx.training.free_seats == 3  # rules C10, C7
    quan = templates["quansousuo-purchasing"].template.terms
    assert (quan.onsite.respond_hours, quan.onsite.resolve_hours) == (24, 24)  # rule C15
    chaoren = templates["chaoren-software-sale"].template.terms
    assert chaoren.onsite.phone_support_24h  # rule C16
    assert chaoren.warranty is not None and chaoren.warranty.dongle_replacement_fee == Decimal("200")  # rule C18
    ziguang = templates["ziguang-three-guarantees"].template.terms
    assert ziguang.onsite.service_hours == ("09:00", "18:00")  # rule C20
    assert ziguang.warranty is not None and ziguang.warranty.three_guarantees  # rule C19


def test_signing_fills_the_blanks_of_the_paper_contract(templates: dict[str, TemplateFile]) -> None:
    terms = templates["yizhuo-crm-maintenance"].resolve(YIZHUO_PARAMETERS)
    assert terms.fee is not None and terms.fee.percent == Decimal("10")  # rule C2
    assert terms.onsite.local_hours == 8 and terms.onsite.out_of_town_days == 2  # rule C9
    assert terms.hardware is not None and terms.hardware.day_rate == Decimal("800")  # rule C4


def test_a_missing_parameter_is_refused_by_name(templates: dict[str, TemplateFile]) -> None:
    params = {k: v for k, v in YIZHUO_PARAMETERS.items() if k != "onsite.local_hours"}
    with pytest.raises(Rejected) as refused:
        templates["yizhuo-crm-maintenance"].resolve(params)
    assert (refused.value.code, refused.value.field) == ("missing", "parameters.onsite.local_hours")


def test_a_bad_or_unknown_parameter_is_refused_by_name(templates: dict[str, TemplateFile]) -> None:
    with pytest.raises(Rejected) as refused:
        templates["yizhuo-crm-maintenance"].resolve({**YIZHUO_PARAMETERS, "fee.percent": "ten"})
    assert refused.value.field == "parameters.fee.percent"
    with pytest.raises(Rejected) as unknown:
        templates["yizhuo-crm-maintenance"].resolve({**YIZHUO_PARAMETERS, "fee.colour": "red"})
    assert (unknown.value.code, unknown.value.field) == ("unknown", "parameters.fee.colour")


def test_an_sla_without_its_hours_is_refused(templates: dict[str, TemplateFile]) -> None:
    with pytest.raises(Rejected) as refused:
        templates["yizhuo-crm-maintenance"].resolve({**YIZHUO_PARAMETERS, "onsite.local_hours": 0})
    assert refused.value.field.startswith("parameters.onsite")


def test_a_sixth_template_needs_no_code(tmp_path: Path) -> None:
    (tmp_path / "city-clinic-his.toml").write_text(
        'id = "city-clinic-his"\nname = "诊所 HIS 维护"\nsources = ["vendor\'s own"]\n'
        'parameters = ["onsite.local_hours"]\n[terms]\nfree_months = 6\n'
        '[terms.onsite]\nkind = "local_or_out_of_town"\nout_of_town_days = 1\ncalendar = "working"\n'
        '[example]\n"onsite.local_hours" = 4\n',
        encoding="utf-8",
    )
    (loaded,) = load_templates(tmp_path).values()
    assert loaded.resolve({"onsite.local_hours": 6}).onsite.calendar == "working"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('id = "broken"\nname = "x"\nsources = []\n[terms.onsite]\nkind = "telepathy"\n[example]\n',
         "terms.onsite.kind", "Input should be"),
        ('id = "broken"\nname = "x"\nsources = []\ncolour = "red"\n[terms.onsite]\nkind = "by_arrangement"\n'
         '[example]\n', "colour", "Unexpected keyword"),
        ('id = "broken"\nname = "x"\nsources = []\nparameters = ["fee.percent"]\n[terms.onsite]\n'
         'kind = "by_arrangement"\n[example]\n', "example.fee.percent", "must fill"),
        ('id = "other"\nname = "x"\nsources = []\n[terms.onsite]\nkind = "by_arrangement"\n[example]\n',
         "id", "file name"),
        ("id = \n", "(file)", "not valid TOML"),
    ],
)
def test_a_broken_template_names_file_field_and_reason(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError) as error:
        load_template(path)
    assert error.value.file == "broken.toml"
    assert error.value.field == field
    assert reason in error.value.reason
