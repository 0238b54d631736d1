"""``berth dns-providers`` and ``berth wildcards``: RFC 2136 providers and DNS-01 wildcards."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import certificate_render, render
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

PROVIDER_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("SERVER", "serverAddress"), ("ZONE", "zone"),
    ("KEY", "tsigKeyName"), ("ALGORITHM", "tsigAlgorithm"),
)  # fmt: skip
WILDCARD_COLUMNS: Final = (
    ("ID", "id"), ("DOMAIN", "domainName"), ("STATUS", "status"), ("EXPIRES", "expiresAt"),
    ("RENEWS", "renewsAt"), ("LAST ERROR", "latestAttempt.errorCode"),
)  # fmt: skip


@click.group("dns-providers")
def dns_providers() -> None:
    """RFC 2136 DNS servers Berth may update (TSIG) to answer DNS-01 challenges."""


def _secret(secret_file: Path | None) -> str:
    # Never a command-line argument: it would land in shell history and the process list.
    if secret_file is not None:
        return secret_file.read_text().strip()
    return os.environ.get("BERTH_TSIG_SECRET") or str(
        click.prompt("TSIG secret (base64)", hide_input=True)
    )


@dns_providers.command("add")
@click.argument("name")
@click.option("--server", required=True, help="HOST or HOST:PORT of the zone's primary.")
@click.option("--zone", required=True, help="The zone the server is authoritative for.")
@click.option("--key-name", required=True, help="TSIG key name.")
@click.option("--algorithm", default="hmac-sha256", show_default=True, help="TSIG algorithm.")
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the base64 TSIG secret; default: $BERTH_TSIG_SECRET, else a prompt.",
)
@click.pass_obj
def providers_add(
    opts: "Options",
    name: str,
    server: str,
    zone: str,
    key_name: str,
    algorithm: str,
    secret_file: Path | None,
) -> None:
    """Add provider NAME; the coordinator seals the secret and never shows it again."""
    secret = _secret(secret_file)

    async def add(api: ApiClient) -> JsonObject:
        body: JsonObject = {
            "name": name,
            "serverAddress": server,
            "zone": zone,
            "tsigKeyName": key_name,
            "tsigAlgorithm": algorithm,
            "tsigSecret": secret,
        }
        answer = await api.post("/dns-providers", body)
        return await api.get(f"/dns-providers/{segment(text(answer, 'id'))}")

    opts.show(opts.call(add), lambda data: render.table([data], PROVIDER_COLUMNS, empty=""))


@dns_providers.command("list")
@click.pass_obj
def providers_list(opts: "Options") -> None:
    """List providers (secrets masked)."""

    async def listing(api: ApiClient) -> JsonObject:
        return await api.get("/dns-providers")

    def human(data: JsonObject) -> None:
        empty = "No DNS providers: add one with 'berth dns-providers add'."
        render.table(objects(data, "items"), PROVIDER_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@dns_providers.command("remove")
@click.argument("provider_id")
@click.pass_obj
def providers_remove(opts: "Options", provider_id: str) -> None:
    """Remove a provider no wildcard certificate uses."""

    async def remove(api: ApiClient) -> JsonObject:
        return await api.call("DELETE", f"/dns-providers/{segment(provider_id)}")

    opts.show(opts.call(remove), lambda _data: click.echo(f"Removed {provider_id}."))


@click.group()
def wildcards() -> None:
    """Wildcard certificates (*.BASE and BASE) the coordinator orders over DNS-01."""


def _show_human(data: JsonObject) -> None:
    def at(path: str) -> object:
        return render.lookup(data, path)

    render.details(
        [
            ("ID", at("id")),
            ("Names", certificate_render.names(at("subjectAlternativeNames"))),
            ("Status", at("status")),
            ("Issuer", at("issuer")),
            ("Valid from", at("notBefore")),
            ("Expires", at("expiresAt")),
            ("Renews", at("renewsAt")),
            ("SHA-256", at("fingerprint")),
            ("ACME directory", at("acmeDirectory")),
        ]
    )
    certificate_render.latest_attempt(at("latestAttempt"), retry_label="Next try")


@wildcards.command("request")
@click.argument("base")
@click.option("--provider", "provider_id", required=True, help="DNS provider id.")
@click.pass_obj
def wildcards_request(opts: "Options", base: str, provider_id: str) -> None:
    """Order *.BASE and BASE; every server serves it once issued (follow with 'show')."""

    async def request(api: ApiClient) -> JsonObject:
        body: JsonObject = {"domainName": base, "dnsProviderId": provider_id}
        answer = await api.post("/wildcard-certificates", body)
        return await api.get(f"/wildcard-certificates/{segment(text(answer, 'certificateId'))}")

    opts.show(opts.call(request), _show_human)


@wildcards.command("list")
@click.pass_obj
def wildcards_list(opts: "Options") -> None:
    """List wildcard certificates with their status and latest error."""

    async def listing(api: ApiClient) -> JsonObject:
        return await api.get("/wildcard-certificates")

    def human(data: JsonObject) -> None:
        empty = "No wildcard certificates: order one with 'berth wildcards request'."
        render.table(objects(data, "items"), WILDCARD_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@wildcards.command("show")
@click.argument("certificate_id")
@click.pass_obj
def wildcards_show(opts: "Options", certificate_id: str) -> None:
    """Show a wildcard certificate and why its last attempt failed."""

    async def show(api: ApiClient) -> JsonObject:
        return await api.get(f"/wildcard-certificates/{segment(certificate_id)}")

    opts.show(opts.call(show), _show_human)


@wildcards.command("retry")
@click.argument("certificate_id")
@click.pass_obj
def wildcards_retry(opts: "Options", certificate_id: str) -> None:
    """Order it again now (after a failure, or to renew early)."""

    async def retry(api: ApiClient) -> JsonObject:
        _ = await api.post(f"/wildcard-certificates/{segment(certificate_id)}/retries", {})
        return await api.get(f"/wildcard-certificates/{segment(certificate_id)}")

    opts.show(opts.call(retry), _show_human)


COMMANDS: Final = (dns_providers, wildcards)
