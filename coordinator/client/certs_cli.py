"""``berth certs list|show|import|renew``: certificates of bound domains, with diagnostics."""

from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import certificate_render, render
from coordinator.client.domains_cli import LIMIT, binding_id_of
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

CERT_COLUMNS: Final = (
    ("ID", "id"), ("DOMAIN", "domainName"), ("STATUS", "status"), ("SOURCE", "source"),
    ("ISSUER", "issuer"), ("EXPIRES", "expiresAt"), ("LAST ERROR", "latestAttempt.errorCode"),
)  # fmt: skip


async def _certificate_id(api: ApiClient, ref: str) -> str:
    """A certificate by id, or the newest one of a binding given by id or domain name."""
    if ref.startswith("crt_"):
        return ref
    binding_id = await binding_id_of(api, ref)
    items = objects(
        await api.get("/certificates", {"domainBindingId": binding_id, "limit": LIMIT}), "items"
    )
    if not items:
        raise click.ClickException(
            f"{ref} has no certificate yet (ownership confirmed? see 'berth domains show {ref}')"
        )
    return text(items[-1], "id")


@click.group()
def certs() -> None:
    """Certificates of bound domains: facts, failed attempts and why, imports, renewals."""


@certs.command("list")
@click.option("--domain", "domain", help="Only this binding's (id or domain name).")
@click.pass_obj
def certs_list(opts: "Options", domain: str | None) -> None:
    """List certificates with their status and latest error."""

    async def listing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {"limit": LIMIT}
        if domain is not None:
            query["domainBindingId"] = await binding_id_of(api, domain)
        return await api.get("/certificates", query)

    def human(data: JsonObject) -> None:
        empty = "No certificates: a domain gets one once its ownership is confirmed."
        render.table(objects(data, "items"), CERT_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


def _show_human(data: JsonObject) -> None:
    def at(path: str) -> object:
        return render.lookup(data, path)

    render.details(
        [
            ("ID", at("id")),
            ("Domain", at("domainName")),
            ("Binding", at("domainBindingId")),
            ("Status", at("status")),
            ("Source", at("source")),
            ("Issuer", at("issuer")),
            ("Names", certificate_render.names(at("subjectAlternativeNames"))),
            ("Valid from", at("notBefore")),
            ("Expires", at("expiresAt")),
            ("Key", at("keyAlgorithm")),
            ("SHA-256", at("fingerprint")),
        ]
    )
    attempt = at("latestAttempt")
    if certificate_render.latest_attempt(attempt, retry_label="Edge retries", dns_observed=True):
        click.echo(f"Retry now: berth certs renew {at('domainName')}")


@certs.command("show")
@click.argument("ref")
@click.pass_obj
def certs_show(opts: "Options", ref: str) -> None:
    """Show a certificate (id, or a binding's id or domain) and why its last attempt failed."""

    async def show(api: ApiClient) -> JsonObject:
        return await api.get(f"/certificates/{segment(await _certificate_id(api, ref))}")

    opts.show(opts.call(show), _show_human)


@certs.command("import")
@click.argument("binding")
@click.argument("chain", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def certs_import(opts: "Options", binding: str, chain: Path, key: Path) -> None:
    """Import CHAIN (PEM, leaf first) and its KEY for BINDING (id or domain); the edge serves
    it instead of an ACME certificate. The key is stored encrypted and never shown again."""

    # Read before the request: a file that cannot be read fails here, not half-way.
    chain_pem, key_pem = chain.read_text(), key.read_text()

    async def do_import(api: ApiClient) -> JsonObject:
        body: JsonObject = {
            "domainBindingId": await binding_id_of(api, binding),
            "certificateChain": chain_pem,
            "privateKey": key_pem,
        }
        answer = await api.post("/certificates/import", body)
        return await api.get(f"/certificates/{segment(text(answer, 'certificateId'))}")

    opts.show(opts.call(do_import), _show_human)


@certs.command("renew")
@click.argument("ref")
@click.pass_obj
def certs_renew(opts: "Options", ref: str) -> None:
    """Have the edge renew REF's certificate now: retry after a retriable failure, issue a
    first one, or renew a valid one early.

    REF is a certificate id, or a binding's id or domain name.
    """

    async def renew(api: ApiClient) -> JsonObject:
        if ref.startswith("crt_"):
            cert = await api.get(f"/certificates/{segment(ref)}")
            binding_id = text(cert, "domainBindingId")
            managed = [cert] if text(cert, "source") == "managed" else []
        else:
            binding_id = await binding_id_of(api, ref)
            items = objects(
                await api.get("/certificates", {"domainBindingId": binding_id}), "items"
            )
            managed = [c for c in items if text(c, "source") == "managed"]
        latest = managed[-1].get("latestAttempt") if managed else None
        if managed and isinstance(latest, dict) and latest.get("status") == "failed":
            cert_id = segment(text(managed[-1], "id"))
            answer = await api.post(f"/certificates/{cert_id}/retries", {})
        else:
            answer = await api.post("/certificates/issue-or-renew", {"domainBindingId": binding_id})
        return await api.get(f"/certificates/{segment(text(answer, 'certificateId'))}")

    opts.show(opts.call(renew), _show_human)


COMMANDS: Final = (certs,)
