"""Each service's README lists its modules (issue 14: a maintainer reads the layout there,
so it must be the code's): every module file under `services/<svc>/weibao/<svc>/` is
named in the README by its path in the package (`domain/ticket.py`), and every module a
README names exists. A path from the repository's root (`shared/...`, `tests/...`) must
exist there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(path.name for path in (ROOT / "services").iterdir() if (path / "README.md").is_file())
# Inline code that names a Python file: `domain/ticket.py`, `shared/weibao/shared/public/dispatch.py`.
NAMED = re.compile(r"`([A-Za-z0-9_./-]+\.py)`")
FROM_ROOT = ("shared/", "services/", "tests/", "bench/", "deploy/")


def package(service: str) -> Path:
    return ROOT / "services" / service / "weibao" / service


def readme(service: str) -> str:
    return (ROOT / "services" / service / "README.md").read_text(encoding="utf-8")


def modules(service: str) -> list[str]:
    # A package's __init__.py is the folder itself, named with it; __main__.py is named by
    # the command that runs it (`python -m weibao.<service>`), checked below.
    return sorted(path.relative_to(package(service)).as_posix() for path in package(service).rglob("*.py")
                  if path.name not in ("__init__.py", "__main__.py") and "__pycache__" not in path.parts)


def test_there_are_services_to_check() -> None:
    assert {"contracts", "dispatch", "billing", "gateway"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_every_module_is_named_in_its_services_readme(service: str) -> None:
    named = set(NAMED.findall(readme(service)))
    missing = [module for module in modules(service) if module not in named]
    assert not missing, f"services/{service}/README.md does not name {missing}"
    if (package(service) / "__main__.py").is_file():
        assert f"python -m weibao.{service}" in readme(service)


@pytest.mark.parametrize("service", SERVICES)
def test_every_module_a_readme_names_exists(service: str) -> None:
    absent = []
    for name in NAMED.findall(readme(service)):
        where = ROOT / name if name.startswith(FROM_ROOT) else package(service) / name
        if not where.is_file():
            absent.append(name)
    assert not absent, f"services/{service}/README.md names modules that do not exist: {absent}"


def test_the_check_sees_a_missing_and_an_invented_module() -> None:
    # The two rules above, on a README that drifted both ways.
    text = "- `domain/ticket.py`: the request; `application/paging.py`: invented"
    named = set(NAMED.findall(text))
    assert "domain/ticket.py" in named and "domain/sla.py" not in named
    assert not (package("dispatch") / "application/paging.py").is_file()
