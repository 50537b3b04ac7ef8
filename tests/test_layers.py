"""The package layers, read from the source (every import, lazy ones inside functions included): SQL
stays behind storage/ (search/ and indexer/ import no sqlalchemy), the HTTP server imports nothing from
the CLI, and the CLI reaches the server only to start it (``medsearch serve``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, as dotted names (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _offenders(folder: str, forbidden: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    return [f"{path.relative_to(ROOT)}: {name}" for path in _modules(folder) for name in sorted(_imports(path))
            if (name == forbidden or name.startswith(forbidden + ".")) and str(path.relative_to(ROOT)) not in allowed]


def test_the_source_is_found() -> None:
    assert len(_modules("search")) > 20
    assert "sqlalchemy" in _imports(ROOT / "storage" / "queries.py")


def test_no_sql_above_storage() -> None:
    assert len(_modules("indexer")) > 20
    assert _offenders("search", "sqlalchemy") == []
    assert _offenders("indexer", "sqlalchemy") == []


def test_the_server_does_not_import_the_cli() -> None:
    cli_modules = {path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".") for path in _modules("search")
                   if "cli" in path.relative_to(ROOT / "search").parts[0]}
    assert cli_modules, "the CLI modules are found"
    found = [f"{path.relative_to(ROOT)}: {name}" for path in _modules("search/server")
             for name in _imports(path) if name in cli_modules or name.startswith("medsearch.cli")]
    assert found == []
