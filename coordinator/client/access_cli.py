"""``berth access show|set|list``: default access domain policies (generated host names)."""

from typing import TYPE_CHECKING, Final

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.workspace_cli import find_server

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

PATH: Final = "/default-access-domain-policies"
POLICY_COLUMNS: Final = (
    ("ID", "id"), ("SCOPE", "scope.kind"), ("SERVER", "scope.serverId"), ("MODE", "mode"),
    ("BASE DOMAIN", "baseDomain"), ("TLS", "tlsMode"), ("UPDATED", "updatedAt"),
)  # fmt: skip


@click.group()
def access() -> None:
    """Default access domains: every resource with an HTTP port gets
    <resource>-<environment>-<project>.<base domain>, over HTTPS with an on-demand certificate.
    The policy of a server wins over the system one; it applies at each resource's next
    deployment."""


@access.command("list")
@click.pass_obj
def access_list(opts: "Options") -> None:
    """List the system policy and the per-server ones."""

    def human(data: JsonObject) -> None:
        render.table(
            objects(data, "items"),
            POLICY_COLUMNS,
            empty="No policy: resources get only <resource>.<env>.<project>.<edge domain> (HTTP).",
        )

    opts.show(opts.call(lambda api: api.get(PATH)), human)


@access.command("show")
@click.option("--server", "server", help="A server's own policy (id or name); default: system.")
@click.pass_obj
def access_show(opts: "Options", server: str | None) -> None:
    """Show one scope's policy."""

    async def showing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {"scopeKind": "system"}
        if server is not None:
            query = {"scopeKind": "deployment-target", "serverId": await _server(api, server)}
        return await api.get(f"{PATH}/show", query)

    def human(data: JsonObject) -> None:
        policy = data.get("policy")
        if not isinstance(policy, dict):
            click.echo("No policy for this scope.")
            return
        render.details(
            [
                ("ID", render.lookup(policy, "id")),
                ("Scope", render.lookup(policy, "scope.kind")),
                ("Server", render.lookup(policy, "scope.serverId")),
                ("Mode", render.lookup(policy, "mode")),
                ("Base domain", render.lookup(policy, "baseDomain")),
                ("TLS", render.lookup(policy, "tlsMode")),
                ("Names", f"<resource>-<environment>-<project>.{policy.get('baseDomain')}"),
                ("Updated", render.lookup(policy, "updatedAt")),
            ]
        )

    opts.show(opts.call(showing), human)


async def _server(api: ApiClient, ref: str) -> str:
    return ref if ref.startswith("srv_") else text(await find_server(api, ref), "id")


@access.command("set")
@click.argument("base_domain", required=False)
@click.option("--server", "server", help="Set this server's own policy (id or name).")
@click.option("--disable", is_flag=True, help="No generated names in this scope.")
@click.option(
    "--tls",
    type=click.Choice(["on-demand", "certificate", "disabled"]),
    default="on-demand",
    show_default=True,
    help="on-demand: Caddy obtains each name's certificate on its first HTTPS request; "
    "certificate: only the wildcard certificate for *.BASE_DOMAIN the edge holds serves them.",
)
@click.pass_obj
def access_set(
    opts: "Options", base_domain: str | None, server: str | None, disable: bool, tls: str
) -> None:
    """Give every resource a name under BASE_DOMAIN (point *.BASE_DOMAIN at the server)."""
    if not disable and not base_domain:
        raise click.UsageError("give BASE_DOMAIN, or --disable")

    async def setting(api: ApiClient) -> JsonObject:
        scope: JsonObject = {"kind": "system"}
        if server is not None:
            scope = {"kind": "deployment-target", "serverId": await _server(api, server)}
        body: JsonObject = {
            "scope": scope,
            "mode": "disabled" if disable else "custom",
            "tlsMode": tls,
        }
        if base_domain:
            body["baseDomain"] = base_domain
        return await api.post(PATH, body)

    opts.show(opts.call(setting), lambda data: click.echo(f"policy {text(data, 'id')} saved"))


COMMANDS: Final = (access,)
