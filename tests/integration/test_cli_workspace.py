"""``berth projects|envs|resources|vars|secrets`` end to end, and folder packing."""

import asyncio
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from coordinator.archives import inspect_archive
from coordinator.client.cli import main
from coordinator.client.packing import PackingError, excluded, load_rules, pack_folder
from tests.harness import Coordinator

SECRET = "s3cr3t-Value-That-Must-Not-Leak"
GENERATED = ("generatedAt",)


@dataclass(frozen=True)
class Cli:
    """Runs ``berth`` in a worker thread (it runs its own event loop) against ``coordinator``."""

    coordinator: Coordinator
    token: str
    config_home: Path

    async def __call__(self, *args: str, input: str | None = None) -> Result:
        """Invoke ``berth ARGS`` with URL and token from the environment."""
        env = {
            "XDG_CONFIG_HOME": str(self.config_home),
            "BERTH_URL": self.coordinator.url,
            "BERTH_TOKEN": self.token,
            "COLUMNS": "200",
        }
        return await asyncio.to_thread(
            CliRunner().invoke, main, list(args), env=env, input=input, catch_exceptions=False
        )

    async def ok(self, *args: str, input: str | None = None) -> str:
        """Invoke, expect exit 0, return stdout."""
        result = await self(*args, input=input)
        assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
        return result.stdout

    async def json(self, *args: str) -> dict[str, Any]:
        """Invoke ``berth --json ARGS``, expect success, parse stdout."""
        parsed: dict[str, Any] = json.loads(await self.ok("--json", *args))
        return parsed

    async def api(self, path: str) -> dict[str, Any]:
        """``GET path`` straight from the API (to compare with the CLI's answer)."""
        status, body, _ = await self.coordinator.call("GET", path, token=self.token)
        assert status == 200, body
        return dict(body)


@pytest.fixture
def cli(coordinator: Coordinator, admin_token: str, tmp_path: Path) -> Cli:
    """The CLI pointed at the in-process coordinator as its admin."""
    return Cli(coordinator, admin_token, tmp_path / "config")


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``data`` minus top-level ``keys`` (timestamps that differ between two reads)."""
    return {k: v for k, v in data.items() if k not in keys}


async def make_resource(cli: Cli, *extra: str) -> str:
    """Project ``shop``, environment ``production`` and resource ``web``; return the id."""
    await cli.ok("projects", "create", "shop")
    await cli.ok("envs", "create", "shop", "production")
    shown = await cli.json("resources", "create", "shop", "production", "web", *extra)
    return str(shown["resource"]["id"])


async def test_projects_and_environments(cli: Cli) -> None:
    created = await cli.json("projects", "create", "shop", "--description", "the shop")
    assert set(created) == {"id"}
    assert created["id"].startswith("prj_")
    listing = await cli.json("projects", "list")
    assert listing == await cli.api("/projects?limit=500")
    out = await cli.ok("projects", "list")
    assert "shop" in out
    assert created["id"] in out

    env = await cli.json("envs", "create", "shop", "staging", "--kind", "staging")
    assert env["id"].startswith("env_")
    # The project can be named by id as well as by name.
    await cli.ok("envs", "create", created["id"], "production")
    envs = await cli.json("envs", "list", "shop")
    assert envs == await cli.api(f"/environments?projectId={created['id']}&limit=500")
    assert sorted(e["name"] for e in envs["items"]) == ["production", "staging"]
    out = await cli.ok("envs", "list", "shop")
    assert "staging" in out
    assert "production" in out

    missing = await cli("envs", "list", "nope")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("berth: no project named 'nope'")
    bad_kind = await cli("envs", "create", "shop", "x", "--kind", "weird")
    assert bad_kind.exit_code == 2


async def test_resources_create_show_list_and_set_image(cli: Cli) -> None:
    shown = await cli.json("projects", "create", "shop")
    project_id = shown["id"]
    await cli.ok("envs", "create", "shop", "production")
    created = await cli.json(
        "resources", "create", "shop", "production", "web",
        "--image", "berth-test/busybox:1.36", "--port", "8080",
        "--start-command", "httpd -f -p 8080", "--health-path", "/healthz",
    )  # fmt: skip
    rid = created["resource"]["id"]
    # --json prints exactly what the API shows for the configured resource.
    assert without(created, *GENERATED) == without(await cli.api(f"/resources/{rid}"), *GENERATED)
    assert created["source"]["imageName"] == "berth-test/busybox"
    assert created["source"]["imageTag"] == "1.36"
    assert created["networkProfile"]["internalPort"] == 8080
    assert created["runtimeProfile"]["startCommand"] == "httpd -f -p 8080"
    assert created["healthPolicy"]["http"]["path"] == "/healthz"

    out = await cli.ok("resources", "show", "web")
    assert "berth-test/busybox:1.36" in out
    assert "8080" in out
    assert "/healthz" in out
    # By id and by PROJECT/ENV/NAME too.
    assert rid in await cli.ok("resources", "show", rid)
    assert rid in await cli.ok("resources", "show", "shop/production/web")

    await cli.ok("resources", "set-image", "web", "nginx:1.27")
    source = (await cli.api(f"/resources/{rid}"))["source"]
    assert (source["imageName"], source["imageTag"]) == ("nginx", "1.27")
    bad = await cli("resources", "set-image", "web", "Not A Valid Image")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("berth: ")
    assert "(invalid_request" in bad.stderr

    listing = await cli.json("resources", "list", "--project", "shop")
    assert listing == await cli.api(f"/resources?projectId={project_id}&limit=500")
    out = await cli.ok("resources", "list")
    assert "web" in out
    assert "shop" in out
    assert "production" in out

    # Two resources named "api" in different environments: a bare name is ambiguous.
    await cli.ok("envs", "create", "shop", "staging")
    await cli.ok("resources", "create", "shop", "production", "api")
    await cli.ok("resources", "create", "shop", "staging", "api")
    ambiguous = await cli("resources", "show", "api")
    assert ambiguous.exit_code == 1
    assert "2 resources are named 'api'" in ambiguous.stderr
    staging = await cli.json("resources", "show", "shop/staging/api")
    production = await cli.json("resources", "show", "shop/production/api")
    assert staging["resource"]["id"] != production["resource"]["id"]
    half = await cli("resources", "create", "shop", "production", "half", "--image", "Bad Image")
    assert half.exit_code == 1
    assert "berth: created resource half (res_" in half.stderr
    assert "but not its settings" in half.stderr
    health = await cli("resources", "create", "shop", "production", "x", "--health-path", "x")
    assert health.exit_code == 2


async def test_vars_and_secrets_never_print_the_secret(cli: Cli) -> None:
    rid = await make_resource(cli)
    out = await cli.ok("vars", "set", "web", "MODE=prod", "GREETING=a=b c")
    assert "MODE" in out
    assert "GREETING" in out
    config = await cli.json("vars", "list", "web")
    assert without(config, *GENERATED) == without(
        await cli.api(f"/resources/{rid}/effective-config"), *GENERATED
    )
    values = {e["key"]: e["value"] for e in config["effectiveEntries"]}
    assert values == {"MODE": "prod", "GREETING": "a=b c"}
    usage = await cli("vars", "set", "web", "NOEQUALS")
    assert usage.exit_code == 2

    outputs = []
    result = await cli("secrets", "set", "web", "DB_PASSWORD", input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    outputs.append(result.output)
    # Setting it again rotates the existing secret instead of failing.
    result = await cli("--json", "secrets", "set", "web", "DB_PASSWORD", input=SECRET + "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "resourceId": rid,
        "key": "DB_PASSWORD",
        "exposure": "runtime",
    }
    outputs.append(result.output)
    listing = await cli.json("secrets", "list", "web")
    assert without(listing, *GENERATED) == without(
        await cli.api(f"/resources/{rid}/secrets"), *GENERATED
    )
    assert [(s["key"], s["value"]) for s in listing["items"]] == [("DB_PASSWORD", "****")]
    for args in (("secrets", "list", "web"), ("vars", "list", "web"), ("resources", "show", "web")):
        result = await cli(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "****" in outputs[2]
    for output in outputs:
        assert SECRET not in output

    events = await cli.api(f"/audit-events?aggregateId={rid}&limit=500")
    kinds = [e["eventType"] for e in events["items"]]
    assert "resource.secret-created" in kinds
    assert "resource.secret-rotated" in kinds
    assert SECRET not in json.dumps(events)

    empty = await cli("secrets", "set", "web", "EMPTY", input="")
    assert empty.exit_code == 2
    # There is no way to pass the value on the command line.
    argv = await cli("secrets", "set", "web", "DB_PASSWORD", SECRET)
    assert argv.exit_code == 2


# ---- packing ---------------------------------------------------------------------------------


def _names(archive: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return set(tar.getnames())


def test_packing_excludes_git_and_dockerignored_paths(tmp_path: Path) -> None:
    app = tmp_path / "app"
    for name in ("Dockerfile", "src/main.py", "src/debug.log", "keep.log", ".git/HEAD",
                 "sub/.git/config", "node_modules/x/index.js", "docs/a.md"):  # fmt: skip
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(name)
    (app / ".dockerignore").write_text("# comment\n**/*.log\n!keep.log\nnode_modules\n")
    os.symlink("src/main.py", app / "entry.py")

    packed = pack_folder(app)
    try:
        data = packed.file.read()
    finally:
        packed.close()
    names = _names(data)
    assert "Dockerfile" in names
    assert "src/main.py" in names
    assert "keep.log" in names
    assert "entry.py" in names
    assert ".dockerignore" in names
    assert not any(n.startswith((".git", "sub/.git", "node_modules")) for n in names)
    assert "src/debug.log" not in names
    assert packed.file_count == 5  # regular files only: the link is not counted
    assert packed.size_bytes == len(data)
    # What the coordinator will accept: same checks as its upload endpoint.
    archive = tmp_path / "packed.tar.gz"
    archive.write_bytes(data)
    assert inspect_archive(archive) == packed.file_count
    with tarfile.open(archive, "r:gz") as tar:
        assert {m.uname for m in tar.getmembers()} == {""}

    assert excluded("a/.git/objects", [])
    assert not excluded("a/b", load_rules(app))


def test_packing_refuses_what_it_cannot_ship(tmp_path: Path) -> None:
    not_dir = tmp_path / "file.txt"
    not_dir.write_text("x")
    with pytest.raises(PackingError, match="is not a directory"):
        pack_folder(not_dir)
    with pytest.raises(PackingError, match="is not a directory"):
        pack_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    (empty / ".git" / "HEAD").write_text("ref")
    with pytest.raises(PackingError, match="no files"):
        pack_folder(empty)
    escaping = tmp_path / "escaping"
    escaping.mkdir()
    (escaping / "a.txt").write_text("a")
    os.symlink("../file.txt", escaping / "out")
    with pytest.raises(PackingError, match="pointing outside"):
        pack_folder(escaping)
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    (fifo / "a.txt").write_text("a")
    os.mkfifo(fifo / "pipe")
    with pytest.raises(PackingError, match="special file"):
        pack_folder(fifo)
