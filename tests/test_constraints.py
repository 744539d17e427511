"""constraints.txt pins what .ci/run and README's setup install, so a fresh machine gets what CI got."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_dependency_ci_installs_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = re.search(r'^EXTRAS="([^"]+)"$', (ROOT / ".ci" / "run").read_text(), re.M).group(1).split(",")
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _pins()
    missing = sorted({_name(r) for r in wanted} - set(pins))
    assert not missing, f"not in constraints.txt (run scripts/refresh_constraints.sh): {missing}"
    assert pins["torch"] == "2.13.0"  # the local CPU wheel; no +cpu label, so a CUDA build of it also fits


def test_ci_and_readme_install_with_the_constraints():
    ci = (ROOT / ".ci" / "run").read_text()
    installs = [line for line in ci.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
    assert installs and all("-c constraints.txt" in line for line in installs)
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Setup", 1)[1].split("```", 2)[1]
    assert all("-c constraints.txt" in line for line in setup.splitlines() if "pip install" in line)
