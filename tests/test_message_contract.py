"""The contract between services is checked by mypy (issue 14): a consumer gets a public
message decoded into its dataclass (weibao.shared.public.read) and reads attributes, so
a field renamed on the producer's side is a type error in CI, not a KeyError that parks
messages in production.

The test renames fields in a copy of the sources and runs mypy over the consumers there."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (public module, message, field, new name, a consumer that reads the field, rule)
RENAMES = [
    ("contracts.py", "CoverageGranted", "period_from", "starts_on",
     "services/dispatch/weibao/dispatch/adapters/coverage.py"),  # C1: dispatch's coverage book
    ("contracts.py", "SiteLocated", "customer_name", "client_name",
     "services/billing/weibao/billing/adapters/terms.py"),  # billing's customer names
    ("dispatch.py", "WorkLogged", "started", "began",
     "services/billing/weibao/billing/domain/pricing.py"),  # C4, B2: billing prices the hours
]


def _rename(source: str, message: str, field: str, new: str) -> str:
    """`field` renamed inside `class message:` only (other messages keep theirs)."""
    start = source.index(f"class {message}:")
    end = source.find("\n@dataclass", start)
    end = len(source) if end < 0 else end
    body, count = re.subn(rf"^(\s+){field}:", rf"\1{new}:", source[start:end], flags=re.M)
    assert count == 1, f"{message}.{field} not found once"
    return source[:start] + body + source[end:]


def test_a_renamed_field_of_a_public_message_fails_mypy_where_a_consumer_reads_it(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("static", "__pycache__", "*.pyc", "*.js", "*.css", "*.html", "demo_data")
    for part in ("shared", "services"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    public = tmp_path / "shared" / "weibao" / "shared" / "public"
    for module, message, field, new, _consumer in RENAMES:
        path = public / module
        path.write_text(_rename(path.read_text(encoding="utf-8"), message, field, new), encoding="utf-8")

    consumers = sorted({consumer for *_, consumer in RENAMES})
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / ".mypy_cache"), *consumers],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)

    assert run.returncode == 1, run.stdout + run.stderr
    for _module, message, field, _new, consumer in RENAMES:
        expected = f'"{message}" has no attribute "{field}"'
        assert any(line.startswith(consumer) and expected in line for line in run.stdout.splitlines()), (
            f"mypy did not catch {message}.{field} renamed, read in {consumer}:\n{run.stdout}")
