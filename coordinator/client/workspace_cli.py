"""``berth projects|envs|resources|vars|secrets``: the workspace, referred to by name or id."""

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

PROJECT_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("SLUG", "slug"), ("STATUS", "lifecycleStatus"),
    ("CREATED", "createdAt"),
)  # fmt: skip
ENVIRONMENT_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("KIND", "kind"), ("STATUS", "lifecycleStatus"),
    ("VARIABLES", "variableCount"), ("CREATED", "createdAt"),
)  # fmt: skip
RESOURCE_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("PROJECT", "projectName"), ("ENVIRONMENT", "environmentName"),
    ("DEPLOYMENTS", "deploymentCount"), ("LAST STATUS", "lastDeploymentStatus"),
    ("LAST DEPLOYMENT", "lastDeploymentId"),
)  # fmt: skip
VARIABLE_COLUMNS: Final = (
    ("KEY", "key"), ("VALUE", "value"), ("EXPOSURE", "exposure"), ("SCOPE", "scope"),
    ("SECRET", "isSecret"), ("UPDATED", "updatedAt"),
)  # fmt: skip
EXPOSURES: Final = ("runtime", "build-time")
PAGE: Final = 500


def segment(value: str) -> str:
    """Quote an id for use as one URL path segment."""
    return quote(value, safe="")


# ---- references ------------------------------------------------------------------------------


def _pick(items: Sequence[JsonObject], ref: str, what: str, hint: str) -> JsonObject:
    """The item whose id, name or slug is ``ref``; unknown or ambiguous names are errors."""
    for item in items:
        if text(item, "id") == ref:
            return item
    found = [i for i in items if ref in (text(i, "name"), text(i, "slug"))]
    if not found:
        raise ClientError(f"no {what} named {ref!r} (see '{hint}')")
    if len(found) > 1:
        ids = ", ".join(text(i, "id") for i in found)
        raise ClientError(f"{len(found)} {what}s are named {ref!r} ({ids}); use an id")
    return found[0]


async def find_project(api: ApiClient, ref: str) -> JsonObject:
    """A project by id, name or slug."""
    listing = await api.get_all("/projects", PAGE)
    return _pick(objects(listing, "items"), ref, "project", "berth projects list")


async def find_environment(api: ApiClient, project_id: str, ref: str) -> JsonObject:
    """An environment of the project by id or name."""
    listing = await api.get_all("/environments", PAGE, {"projectId": project_id})
    return _pick(objects(listing, "items"), ref, "environment", "berth envs list PROJECT")


async def find_resource(api: ApiClient, ref: str) -> JsonObject:
    """A resource (list item) by id, ``PROJECT/ENV/NAME`` path, or a name unique overall."""
    if ref.startswith("res_"):
        shown = await api.get(f"/resources/{segment(ref)}")
        item = shown.get("resource")
        if isinstance(item, dict):
            return item
    query: dict[str, str | int | None] = {}
    name = ref
    if ref.count("/") == 2:
        project_ref, environment_ref, name = ref.split("/")
        project = await find_project(api, project_ref)
        query["projectId"] = text(project, "id")
        environment = await find_environment(api, text(project, "id"), environment_ref)
        query["environmentId"] = text(environment, "id")
    listing = await api.get_all("/resources", PAGE, query)
    return _pick(objects(listing, "items"), name, "resource", "berth resources list")


async def resource_id(api: ApiClient, ref: str) -> str:
    """The id of a resource reference."""
    return ref if ref.startswith("res_") else text(await find_resource(api, ref), "id")


async def find_server(api: ApiClient, ref: str) -> JsonObject:
    """A server by id or name."""
    listing = await api.get_all("/servers", PAGE)
    return _pick(objects(listing, "items"), ref, "server", "berth servers list")


# ---- projects --------------------------------------------------------------------------------


@click.group()
def projects() -> None:
    """Create and list projects (PROJECT is a prj_ id, a name or a slug)."""


@projects.command("create")
@click.argument("name")
@click.option("--description", help="What the project is for.")
@click.pass_obj
def projects_create(opts: "Options", name: str, description: str | None) -> None:
    """Create a project."""
    body: JsonObject = {"name": name, "description": description}
    answer = opts.call(lambda api: api.post("/projects", body))
    opts.show(answer, lambda d: click.echo(f"Created project {name} ({text(d, 'id')})."))


@projects.command("list")
@click.pass_obj
def projects_list(opts: "Options") -> None:
    """List projects."""
    listing = opts.call(lambda api: api.get_all("/projects", PAGE))
    empty = "No projects: create one with 'berth projects create NAME'."
    opts.show(listing, lambda d: render.table(objects(d, "items"), PROJECT_COLUMNS, empty=empty))


# ---- environments ----------------------------------------------------------------------------


@click.group()
def envs() -> None:
    """Create and list a project's environments."""


@envs.command("create")
@click.argument("project")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(("production", "staging", "development", "preview", "local")),
    default="production",
    show_default=True,
)
@click.pass_obj
def envs_create(opts: "Options", project: str, name: str, kind: str) -> None:
    """Create an environment in PROJECT."""

    async def create(api: ApiClient) -> JsonObject:
        project_id = text(await find_project(api, project), "id")
        return await api.post(
            "/environments", {"projectId": project_id, "name": name, "kind": kind}
        )

    answer = opts.call(create)
    opts.show(answer, lambda d: click.echo(f"Created environment {name} ({text(d, 'id')})."))


@envs.command("list")
@click.argument("project")
@click.pass_obj
def envs_list(opts: "Options", project: str) -> None:
    """List the environments of PROJECT."""

    async def listing(api: ApiClient) -> JsonObject:
        project_id = text(await find_project(api, project), "id")
        return await api.get_all("/environments", PAGE, {"projectId": project_id})

    def human(data: JsonObject) -> None:
        rows = [
            {**item, "variableCount": len(objects(item, "maskedVariables"))}
            for item in objects(data, "items")
        ]
        empty = f"No environments: create one with 'berth envs create {project} NAME'."
        render.table(rows, ENVIRONMENT_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


# ---- resources -------------------------------------------------------------------------------


@click.group()
def resources() -> None:
    """Create, list and configure resources (RES: res_ id, PROJECT/ENV/NAME, or a unique name)."""


@dataclass(frozen=True)
class Profile:
    """What ``resources create`` configures right after creating the resource."""

    image: str | None
    port: int | None
    start_command: str | None
    health_path: str | None


async def configure(api: ApiClient, rid: str, profile: Profile) -> None:
    """Apply each given part of ``profile`` with its own command."""
    base = f"/resources/{segment(rid)}"
    if profile.image:
        source: JsonObject = {"kind": "docker-image", "imageName": profile.image}
        await api.post(base + "/source", {"source": source})
    if profile.port:
        network: JsonObject = {"internalPort": profile.port, "exposureMode": "reverse-proxy"}
        await api.post(base + "/network-profile", {"networkProfile": network})
    if profile.start_command:
        runtime: JsonObject = {"startCommand": profile.start_command}
        await api.post(base + "/runtime-profile", {"runtimeProfile": runtime})
    if profile.health_path:
        health: JsonObject = {
            "enabled": True,
            "type": "http",
            "http": {"path": profile.health_path},
        }
        await api.post(base + "/health-policy", {"healthCheck": health})
    elif not profile.port:
        # A worker listens nowhere: there is nothing to probe, so it counts as up once it runs.
        await api.post(base + "/health-policy", {"healthCheck": {"enabled": False}})


def _health_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise click.BadParameter("must start with '/'")
    return value


@resources.command("create")
@click.argument("project")
@click.argument("env")
@click.argument("name")
@click.option("--image", help="Docker image to run, e.g. nginx:1.27.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port the container listens on (without it: a worker, no health check).",
)
@click.option("--start-command", help="Command that starts the container.")
@click.option("--health-path", callback=_health_path, help="HTTP path of the health check.")
@click.pass_obj
def resources_create(
    opts: "Options",
    project: str,
    env: str,
    name: str,
    image: str | None,
    port: int | None,
    start_command: str | None,
    health_path: str | None,
) -> None:
    """Create a resource in PROJECT/ENV; --json prints the configured resource."""

    async def create(api: ApiClient) -> JsonObject:
        project_id = text(await find_project(api, project), "id")
        environment_id = text(await find_environment(api, project_id, env), "id")
        body: JsonObject = {"projectId": project_id, "environmentId": environment_id, "name": name}
        rid = text(await api.post("/resources", body), "id")
        try:
            await configure(api, rid, Profile(image, port, start_command, health_path))
        except ClientError as exc:
            raise ClientError(
                f"created resource {name} ({rid}) but not its settings: {exc}"
            ) from exc
        return await api.get(f"/resources/{segment(rid)}")

    answer = opts.call(create)

    def human(data: JsonObject) -> None:
        click.echo(f"Created resource {name} ({render.lookup(data, 'resource.id')}).")

    opts.show(answer, human)


@resources.command("list")
@click.option("--project", help="Only this project's resources.")
@click.pass_obj
def resources_list(opts: "Options", project: str | None) -> None:
    """List resources with their latest deployment."""

    async def listing(api: ApiClient) -> tuple[JsonObject, dict[str, str]]:
        found = objects(await api.get_all("/projects", PAGE), "items")
        names = {text(p, "id"): text(p, "name") for p in found}
        query: dict[str, str | int | None] = {}
        if project is not None:
            query["projectId"] = text(_pick(found, project, "project", "berth projects list"), "id")
        for environment in objects(await api.get_all("/environments", PAGE, query), "items"):
            names[text(environment, "id")] = text(environment, "name")
        return await api.get_all("/resources", PAGE, query), names

    answer, names = opts.call(listing)

    def human(data: JsonObject) -> None:
        rows = [
            {
                **item,
                "projectName": names.get(text(item, "projectId"), text(item, "projectId")),
                "environmentName": names.get(
                    text(item, "environmentId"), text(item, "environmentId")
                ),
            }
            for item in objects(data, "items")
        ]
        empty = "No resources: create one with 'berth resources create PROJECT ENV NAME'."
        render.table(rows, RESOURCE_COLUMNS, empty=empty)

    opts.show(answer, human)


def source_summary(source: object) -> str:
    """``nginx:1.27`` or ``local folder ./web (arc_...)`` or ``-``."""
    if not isinstance(source, dict):
        return "-"
    if source.get("kind") == "docker-image":
        reference = str(source.get("imageName"))
        if source.get("imageTag"):
            reference += f":{source['imageTag']}"
        if source.get("imageDigest"):
            reference += f"@{source['imageDigest']}"
        return reference
    archive = render.lookup(source, "metadata.archiveId") or "not uploaded"
    return f"{source.get('kind')} {source.get('locator')} ({archive})"


@resources.command("show")
@click.argument("res")
@click.pass_obj
def resources_show(opts: "Options", res: str) -> None:
    """Show a resource's source, profiles and latest deployment."""

    async def show(api: ApiClient) -> JsonObject:
        return await api.get(f"/resources/{segment(await resource_id(api, res))}")

    def human(data: JsonObject) -> None:
        def at(path: str) -> object:
            return render.lookup(data, path)

        render.details(
            [
                ("ID", at("resource.id")),
                ("Name", at("resource.name")),
                ("Project", at("resource.projectId")),
                ("Environment", at("resource.environmentId")),
                ("Status", at("lifecycle.status")),
                ("Source", source_summary(at("source"))),
                ("Start command", at("runtimeProfile.startCommand")),
                ("Replicas", at("runtimeProfile.replicas")),
                ("Port", at("networkProfile.internalPort")),
                ("Exposure", at("networkProfile.exposureMode")),
                (
                    "Health check",
                    at("healthPolicy.http.path") if at("healthPolicy.enabled") else "off",
                ),
                ("Deployments", at("resource.deploymentCount")),
                ("Latest deployment", at("latestDeployment.id")),
                ("Latest status", at("latestDeployment.status")),
                ("Created", at("resource.createdAt")),
            ]
        )

    opts.show(opts.call(show), human)


@resources.command("set-image")
@click.argument("res")
@click.argument("image")
@click.pass_obj
def resources_set_image(opts: "Options", res: str, image: str) -> None:
    """Make IMAGE (e.g. nginx:1.27) the resource's source."""

    async def set_image(api: ApiClient) -> JsonObject:
        rid = await resource_id(api, res)
        source: JsonObject = {"kind": "docker-image", "imageName": image}
        return await api.post(f"/resources/{segment(rid)}/source", {"source": source})

    answer = opts.call(set_image)
    opts.show(answer, lambda d: click.echo(f"{res} now runs {image} ({text(d, 'id')})."))


# ---- variables and secrets -------------------------------------------------------------------


def _assignment(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, equals, rest = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE")
        pairs.append((key, rest))
    return pairs


@click.group("vars")
def variables() -> None:
    """Set and list a resource's plain variables (they override the environment's)."""


@variables.command("set")
@click.argument("res")
@click.argument("assignments", nargs=-1, required=True, callback=_assignment)
@click.option("--build-time", is_flag=True, help="Expose at build time instead of runtime.")
@click.pass_obj
def vars_set(
    opts: "Options", res: str, assignments: list[tuple[str, str]], build_time: bool
) -> None:
    """Set KEY=VALUE variables (not secrets: see 'berth secrets set')."""
    exposure = "build-time" if build_time else "runtime"

    async def set_all(api: ApiClient) -> JsonObject:
        rid = await resource_id(api, res)
        for key, value in assignments:
            body: JsonObject = {"key": key, "value": value, "exposure": exposure}
            await api.post(f"/resources/{segment(rid)}/variables", body)
        return await api.get(f"/resources/{segment(rid)}/effective-config")

    answer = opts.call(set_all)
    keys = ", ".join(key for key, _ in assignments)
    opts.show(answer, lambda _d: click.echo(f"Set {keys} on {res} ({exposure})."))


@variables.command("list")
@click.argument("res")
@click.pass_obj
def vars_list(opts: "Options", res: str) -> None:
    """List the variables in effect for a resource (secrets read ****)."""

    async def effective(api: ApiClient) -> JsonObject:
        return await api.get(f"/resources/{segment(await resource_id(api, res))}/effective-config")

    def human(data: JsonObject) -> None:
        render.table(objects(data, "effectiveEntries"), VARIABLE_COLUMNS, empty="No variables.")

    opts.show(opts.call(effective), human)


@click.group()
def secrets() -> None:
    """Set and list a resource's secrets (encrypted; values are never shown)."""


def _read_secret(key: str) -> str:
    """The value from stdin when it is piped, else from a hidden prompt; never from argv."""
    if sys.stdin.isatty():
        value: str = click.prompt(f"Value of {key}", hide_input=True, err=True)
    else:
        value = sys.stdin.read()
        # One trailing line end comes from `echo` or a file; the secret does not contain it.
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise click.UsageError(f"empty value for {key}")
    return value


@secrets.command("set")
@click.argument("res")
@click.argument("key")
@click.option("--build-time", is_flag=True, help="Expose at build time instead of runtime.")
@click.pass_obj
def secrets_set(opts: "Options", res: str, key: str, build_time: bool) -> None:
    """Create or rotate secret KEY; the value is read from stdin or a hidden prompt."""
    exposure = "build-time" if build_time else "runtime"
    value = _read_secret(key)

    async def store(api: ApiClient) -> JsonObject:
        rid = await resource_id(api, res)
        base = f"/resources/{segment(rid)}/secrets"
        existing = await api.get(base, {"exposure": exposure})
        if any(text(item, "key") == key for item in objects(existing, "items")):
            return await api.post(f"{base}/{segment(key)}", {"value": value, "exposure": exposure})
        return await api.post(base, {"key": key, "value": value, "exposure": exposure})

    answer = opts.call(store)
    opts.show(answer, lambda _d: click.echo(f"Stored secret {key} on {res} ({exposure})."))


@secrets.command("list")
@click.argument("res")
@click.option("--build-time", is_flag=True, help="List build-time secrets instead.")
@click.pass_obj
def secrets_list(opts: "Options", res: str, build_time: bool) -> None:
    """List a resource's secrets (values read ****)."""
    exposure = "build-time" if build_time else "runtime"

    async def listing(api: ApiClient) -> JsonObject:
        rid = await resource_id(api, res)
        return await api.get(f"/resources/{segment(rid)}/secrets", {"exposure": exposure})

    def human(data: JsonObject) -> None:
        empty = f"No {exposure} secrets: add one with 'berth secrets set {res} KEY'."
        render.table(objects(data, "items"), VARIABLE_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


COMMANDS: Final = (projects, envs, resources, variables, secrets)
