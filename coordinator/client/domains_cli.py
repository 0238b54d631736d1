"""``berth domains add|list|show|verify|remove``: custom domains bound to resources."""

from typing import TYPE_CHECKING, Final

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.workspace_cli import find_resource, segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

DOMAIN_COLUMNS: Final = (
    ("ID", "id"), ("DOMAIN", "domainName"), ("PATH", "pathPrefix"), ("RESOURCE", "resourceId"),
    ("STATUS", "status"), ("DNS", "dnsObservation.status"), ("REDIRECT", "redirectTo"),
)  # fmt: skip
LIMIT: Final = 500


async def binding_id_of(api: ApiClient, ref: str) -> str:
    """A binding by id or by domain name (its ``/`` path binding first)."""
    if ref.startswith("dbd_"):
        return ref
    found = [
        b
        for b in objects(await api.get("/domain-bindings", {"limit": LIMIT}), "items")
        if text(b, "domainName") == ref.lower().rstrip(".")
    ]
    if not found:
        raise click.ClickException(f"no domain binding for {ref!r} (see 'berth domains list')")
    found.sort(key=lambda b: text(b, "pathPrefix"))
    return text(found[0], "id")


@click.group()
def domains() -> None:
    """Bind custom domains to resources, check their DNS, prove ownership."""


@domains.command("add")
@click.argument("res")
@click.argument("domain")
@click.option("--path-prefix", help="Only requests under this path (default /).")
@click.option("--server", "server", help="Server id whose public address DNS should point at.")
@click.option("--redirect-to", help="Redirect to this bound domain instead of serving.")
@click.option(
    "--redirect-status", type=click.Choice(["301", "302", "307", "308"]), help="Default 301."
)
@click.option(
    "--tls", "tls_mode", type=click.Choice(["auto", "imported", "disabled"]), default="auto"
)
@click.pass_obj
def domains_add(
    opts: "Options",
    res: str,
    domain: str,
    path_prefix: str | None,
    server: str | None,
    redirect_to: str | None,
    redirect_status: str | None,
    tls_mode: str,
) -> None:
    """Bind DOMAIN to resource RES (id or PROJECT/ENV/NAME)."""

    async def add(api: ApiClient) -> JsonObject:
        resource = await find_resource(api, res)
        body: JsonObject = {
            "projectId": text(resource, "projectId"),
            "environmentId": text(resource, "environmentId"),
            "resourceId": text(resource, "id"),
            "domainName": domain,
            "tlsMode": tls_mode,
        }
        for key, value in (
            ("pathPrefix", path_prefix),
            ("serverId", server),
            ("redirectTo", redirect_to),
            ("redirectStatus", int(redirect_status) if redirect_status else None),
        ):
            if value is not None:
                body[key] = value
        created = await api.post("/domain-bindings", body)
        return await api.get(f"/domain-bindings/{segment(text(created, 'id'))}")

    def human(data: JsonObject) -> None:
        at = render.lookup
        click.echo(f"Bound {at(data, 'binding.domainName')} ({at(data, 'binding.id')}).")
        click.echo(
            f"Prove ownership: TXT {at(data, 'binding.ownership.dnsRecordName')} = "
            f"{at(data, 'binding.ownership.token')}, then 'berth domains verify "
            f"{at(data, 'binding.id')}'."
        )

    opts.show(opts.call(add), human)


@domains.command("list")
@click.option("--resource", "res", help="Only this resource's bindings.")
@click.pass_obj
def domains_list(opts: "Options", res: str | None) -> None:
    """List domain bindings."""

    async def listing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {"limit": LIMIT}
        if res is not None:
            query["resourceId"] = text(await find_resource(api, res), "id")
        return await api.get("/domain-bindings", query)

    def human(data: JsonObject) -> None:
        empty = "No domain bindings: add one with 'berth domains add RES DOMAIN'."
        render.table(objects(data, "items"), DOMAIN_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


def _show_human(data: JsonObject) -> None:
    def at(path: str) -> object:
        return render.lookup(data, path)

    expected = at("binding.dnsObservation.expectedTargets") or []
    observed = at("binding.dnsObservation.observedTargets") or []
    render.details(
        [
            ("ID", at("binding.id")),
            ("Domain", at("binding.domainName")),
            ("Path", at("binding.pathPrefix")),
            ("Resource", at("binding.resourceId")),
            ("Server", at("binding.serverId")),
            ("Status", at("binding.status")),
            ("Redirect", at("binding.redirectTo")),
            ("TLS", at("binding.tlsMode")),
            ("DNS", at("binding.dnsObservation.status")),
            ("DNS expected", ", ".join(map(str, expected)) if isinstance(expected, list) else "-"),
            ("DNS observed", ", ".join(map(str, observed)) if isinstance(observed, list) else "-"),
            ("DNS says", at("binding.dnsObservation.message")),
            ("Ownership TXT", at("binding.ownership.dnsRecordName")),
            ("Ownership token", at("binding.ownership.token")),
            ("Route", at("routeReadiness.status")),
            ("Blocked by", at("routeReadiness.selectedRoute.blockingReason")),
            ("Created", at("binding.createdAt")),
        ]
    )


@domains.command("show")
@click.argument("binding")
@click.pass_obj
def domains_show(opts: "Options", binding: str) -> None:
    """Show a binding (id or domain) with its DNS observation and route readiness."""

    async def show(api: ApiClient) -> JsonObject:
        return await api.get(f"/domain-bindings/{segment(await binding_id_of(api, binding))}")

    opts.show(opts.call(show), _show_human)


@domains.command("verify")
@click.argument("binding")
@click.option(
    "--method",
    type=click.Choice(["dns-txt", "http-token", "manual"]),
    default=None,
    help="Also prove ownership this way (manual needs --reason).",
)
@click.option("--reason", help="Why a manual override is right (audited).")
@click.pass_obj
def domains_verify(opts: "Options", binding: str, method: str | None, reason: str | None) -> None:
    """Look the domain up again (and prove ownership with --method); show the result."""

    async def verify(api: ApiClient) -> JsonObject:
        binding_id = segment(await binding_id_of(api, binding))
        _ = await api.post(f"/domain-bindings/{binding_id}/verification-retries", {})
        if method is not None:
            body: JsonObject = {"method": method}
            if reason is not None:
                body["reason"] = reason
            _ = await api.post(f"/domain-bindings/{binding_id}/ownership-confirmations", body)
        return await api.get(f"/domain-bindings/{binding_id}")

    opts.show(opts.call(verify), _show_human)


@domains.command("remove")
@click.argument("binding")
@click.pass_obj
def domains_remove(opts: "Options", binding: str) -> None:
    """Delete a binding (id or domain); refused while another binding redirects to it."""

    async def remove(api: ApiClient) -> JsonObject:
        binding_id = await binding_id_of(api, binding)
        return await api.call(
            "DELETE",
            f"/domain-bindings/{segment(binding_id)}",
            body={"confirmation": {"domainBindingId": binding_id}},
        )

    def human(data: JsonObject) -> None:
        click.echo(f"Removed domain binding {text(data, 'id')}.")

    opts.show(opts.call(remove), human)


COMMANDS: Final = (domains,)
