"""The package's layers, read from the source: every import counts, lazy ones inside functions and
type-only ones under ``TYPE_CHECKING`` included (a module cannot be read, typed or moved without what it
imports for its types either).

The order, from the bottom up; a module imports only from its own layer or the ones below it:

1. ``medsearch.errors``: the error types of every layer.
2. ``medsearch.storage``: SQL (sqlalchemy stays here), the FAISS indexes, the store that holds them.
3. ``medsearch.indexer``: discover, read, preprocess, embed, write through the store.
4. ``medsearch.query``, ``medsearch.explain``: the query spec, ranking, filters and units; heat maps.
5. ``medsearch.language``: what a text means (Korean translated, negated findings apart).
6. ``medsearch.batching``, ``medsearch.encoder``: the model behind its lock, text micro-batching.
7. ``medsearch.context``: store + encoder + translator, what every service works on.
8. ``medsearch.labels``: zero-shot labels and their evaluation.
8b. ``medsearch.reports``: radiology reports: the labeller, import, de-identification, report search.
9. ``medsearch.learn``: probes, splits, calibration, leak audits.
10. ``medsearch.cohorts``: saved cohorts (their criteria, splits and exports).
11. ``medsearch.services``: querying, items, cohorts, learning, maintenance over a context.
12. ``medsearch.api``: ``Medsearch``, the Python API, composing the services.
13. ``medsearch``: the package root (the errors; ``Medsearch`` imported on first use).
14. ``medsearch.viewer``: the page viewer's pictures and slices.
15. ``medsearch.server``: the HTTP API.
16. ``medsearch.cli``: the CLI, which reaches the server only to start it (``medsearch serve``).

And: no import cycle between modules; the HTTP server imports nothing from the CLI; storage/ and indexer/
import their own modules at the top (lazy imports there are for heavy or optional libraries only).
``KNOWN_UPWARD`` and ``KNOWN_CYCLES`` list what remains to be removed, each entry until it is gone."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"search": "medsearch", "indexer": "medsearch.indexer", "storage": "medsearch.storage"}
"""Source folder -> the package it installs as."""
LAYERS: list[tuple[str, ...]] = [
    ("medsearch.errors",), ("medsearch.storage",), ("medsearch.indexer",), ("medsearch.query", "medsearch.explain"),
    ("medsearch.language",), ("medsearch.batching", "medsearch.encoder"), ("medsearch.context",),
    ("medsearch.labels",), ("medsearch.reports",), ("medsearch.learn",), ("medsearch.cohorts",),
    ("medsearch.services",), ("medsearch.api",),
    ("medsearch",), ("medsearch.viewer",), ("medsearch.server",), ("medsearch.cli",),
]
"""The layers from the bottom up (see the module docstring)."""

KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()
"""Imports that still go against the order (none)."""
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
"""Import cycles that remain (none)."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    how: str  # "top", "lazy" (inside a function) or "type" (under TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} ({self.how})"


def module_files(root: Path = ROOT, packages: dict[str, str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``packages`` under ``root``."""
    found: dict[str, Path] = {}
    for folder, package in packages.items():
        for path in (root / folder).rglob("*.py"):
            parts = path.relative_to(root / folder).with_suffix("").parts
            found[".".join((package, *parts[: -1 if parts[-1] == "__init__" else None]))] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` loads: itself, or the nearest enclosing module (a name defined in it)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    """The project modules an import statement in ``module`` loads: ``from a import b`` loads ``a.b`` when
    that is a module, else ``a`` (``b`` is defined there)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".")[: None if is_package else -1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    return {target for target in map(lambda name: _resolve(name, modules), names) if target and target != module}


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[Import]:
    """The project modules ``module`` imports, each with how (``Import.how``)."""
    found: set[Import] = set()

    def visit(node: ast.AST, how: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = how
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and how == "top":
                inner = "lazy"
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = "type"
            if isinstance(child, ast.Import | ast.ImportFrom):
                targets = _targets(child, module, path.name == "__init__.py", modules)
                found.update(Import(module, target, inner) for target in targets)
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), "top")
    return found


def import_graph(modules: dict[str, Path]) -> set[Import]:
    return {found for name, path in modules.items() for found in imports_of(name, path, modules)}


def cycles(imports: set[Import]) -> set[frozenset[str]]:
    """The import cycles: each set of two or more modules that reach one another (Tarjan's components)."""
    edges: dict[str, set[str]] = {}
    for found in imports:
        edges.setdefault(found.importer, set()).add(found.imported)
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: set[frozenset[str]] = set()

    def connect(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in order:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                components.add(frozenset(component))

    for node in sorted(edges):
        if node not in order:
            connect(node)
    return components


def layer_of(module: str, layers: list[tuple[str, ...]] = LAYERS) -> int:
    """The index of the layer that holds ``module`` (the longest prefix listed). Raises KeyError."""
    for size in range(module.count(".") + 1, 0, -1):
        prefix = ".".join(module.split(".")[:size])
        for number, layer in enumerate(layers):
            if prefix in layer:
                return number
    raise KeyError(module)


def upward(imports: set[Import], layers: list[tuple[str, ...]] = LAYERS) -> set[Import]:
    """The imports of a module from a higher layer than its own."""
    return {found for found in imports if layer_of(found.imported, layers) > layer_of(found.importer, layers)}


@pytest.fixture(scope="module")
def graph() -> set[Import]:
    return import_graph(module_files())


def test_the_source_is_found(graph: set[Import]) -> None:
    modules = module_files()
    assert len([m for m in modules if m.startswith("medsearch.indexer.")]) > 20
    assert Import("medsearch.storage.store", "medsearch.storage.vector_index", "top") in graph
    assert Import("medsearch.indexer.voi", "medsearch.errors", "top") in graph  # `from medsearch.errors import`
    assert {found.imported for found in graph} <= set(modules)  # the project's modules only (no torch)


def test_every_module_has_a_layer() -> None:
    assert [module for module in module_files() if not _has_layer(module)] == []


def _has_layer(module: str) -> bool:
    try:
        layer_of(module)
    except KeyError:
        return False
    return True


def test_no_import_goes_up_the_layers(graph: set[Import]) -> None:
    found = upward(graph)
    assert sorted(map(str, {f for f in found if (f.importer, f.imported) not in KNOWN_UPWARD})) == []
    assert {(f.importer, f.imported) for f in found if f.how == "type"} == KNOWN_UPWARD, "KNOWN_UPWARD is stale"


def test_no_import_cycles(graph: set[Import]) -> None:
    kept = {found for found in graph if (found.importer, found.imported) not in KNOWN_UPWARD}
    assert sorted(map(sorted, cycles(kept) - KNOWN_CYCLES)) == []
    assert cycles(kept) == KNOWN_CYCLES, "a known cycle is gone: remove it from KNOWN_CYCLES"


def test_storage_and_indexer_import_their_own_modules_at_the_top(graph: set[Import]) -> None:
    lazy = [str(found) for found in graph if found.how == "lazy"
            and found.importer.startswith(("medsearch.storage", "medsearch.indexer"))]
    assert lazy == []


def test_no_sql_above_storage() -> None:
    offenders = [f"{path.relative_to(ROOT)}: {node.lineno}" for folder in ("search", "indexer")
                 for path in sorted((ROOT / folder).rglob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text())) if _loads_sqlalchemy(node)]
    assert offenders == []


def _loads_sqlalchemy(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "sqlalchemy" for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy"


def test_the_server_does_not_import_the_cli(graph: set[Import]) -> None:
    assert [str(f) for f in graph if f.importer.startswith("medsearch.server") and
            layer_of(f.imported) == layer_of("medsearch.cli")] == []


def test_the_checks_find_lazy_and_type_only_cycles_and_upward_imports(tmp_path: Path) -> None:
    """The same functions, on a package written here: a cycle closed by a lazy import, one closed by a
    type-only import, and an import from a higher layer are all found."""
    package = tmp_path / "src"
    files = {
        "__init__.py": "",
        "low.py": "def f():\n    from pkg import high\n",
        "high.py": "from pkg.low import f\n",
        "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.other import g\n",
        "other.py": "from . import typed\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    graph = import_graph(module_files(tmp_path, {"src": "pkg"}))
    assert Import("pkg.low", "pkg.high", "lazy") in graph and Import("pkg.typed", "pkg.other", "type") in graph
    assert cycles(graph) == {frozenset({"pkg.low", "pkg.high"}), frozenset({"pkg.typed", "pkg.other"})}
    layers = [("pkg.low", "pkg.typed"), ("pkg.high", "pkg.other"), ("pkg",)]
    assert {str(f) for f in upward(graph, layers)} == {"pkg.low -> pkg.high (lazy)", "pkg.typed -> pkg.other (type)"}
