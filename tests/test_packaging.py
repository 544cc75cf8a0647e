"""The distribution as a user gets it: the wheel and sdist built from this repository.

Built once per session from a copy of the working tree (so nothing is written into the repository)
with the pinned setuptools of the test environment, then read back as an installer and PyPI would.
"""

from __future__ import annotations

import email.parser
import email.policy
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest
import trove_classifiers

import p2p_telemetry

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel, built the way `python -m build` does (the wheel from the unpacked sdist)."""
    base = tmp_path_factory.mktemp("dist")
    tree, out = base / "tree", base / "out"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCES)
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> zipfile.ZipFile:
    (path,) = dist.glob("*.whl")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def metadata(wheel: zipfile.ZipFile) -> Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(wheel.read(name))


def dist_info(wheel: zipfile.ZipFile) -> str:
    return f"p2p_telemetry-{p2p_telemetry.__version__}.dist-info"


def test_twine_check_passes_on_wheel_and_sdist(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    assert any(f.endswith(".whl") for f in files) and any(f.endswith(".tar.gz") for f in files), files
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == len(files), checked.stdout


def test_wheel_carries_py_typed(wheel: zipfile.ZipFile) -> None:
    assert "p2p_telemetry/py.typed" in wheel.namelist()


def test_wheel_and_sdist_carry_the_apache_license(wheel: zipfile.ZipFile, dist: Path,
                                                  metadata: Message) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in license_text
    assert wheel.read(f"{dist_info(wheel)}/licenses/LICENSE").decode() == license_text
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        assert f"p2p_telemetry-{p2p_telemetry.__version__}/LICENSE" in archive.getnames()
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_classifiers_are_valid_and_say_versions_typing_and_topics(metadata: Message) -> None:
    classifiers = metadata.get_all("Classifier") or []
    unknown = [c for c in classifiers if c not in trove_classifiers.classifiers]
    assert not unknown, f"PyPI would refuse these classifiers: {unknown}"
    assert metadata["Requires-Python"] == ">=3.10"
    versions = {c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")}
    assert {"3.10", "3.11", "3.12", "3.13"} <= versions
    for wanted in ("Typing :: Typed", "Programming Language :: Python :: 3 :: Only",
                   "Topic :: System :: Monitoring", "Topic :: System :: Networking :: Monitoring",
                   "Framework :: OpenTelemetry :: Instrumentations", "Framework :: AsyncIO", "Framework :: Pytest",
                   "Development Status :: 4 - Beta"):
        assert wanted in classifiers, wanted
    # The license is the SPDX License-Expression (PEP 639); setuptools refuses a License classifier beside it.
    assert not [c for c in classifiers if c.startswith("License ::")]


def test_project_urls(metadata: Message) -> None:
    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls), urls
    assert all(url.startswith("https://") for url in urls.values()), urls
    assert urls["Documentation"].endswith("/docs/reference/README.md"), urls


def test_wheel_registers_the_command_the_instrumentor_and_the_pytest_plugin(wheel: zipfile.ZipFile) -> None:
    entry_points = wheel.read(f"{dist_info(wheel)}/entry_points.txt").decode()
    assert "[pytest11]\np2p_telemetry = p2p_telemetry.pytest_plugin" in entry_points
    assert "[console_scripts]\np2p-telemetry = p2p_telemetry.cli:main" in entry_points
    assert "p2p_telemetry_libp2p = p2p_telemetry.integrations.instrumentor:Libp2pInstrumentor" in entry_points


def test_wheel_holds_the_package_and_nothing_of_the_repository(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert top == {"p2p_telemetry", dist_info(wheel)}, top
    assert "p2p_telemetry/testing.py" in wheel.namelist()
