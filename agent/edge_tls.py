"""HTTPS on the edge: the TLS server and Caddy's ACME settings for bound domains."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

TLS_SERVER_NAME: Final = "berth-tls"
DEFAULT_ACME_DIRECTORY: Final = "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class EdgeTls:
    """Where the edge serves HTTPS and which ACME directory issues its certificates.

    ``trusted_roots`` is a PEM file Caddy trusts for the directory's own HTTPS (a private CA
    such as Pebble); empty means the system's roots.
    """

    listen: str
    directory: str = DEFAULT_ACME_DIRECTORY
    email: str = ""
    trusted_roots: str = ""


def listen_port(listen: str, default: int) -> int:
    """The port of a Caddy listen address (``host:port`` or ``:port``)."""
    _, _, port = listen.rpartition(":")
    return int(port) if port.isdigit() else default


def tls_server(tls: EdgeTls) -> dict[str, Any]:
    """The HTTPS server: Caddy manages certificates for the host names its routes match."""
    return {
        "listen": [tls.listen],
        "routes": [],
        # Berth answers the HTTP side itself (per binding), so Caddy opens no redirect server.
        "automatic_https": {"disable_redirects": True},
        # No HTTP/3: it would open a UDP listener nobody asked for.
        "protocols": ["h1", "h2"],
    }


def _issuer(tls: EdgeTls) -> dict[str, Any]:
    issuer: dict[str, Any] = {
        "module": "acme",
        "ca": tls.directory,
        "challenges": {"tls-alpn": {"disabled": True}},
    }
    if tls.email:
        issuer["email"] = tls.email
    if tls.trusted_roots:
        issuer["trusted_roots_pem_files"] = [tls.trusted_roots]
    return issuer


def tls_app(
    tls: EdgeTls, ask_url: str = "", on_demand_bases: Collection[str] = ()
) -> dict[str, Any]:
    """Caddy's ``tls`` app: one ACME issuer for every managed name, HTTP-01 only.

    HTTP-01 is answered by the edge's HTTP server, before any route (so also before the
    HTTPS redirect); TLS-ALPN-01 stays off until the HTTPS port is known to be reachable.

    Names one label under an ``on_demand_bases`` domain (the generated default-access names)
    get their certificate on demand: at the first TLS handshake for the name, and only after
    ``ask_url`` allowed it. Caddy then orders nothing for them when their routes are added
    (its automatic HTTPS defers names an on-demand policy covers). Without an ask URL nothing
    is on demand: an open on-demand policy would order a certificate for any name sent to it.
    """
    policies: list[dict[str, Any]] = []
    automation: dict[str, Any] = {"policies": policies}
    if ask_url and on_demand_bases:
        policies.append(
            {
                "subjects": [f"*.{base}" for base in sorted(on_demand_bases)],
                "issuers": [_issuer(tls)],
                "on_demand": True,
            }
        )
        automation["on_demand"] = {"ask": ask_url}
    policies.append({"issuers": [_issuer(tls)]})
    return {"automation": automation}
