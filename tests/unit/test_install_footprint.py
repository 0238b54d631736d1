"""Lean installs: each role's entry point imports only what its extra of pyproject.toml brings.

The imports run in a fresh interpreter (this test process has loaded everything), and what
they load is checked two ways: no module of another role's stack appears, and every
third-party module comes from a distribution the role's extra installs (directly or as a
dependency), so a new import cannot slip in without its requirement.
"""

import json
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]

# What an agent host or an operator's laptop must not need: the coordinator's database stack,
# the CLI's terminal rendering, and the coordinator's own code.
AGENT_FORBIDDEN = ("tortoise", "aiosqlite", "asyncpg", "pypika_tortoise", "rich", "coordinator")
CLI_FORBIDDEN = ("tortoise", "aiosqlite", "asyncpg", "pypika_tortoise", "agent", "docker")
CLI_FORBIDDEN_OWN = ("coordinator.db", "coordinator.api", "coordinator.hub", "coordinator.app")


def _loaded_by(*modules: str, lean: bool = False) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        # What the interpreter loaded at start (site hooks, .pth finders) is not the role's.
        "before = set(sys.modules)\n"
        # The agent's entry points select the lean wire layer first (agent/__main__.py).
        + ("from shared import wire_mode\nwire_mode.use_lean()\n" if lean else "")
        + f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def _requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(r) for r in listed]


@cache
def _dependencies_of(name: str) -> frozenset[str]:
    try:
        found = requires(name) or []
    except PackageNotFoundError:
        return frozenset()
    names = set()
    for line in found:
        req = Requirement(line)
        # Only unconditional dependencies (an extra's or another platform's are not installed).
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.add(canonicalize_name(req.name))
    return frozenset(names)


def _closure(*extras: str) -> set[str]:
    todo: list[str] = [canonicalize_name(r.name) for r in _requirements(*extras)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_dependencies_of(name))
    return seen


def _third_party_distributions(loaded: list[str]) -> dict[str, set[str]]:
    owners = packages_distributions()
    found: dict[str, set[str]] = {}
    for top in {name.split(".")[0] for name in loaded}:
        if top in sys.stdlib_module_names or top in ("agent", "coordinator", "shared"):
            continue
        for dist in owners.get(top, []):
            found.setdefault(canonicalize_name(dist), set()).add(top)
    return found


def _forbidden(loaded: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_the_agent_imports_nothing_of_the_coordinator_or_the_cli() -> None:
    loaded = _loaded_by(
        "agent.cli",
        "agent.daemon",
        "agent.logstream",
        "agent.monitoring",
        "agent.terminal",
        lean=True,
    )
    assert "agent.daemon" in loaded
    assert _forbidden(loaded, AGENT_FORBIDDEN) == []


def test_the_agent_needs_only_its_extra() -> None:
    loaded = _loaded_by("agent.cli", "agent.daemon", lean=True)
    allowed = _closure("agent")
    outside = {d: m for d, m in _third_party_distributions(loaded).items() if d not in allowed}
    assert outside == {}, f"the agent imports packages berth[agent] does not install: {outside}"


def test_the_cli_imports_no_database_stack_and_no_server_code() -> None:
    loaded = _loaded_by("coordinator.client.cli")
    assert "coordinator.client.cli" in loaded
    assert _forbidden(loaded, CLI_FORBIDDEN) == []
    assert _forbidden(loaded, CLI_FORBIDDEN_OWN) == []


def test_the_cli_needs_only_its_extra() -> None:
    loaded = _loaded_by("coordinator.client.cli")
    allowed = _closure("cli")
    outside = {d: m for d, m in _third_party_distributions(loaded).items() if d not in allowed}
    assert outside == {}, f"the CLI imports packages berth[cli] does not install: {outside}"


def test_the_coordinator_needs_only_its_extra() -> None:
    loaded = _loaded_by("coordinator.cli", "coordinator.app")
    allowed = _closure("coordinator")
    outside = {d: m for d, m in _third_party_distributions(loaded).items() if d not in allowed}
    assert outside == {}, f"the coordinator imports packages it does not install: {outside}"
