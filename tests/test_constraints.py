"""constraints.txt pins what .ci/run and README's setup install, so a fresh machine gets what CI got;
constraints-offline.txt pins .ci/run's second venv (the ``offline`` extra: d3rlpy pins gymnasium 1.0.0)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(file: str = "constraints.txt") -> dict[str, str]:
    pins = {}
    for line in (ROOT / file).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{file}: {line!r} is not an exact pin (name==version)"
        pins[name.lower().replace("_", "-")] = version
    return pins


@pytest.mark.parametrize(
    ("variable", "file"), [("EXTRAS", "constraints.txt"), ("OFFLINE_EXTRAS", "constraints-offline.txt")]
)
def test_every_dependency_ci_installs_is_pinned(variable, file):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ci = (ROOT / ".ci" / "run").read_text()
    extras = re.search(rf'^{variable}="([^"]+)"$', ci, re.M).group(1).split(",")
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _pins(file)
    missing = sorted({_name(r) for r in wanted} - set(pins))
    assert not missing, f"not in {file} (run scripts/refresh_constraints.sh): {missing}"
    assert pins["torch"] == "2.13.0"  # the local CPU wheel; no +cpu label, so a CUDA build of it also fits


def test_the_offline_venv_is_the_one_that_needs_it():
    """d3rlpy pins gymnasium 1.0.0: it is pinned in its own file, never in the main environment's."""
    main, offline = _pins(), _pins("constraints-offline.txt")
    assert "d3rlpy" in offline and "d3rlpy" not in main
    assert offline["gymnasium"] == "1.0.0" != main["gymnasium"]
    # the core's own dependencies have the same versions in both, so the export is tested on the core's stack
    core = [_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    differ = {n: (main[n], offline[n]) for n in core if main[n] != offline[n]}
    assert not differ, f"refresh both files together (scripts/refresh_constraints.sh): {differ}"


def test_ci_and_readme_install_with_the_constraints():
    ci = (ROOT / ".ci" / "run").read_text()
    installs = [line for line in ci.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
    assert installs and all(re.search(r"-c constraints(-offline)?\.txt ", line) for line in installs)
    assert any("constraints-offline.txt" in line and "OFFLINE_EXTRAS" in line for line in installs)
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Setup", 1)[1].split("```", 2)[1]
    assert all("-c constraints.txt" in line for line in setup.splitlines() if "pip install" in line)
