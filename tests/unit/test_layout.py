"""The house layout holds (issue 12): no import cycles, the composition root imported only by
what wires it, no private names across modules, no file over 600 lines, no function over 80
lines outside the declarative code listed here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("safety_hub", "connectors", "simulators", "dashboards")
COMPOSITION_ROOT = "safety_hub.runtime.hub"
# What may import the composition root: the code that wires a hub (CLI, API app, replay).
WIRING = ("safety_hub.cli", "safety_hub.api.app", "safety_hub.runtime")
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
# Declarative code, kept long on purpose: one statement per metric or per panel reads better
# as one list than cut into pieces.
LONG_BY_DESIGN = {
    "safety_hub/metrics.py:HubMetrics.__init__": "the metrics declarations",
    "dashboards/boards/alarm_performance.py:build": "a Grafana board's panels",
    "dashboards/boards/hazard_source.py:build": "a Grafana board's panels",
    "dashboards/boards/data_quality.py:build": "a Grafana board's panels",
    "dashboards/boards/overview.py:build": "a Grafana board's panels",
}


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int
    imports: set[str] = field(default_factory=set)


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Module]:
    out: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            out[_name(path)] = Module(_name(path), path, ast.parse(text), text.count("\n"))
    for module in out.values():
        for node in ast.walk(module.tree):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    module.imports.add(full if full in out else node.module)
            elif isinstance(node, ast.Import):
                module.imports.update(alias.name for alias in node.names)
        module.imports = {i for i in module.imports if i in out and i != module.name}
    return out


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    def walk(
        node: ast.AST, prefix: str
    ) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield prefix + child.name, child
                yield from walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")

    yield from walk(tree, "")


MODULES = _modules()


def test_there_are_no_import_cycles() -> None:
    """The import graph of the product code (function-level imports included) has no cycle."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(MODULES[name].imports):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name)
    assert cycles == []


def test_only_the_wiring_imports_the_composition_root() -> None:
    """The hub (composition root) is imported only by the CLI, the API app and runtime/."""
    assert COMPOSITION_ROOT in MODULES
    importers = sorted(m.name for m in MODULES.values() if COMPOSITION_ROOT in m.imports)
    assert [m for m in importers if not m.startswith(WIRING)] == []


def test_the_core_never_imports_connectors_or_simulators_outside_the_wiring() -> None:
    """Domain code (registry, ingest, rules, alarms, scenarios, yamlfile) stays free of
    connectors/ and simulators/."""
    domain = (
        "registry",
        "ingest",
        "rules",
        "alarms",
        "scenarios",
        "yamlfile",
        "people",
        "notify",
        "uplink",
    )
    bad = [
        f"{m.name} -> {dep}"
        for m in MODULES.values()
        if m.name.split(".")[:2][-1] in domain and m.name.startswith("safety_hub.")
        for dep in m.imports
        if dep.startswith(("connectors", "simulators"))
    ]
    assert bad == []


def test_data_flows_down_the_page() -> None:
    """The domain folders (and the leaves) never import what runs them: runtime/, api/, cli/."""
    upper = ("safety_hub.runtime", "safety_hub.api", "safety_hub.cli")
    domain = (
        "registry",
        "ingest",
        "rules",
        "alarms",
        "scenarios",
        "yamlfile",
        "people",
        "notify",
        "uplink",
    )
    leaves = ("errors", "clock", "ports", "settings", "logs", "statefile", "metrics")
    leaves += ("system_alarms",)
    lower = [
        m
        for m in MODULES.values()
        if m.name.startswith("safety_hub.") and m.name.split(".")[1] in domain + leaves
    ]
    assert len(lower) > 20  # the walk found the domain
    bad = [f"{m.name} -> {dep}" for m in lower for dep in m.imports if dep.startswith(upper)]
    assert bad == []


def test_no_private_name_is_used_across_modules() -> None:
    """No module imports another's _private name or reads a _private attribute of anything
    but itself (self/cls)."""
    found: list[str] = []
    for module in MODULES.values():
        where = module.path.relative_to(ROOT)
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in PACKAGES:
                    found += [
                        f"{where}:{node.lineno} imports {a.name}"
                        for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                    ]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                if node.attr.startswith("__") or node.attr == "_replace":  # namedtuple API
                    continue
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                found.append(f"{where}:{node.lineno} uses .{node.attr}")
    assert found == []


def test_no_file_is_over_600_lines() -> None:
    """Every product module fits in 600 lines."""
    big = {str(m.path.relative_to(ROOT)): m.lines for m in MODULES.values()}
    assert {path: n for path, n in big.items() if n > MAX_FILE_LINES} == {}


def test_no_function_is_over_80_lines_but_the_declarative_ones() -> None:
    """Every function fits in 80 lines, except the declarative ones named in LONG_BY_DESIGN."""
    long: dict[str, int] = {}
    for module in MODULES.values():
        for qualname, node in _functions(module.tree):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            key = f"{module.path.relative_to(ROOT)}:{qualname}"
            if length > MAX_FUNCTION_LINES and key not in LONG_BY_DESIGN:
                long[key] = length
    assert long == {}
    stale = [key for key in LONG_BY_DESIGN if not _exists(key)]
    assert stale == [], "LONG_BY_DESIGN names functions that no longer exist"


def _exists(key: str) -> bool:
    path, qualname = key.split(":")
    module = MODULES.get(_name(ROOT / path))
    return module is not None and any(q == qualname for q, _ in _functions(module.tree))
