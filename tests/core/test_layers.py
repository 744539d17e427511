"""The core's layers point one way (docs/architecture.md): a package imports only lower ones.

Every import in ``src/mqc/core`` is read with ``ast`` (module-level and lazy ones inside functions
alike), and so is every string naming a ``mqc.core`` module (lazy registrations), so a dependency
cannot hide behind ``importlib``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "mqc" / "core"

# Lowest first. A package may import the foundation modules, other root modules of core and any
# package listed before it; never one listed after it.
LAYERS = ("nn", "market", "data", "forecast", "policy", "gym", "backtest", "train", "lm", "sweep", "trade")
# Root modules everything may import: they import no package of core.
FOUNDATION = ("errors", "config", "atomic", "progress", "registry", "paths", "dates", "metrics", "profiles")
# The one name of a higher layer a lower one may hold, as a string: checkpoint kinds are loaded from
# any entry point (a backtest, later a gym env or the trading loop) without that caller importing
# the train layer first (docs/architecture.md, "Layers").
ALLOWED_UPWARD_STRINGS = {
    ("policy/strategy.py", "mqc.core.train.checkpoint_kinds"),
    # the candle LM (core/lm, above train) registers its checkpoint kinds and the mqc-lm forecaster
    # the same way: a name held as a string, imported only when that kind / model is asked for
    ("policy/strategy.py", "mqc.core.lm.strategy"),
    ("forecast/registry.py", "mqc.core.lm.forecaster"),
}
# ``core/config.py`` lists the light modules that define profile tables (``<package>.config``), so
# that a profile is checked against every table: names only, imported when a profile is validated.
CONFIG_TABLE_LIST = "config.py"

_MODULE_STRING = re.compile(r"^mqc\.core\.[a-z_.]+")


def _references(path: Path) -> list[tuple[str, str]]:
    """``(how, module)`` for each import of, or string naming, a ``mqc.core`` module in ``path``."""
    refs: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            refs += [("import", node.module)] + [("import", f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            refs += [("import", a.name) for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            refs.append(("string", _MODULE_STRING.match(node.value).group(0).rstrip(".")))
    return [(how, m) for how, m in refs if m.startswith("mqc.core.")]


def _part(module: str) -> str:
    """The package (``data``) or root module (``root:errors``) of ``mqc.core.<part>...``."""
    name = module.split(".")[2]
    return name if (CORE / name).is_dir() else f"root:{name}"


def _violations() -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE).as_posix()
        own = rel.split("/")[0] if "/" in rel else f"root:{rel[:-3]}"
        for how, module in _references(path):
            target = _part(module)
            if target == own or target == "root:__init__":
                continue
            if rel == CONFIG_TABLE_LIST and how == "string" and module.endswith(".config"):
                continue
            if own.startswith("root:") and own[5:] in FOUNDATION and not target.startswith("root:"):
                bad.append(f"{rel} ({how}) {module}: foundation modules import no package")
            elif own in rank and target in rank and rank[target] > rank[own]:
                if (rel, module) not in ALLOWED_UPWARD_STRINGS:
                    bad.append(f"{rel} ({how}) {module}: {own} is below {target}")
    return bad


def test_every_core_package_has_a_layer() -> None:
    packages = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"place {sorted(packages - set(LAYERS))} in LAYERS (and docs/architecture.md)"
    assert all((CORE / f"{m}.py").exists() for m in FOUNDATION)


def test_layers_point_down() -> None:
    assert _violations() == []


def test_the_check_sees_lazy_and_string_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        'def f():\n    from mqc.core.train.api import train_dm\n\nX = "mqc.core.forecast.kronos.features:make"\n'
    )
    assert _references(src) == [
        ("import", "mqc.core.train.api"),
        ("import", "mqc.core.train.api.train_dm"),
        ("string", "mqc.core.forecast.kronos.features"),
    ]
