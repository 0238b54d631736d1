"""Count ORM call sites in the HTTP layer (coordinator/api/): each should move into a service.

A call site is a call of a query/persistence method (``filter``, ``get``, ``create``, ``all``,
``save``, ``delete``, ``exclude``, ``get_or_none``, ``count``, ``update``, ...) on a model or a
query built from one, or a call of ``in_transaction``. Without types the receiver is guessed:
``get``/``update``/``count``/``all``/``delete`` (common on dicts, lists and routers) count only
on a chain that starts at ``models.X`` or a ``*_models.X``; the rest count on any receiver
except a first-party module (a service: ``projects.create()``).

Usage: ``python scripts/orm_call_sites.py [--each] [DIR]`` (default ``coordinator/api``).
"""

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
# Names that are almost only ever ORM calls in this code base.
DISTINCT: Final = frozenset(
    {"filter", "exclude", "get_or_none", "create", "save", "bulk_create", "select_for_update"}
)
# Names common on other objects too: counted only on a chain rooted at a model.
AMBIGUOUS: Final = frozenset({"get", "update", "count", "all", "delete", "first"})
TRANSACTIONS: Final = frozenset({"in_transaction", "atomic"})


def _rooted_at_model(node: ast.expr) -> bool:
    """Whether an attribute/call chain starts at ``models.X`` (or ``monitoring_models.X`` ...)."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            inner = node.value
            if isinstance(inner, ast.Name) and inner.id.endswith("models"):
                return True
            node = inner
        else:
            return False


def _service_names(tree: ast.Module) -> set[str]:
    """Names bound to first-party modules other than the models (``projects.create()`` is a
    service call, not an ORM call)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if module.startswith("coordinator") and not module.startswith("coordinator.db"):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def call_sites(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, method)`` for every ORM call site in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    services = _service_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in TRANSACTIONS:
            yield node.lineno, func.id
        elif isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id in services:
                continue
            always = func.attr in TRANSACTIONS or func.attr in DISTINCT
            if always or (func.attr in AMBIGUOUS and _rooted_at_model(func.value)):
                yield node.lineno, func.attr


def count(directory: Path) -> dict[str, int]:
    """Call sites per module under ``directory`` (modules without any are left out)."""
    found: dict[str, int] = {}
    for path in sorted(directory.rglob("*.py")):
        sites = sum(1 for _ in call_sites(path))
        if sites:
            found[str(path.relative_to(ROOT))] = sites
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default="coordinator/api")
    parser.add_argument("--each", action="store_true", help="print the count per module")
    args = parser.parse_args()
    found = count(ROOT / args.directory)
    if args.each:
        for module, sites in found.items():
            print(f"{sites:4d}  {module}")
    print(f"{sum(found.values())} ORM call sites in {args.directory}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
