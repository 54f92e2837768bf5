"""Exports are safe whatever the filter: the download's name is RFC 6266 (an ASCII
fallback and the exact UTF-8 name, nothing of the user's unescaped), and an XLSX export
leaves no file behind in the temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.gateway.conftest import Gateway
from weibao.gateway.api.exports import attachment

NASTY = ['客户-合肥', 'a";filename="evil.exe', "x\r\nSet-Cookie: a=b", "c;d=e", "..%2F..%2Fetc", "'quote'"]


@pytest.mark.parametrize("value", NASTY)
def test_the_filename_never_carries_the_filter_unescaped(value: str) -> None:
    header = attachment("invoice-lines", [value], "csv")
    fallback, encoded = header.removeprefix('attachment; filename="').split('"; filename*=UTF-8\'\'')
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert all(c.isalnum() or c in "._-" for c in fallback)  # no quote, semicolon, slash or space
    assert all(c.isalnum() or c in "._-%" for c in encoded)
    assert unquote(encoded) == f"invoice-lines-{value}.csv"  # the exact name, for browsers that read filename*


def _xlsx_in_temp() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("*.xlsx")}


@pytest.mark.parametrize("format", ["csv", "json", "xlsx"])
async def test_a_non_latin_filter_downloads_and_leaves_no_temporary_file(gateway: Gateway, format: str) -> None:
    before = _xlsx_in_temp()
    async with await gateway.as_user("qian") as qian:
        for customer in ("客户一号", 'x"; filename=evil.sh'):
            response = await qian.get("/api/v1/exports/invoice-lines",
                                      params={"format": format, "customer_id": customer})
            assert response.status_code == 200, response.text
            disposition = response.headers["content-disposition"]
            assert disposition.isascii() and "evil.sh\"" not in disposition
            assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"invoice-lines-{customer}.{format}"
    assert _xlsx_in_temp() <= before
