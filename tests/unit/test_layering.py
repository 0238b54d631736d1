"""Import boundaries: coordinator and agent never import each other; shared imports neither;
the agent has one HTTP implementation (h11, not aiohttp) and no click; inside the
coordinator, api -> services -> db and never back."""

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    # aiohttp and click: the agent's extra installs neither (agent/http_client.py, agent/cli.py).
    "agent": {"coordinator", "aiohttp", "click"},
    "coordinator": {"agent"},
    "shared": {"agent", "coordinator"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_packages(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & FORBIDDEN[package])
        for path in files
        if _imported_packages(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from coordinator.db import models\nimport agent.cli\n")
    assert _imported_packages(bad) >= {"coordinator", "agent"}


# Domain services and the database layer: they own rules and persistence and never import the
# HTTP layer (coordinator.api, aiohttp.web). Route modules import them, never the other way.
SERVICES = (
    "coordinator/db",
    "coordinator/workspace",
    "coordinator/servers",
    "coordinator/tokens",
    "coordinator/lookup.py",
    "coordinator/paging.py",
    "coordinator/audit_trail.py",
    "coordinator/source_uploads.py",
    "coordinator/audit_scope.py",
    "coordinator/monitoring/scopes.py",
    "coordinator/audit.py",
    "coordinator/variables.py",
    "coordinator/resource_config.py",
    "coordinator/token_scope.py",
    "coordinator/deployments/planner.py",
    "coordinator/deployments/store.py",
    "coordinator/deployments/reads.py",
    "coordinator/deployments/creation.py",
    "coordinator/deployments/commands.py",
    "coordinator/monitoring/scope_targets.py",
    "coordinator/monitoring/policies.py",
    "coordinator/monitoring/retention.py",
    "coordinator/terminals/targets.py",
    "coordinator/volumes",
)
HTTP_LAYER = ("coordinator.api", "aiohttp.web")
# Only the application factory wires the route modules in.
API_IMPORTERS = {"coordinator/app.py"}
# Route modules whose ORM calls all moved into services: they must stay at zero.
ORM_FREE_ROUTES = (
    "audit_events.py",
    "bootstrap.py",
    "deploy_tokens.py",
    "deployment_commands.py",
    "deployment_plans.py",
    "deployment_recovery.py",
    "deployment_views.py",
    "deployments.py",
    "domain_bindings.py",
    "enrollment.py",
    "environments.py",
    "health_schemas.py",
    "projects.py",
    "resource_diagnostics.py",
    "resource_runtime.py",
    "resource_variables.py",
    "resource_views.py",
    "resources.py",
    "runtime_logs.py",
    "runtime_monitoring.py",
    "runtime_thresholds.py",
    "runtime_usage.py",
    "server_capacity.py",
    "servers.py",
    "source_archives.py",
    "terminal_sessions.py",
    "storage_volumes.py",
)


def _imported_modules(path: Path) -> set[str]:
    """Every dotted name imported anywhere in ``path`` (``from a import b`` gives ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _reaches(imported: set[str], layer: tuple[str, ...]) -> list[str]:
    return sorted(
        name for name in imported if any(name == m or name.startswith(f"{m}.") for m in layer)
    )


def _files(part: str) -> list[Path]:
    target = ROOT / part
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


@pytest.mark.parametrize("part", SERVICES)
def test_services_do_not_import_the_http_layer(part: str) -> None:
    files = _files(part)
    assert files, f"{part} is missing"
    assert all(f.is_file() for f in files), f"{part} is missing"
    offenders = {
        str(path.relative_to(ROOT)): _reaches(_imported_modules(path), HTTP_LAYER)
        for path in files
        if _reaches(_imported_modules(path), HTTP_LAYER)
    }
    assert offenders == {}


def test_only_the_app_factory_imports_route_modules() -> None:
    outside = [
        path
        for path in sorted((ROOT / "coordinator").rglob("*.py"))
        if "api" not in path.relative_to(ROOT / "coordinator").parts[:1]
    ]
    importers = {
        str(path.relative_to(ROOT))
        for path in outside
        if _reaches(_imported_modules(path), ("coordinator.api",))
    }
    assert importers <= API_IMPORTERS


def test_layer_checker_detects_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from coordinator.api.servers import server_item\nfrom aiohttp import web\n"
    )
    assert _reaches(_imported_modules(bad), HTTP_LAYER) == [
        "aiohttp.web",
        "coordinator.api.servers",
        "coordinator.api.servers.server_item",
    ]


def _orm_counter() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "orm_call_sites", ROOT / "scripts" / "orm_call_sites.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_orm_call_sites_in_the_http_layer(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints how many ORM call sites coordinator/api/ still has (re-measure with
    scripts/orm_call_sites.py); the route modules already moved onto services stay at zero."""
    counts: dict[str, int] = _orm_counter().count(ROOT / "coordinator" / "api")
    with capsys.disabled():
        print(f"\n{sum(counts.values())} ORM call sites in coordinator/api/")
    moved = {name: counts.get(f"coordinator/api/{name}", 0) for name in ORM_FREE_ROUTES}
    assert moved == dict.fromkeys(ORM_FREE_ROUTES, 0)


def test_orm_counter_finds_call_sites(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from coordinator.db import models\n"
        "from coordinator.workspace import projects\n"
        "async def f(call):\n"
        "    await projects.create('p')\n"
        "    async with in_transaction():\n"
        "        row = await models.Server.get(id=1)\n"
        "        await models.Server.filter(id=1).update(name='x')\n"
        "    call.headers.get('x')\n"
    )
    assert sorted(m for _, m in _orm_counter().call_sites(sample)) == [
        "filter",
        "get",
        "in_transaction",
        "update",
    ]
