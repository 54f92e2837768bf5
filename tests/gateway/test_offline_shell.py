"""The phone page opens without a network (rule D5: a machine room has none): its
service worker keeps an offline shell, which must hold every file the page loads. A
module added to the page's imports but not to the shell would make the page fail to
start offline, silently, on the phones only (issue 16, item 10)."""

from __future__ import annotations

import re
from pathlib import Path

import weibao.gateway

STATIC = Path(weibao.gateway.__file__).parent / "static"
# `import ... from "./x.js"` and `import "./x.js"`, static or dynamic, across lines.
_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\./[^"']+)["']""")
_PAGE_FILE = re.compile(r"""(?:src|href)="(/static/[^"]+)\"""")


def _shell() -> set[str]:
    worker = (STATIC / "sw.js").read_text(encoding="utf-8")
    listing = re.search(r"const SHELL = \[(.*?)\];", worker, re.S)
    assert listing is not None, "sw.js lists its shell in `const SHELL = [...]`"
    return set(re.findall(r'"([^"]+)"', listing.group(1)))


def _modules_of(entry: str) -> set[str]:
    """Every module `entry` imports, directly or through another."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = (STATIC / name).read_text(encoding="utf-8")
        todo += [found.removeprefix("./") for found in _IMPORT.findall(source)]
    return seen


def test_the_offline_shell_holds_every_file_the_phone_page_loads() -> None:
    page = (STATIC / "mobile.html").read_text(encoding="utf-8")
    loaded = set(_PAGE_FILE.findall(page))
    assert "/static/mobile.js" in loaded
    modules = {f"/static/{name}" for name in _modules_of("mobile.js")}
    assert {"/static/api.js", "/static/i18n.js", "/static/views.js"} <= modules  # what it imports today
    missing = (loaded | modules) - _shell()
    assert missing == set(), f"add these to SHELL in sw.js: {sorted(missing)}"


def test_the_shell_lists_only_files_that_exist() -> None:
    for path in _shell():
        if path.startswith("/static/"):
            assert (STATIC / path.removeprefix("/static/")).is_file(), path
