"""The reference under docs/ is in step with the code, covers it, and sends readers nowhere outside the repository."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from p2p_telemetry.catalogue import CATALOGUE, Kind

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


def test_every_attribute_key_of_the_catalogue_is_explained(generator: ModuleType) -> None:
    missing = generator.undocumented_attributes()
    assert not missing, (f"attribute keys with no explanation of their values: {missing}; add them to ATTRIBUTES "
                         f"in scripts/gen_docs.py, then run `{generator.COMMAND}`")


@pytest.mark.parametrize("name", ["metrics.md", "api.md"])
def test_generated_reference_is_in_step_with_the_code(generator: ModuleType, name: str) -> None:
    path = REFERENCE / name
    expected = generator.documents()[path]
    assert path.exists() and path.read_text() == expected, (
        f"docs/reference/{name} is out of date with the code: run `{generator.COMMAND}` and commit the result")


def section(text: str, heading: str) -> str:
    """From ``heading`` to the next heading of its level or above."""
    start = text.index(f"\n{heading}\n") + 1
    level = len(heading) - len(heading.lstrip("#"))
    following = re.search(rf"\n#{{1,{level}}} ", text[start:])
    return text[start:start + following.start()] if following else text[start:]


def test_metric_reference_gives_every_metric_of_the_catalogue_in_full() -> None:
    text = (REFERENCE / "metrics.md").read_text()
    assert CATALOGUE, "the catalogue is empty"
    for spec in CATALOGUE:
        body = section(text, f"### {spec.name}")
        assert spec.description in body, spec.name
        assert f"Unit: `{spec.unit}`" in body, spec.name
        assert f"`{spec.prometheus}" in body, spec.name
        for key in spec.attributes:
            assert f"`{key}`: " in body, (spec.name, key)
        if spec.kind is Kind.HISTOGRAM:
            assert f"`{spec.prometheus}_bucket`" in body and "Bucket bounds" in body, spec.name
        assert f"| [`{spec.name}`](#" in text, f"{spec.name} missing from the summary table"
    assert "(not documented yet)" not in text


def test_bounded_values_are_listed_from_the_catalogue() -> None:
    from p2p_telemetry import catalogue as c

    text = (REFERENCE / "metrics.md").read_text()
    for key, values in {"network.transport": c.TRANSPORTS, "error.type": c.ERROR_TYPES,
                        "p2p.peer.health": c.HEALTH_STATES, "reason": c.REJECT_REASONS,
                        "p2p.connection.direction": c.CONNECTION_DIRECTIONS}.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{key}` |"))
        assert all(f"`{value}`" in row for value in values), (key, row)


def test_api_reference_gives_every_public_name_with_its_signature(generator: ModuleType) -> None:
    text = (REFERENCE / "api.md").read_text()
    for module_name in generator.MODULES:
        module = importlib.import_module(module_name)
        body = section(text, f"## {module_name}")
        for name in module.__all__:
            assert f"\n### {name}\n" in body, f"{module_name}.{name} is not in docs/reference/api.md"
    assert "def configure(" in text and "class MetricsCollector(" in text
    assert "- `network.bytes_sent(n: int" in text  # the fast event API, reached through the collector
    assert "async def open_connection(" in text


def test_check_mode_reports_a_stale_file(generator: ModuleType, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "REFERENCE", tmp_path)
    monkeypatch.setattr(generator, "ROOT", tmp_path.parent)
    monkeypatch.setattr(generator, "documents", lambda: {tmp_path / "metrics.md": "new\n"})
    (tmp_path / "metrics.md").write_text("old\n")
    assert generator.main(["--check"]) == 1
    assert (tmp_path / "metrics.md").read_text() == "old\n"
    assert generator.main([]) == 0 and generator.main(["--check"]) == 0
    assert (tmp_path / "metrics.md").read_text() == "new\n"


def test_the_command_runs_from_the_repository() -> None:
    result = subprocess.run([sys.executable, "scripts/gen_docs.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_readme_and_docs_point_nowhere_outside_the_repository() -> None:
    for path in documents():
        text = path.read_text()
        assert not re.search(r"shared/", text), f"{path.relative_to(ROOT)} points to shared/ (not in the repository)"
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)} links to missing {target}"
