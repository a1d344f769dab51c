"""The layer rules of design.md, checked by reading every module's imports.

An import inside ``if TYPE_CHECKING:`` counts too: a rule is about what a layer
knows, not only what it loads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "corral"
FEATURES = ("health", "monitor", "jobs", "profile", "deploy")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every corral module PATH imports (``from corral.x import y`` counts as x and x.y)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "corral" or name.startswith("corral.")}


def _modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _known(name: str) -> bool:
    """An import names a module (not a function inside one): only modules count for the rules."""
    return name in MODULES or any(m.startswith(name + ".") for m in MODULES)


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(rule: str) -> list[str]:
    out = []
    for module, imported in MODULES.items():
        layer = _layer(module)
        for name in sorted(n for n in imported if _known(n) and n != "corral"):
            target = _layer(name)
            if target == layer:
                continue
            if rule == "pure" and layer in ("app", "lifecycle"):
                allowed = ("corral.events", "corral.clock", "corral.exceptions", "corral.structs") if layer == "lifecycle" else ()
                if not _under(name, *allowed):
                    out.append(f"{module} imports {name}")
            if rule == "edges" and layer in ("process", "logs"):
                if _under(name, "corral.daemon", "corral.control", *(f"corral.{f}" for f in FEATURES)):
                    out.append(f"{module} imports {name}")
            if rule == "features" and layer in FEATURES:
                allowed = ("corral.daemon.core", "corral.lifecycle", "corral.events", "corral.feature_events", "corral.clock",
                           "corral.process.procfs", "corral.config", "corral.units", "corral.app",
                           "corral.exceptions", "corral.structs", *(f"corral.{f}" for f in FEATURES))
                if not _under(name, *allowed):
                    out.append(f"{module} imports {name}")
            if rule == "clients" and layer in ("cli", "web", "export"):
                if _under(name, "corral.daemon", "corral.process"):
                    out.append(f"{module} imports {name}")
    return out


@pytest.mark.parametrize("rule", ["pure", "edges", "features", "clients"])
def test_layer_rule_holds(rule: str) -> None:
    assert violations(rule) == []


def test_the_checker_sees_imports() -> None:
    """The rules above would pass vacuously if the import reader found nothing."""
    assert "corral.lifecycle.policy" in MODULES["corral.lifecycle.instance"] or any(
        n.startswith("corral.lifecycle") for n in MODULES["corral.lifecycle.instance"])
    assert any(n.startswith("corral.process") for n in MODULES["corral.daemon.supervisor"])


def test_exception_roots_are_a_leaf() -> None:
    """Every layer may import corral.exceptions (lifecycle/ too), so it imports nothing of corral."""
    assert MODULES["corral.exceptions"] == set()
