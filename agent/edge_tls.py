"""HTTPS on the edge: the TLS server and Caddy's ACME settings for bound domains."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final, Literal

TLS_SERVER_NAME: Final = "berth-tls"
DEFAULT_ACME_DIRECTORY: Final = "https://acme-v02.api.letsencrypt.org/directory"
HTTP_01: Final = "http-01"
TLS_ALPN_01: Final = "tls-alpn-01"
ACME_CHALLENGES: Final = (HTTP_01, TLS_ALPN_01)

# How Caddy is told where the ask check is. Caddy 2.6 knows only ``on_demand.ask`` (a URL) and
# refuses unknown fields; newer Caddy (2.11.7 here) refuses ``ask`` ("on-demand TLS cannot be
# enabled without a permission module") and wants the ``http`` permission module. Which one
# the Caddy in front of the agent takes is learned at run time (``edge_on_demand``).
OnDemandForm = Literal["permission", "ask"]
PERMISSION: Final = "permission"
ASK: Final = "ask"


@dataclass(frozen=True)
class EdgeTls:
    """Where the edge serves HTTPS and which ACME directory issues its certificates.

    ``trusted_roots`` is a PEM file Caddy trusts for the directory's own HTTPS (a private CA
    such as Pebble); empty means the system's roots. ``challenges`` are the ACME challenge
    types Caddy may answer; None means by port (see ``enabled_challenges``).
    """

    listen: str
    directory: str = DEFAULT_ACME_DIRECTORY
    email: str = ""
    trusted_roots: str = ""
    challenges: tuple[str, ...] | None = None

    def enabled_challenges(self) -> tuple[str, ...]:
        """The challenge types in use. By default TLS-ALPN-01 only when HTTPS listens on 443:
        a CA always connects to port 443 for it, so on any other port (behind a forward, in
        tests) it could only fail, and each failed attempt counts against the CA's limits."""
        if self.challenges is not None:
            return self.challenges
        if listen_port(self.listen, 443) == 443:
            return ACME_CHALLENGES
        return (HTTP_01,)


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
    """One ACME issuer with the enabled challenges.

    HTTP-01 is answered by the edge's HTTP server, before any route (so also before the
    HTTPS redirect). TLS-ALPN-01 is answered by the HTTPS server's own listener: Caddy sees
    the challenge port in use by itself and serves the challenge certificate in the handshake.
    """
    enabled = tls.enabled_challenges()
    tls_alpn: dict[str, Any] = (
        {"alternate_port": listen_port(tls.listen, 443)}
        if TLS_ALPN_01 in enabled
        else {"disabled": True}
    )
    challenges: dict[str, Any] = {"tls-alpn": tls_alpn}
    if HTTP_01 not in enabled:
        challenges["http"] = {"disabled": True}
    issuer: dict[str, Any] = {"module": "acme", "ca": tls.directory, "challenges": challenges}
    if tls.email:
        issuer["email"] = tls.email
    if tls.trusted_roots:
        issuer["trusted_roots_pem_files"] = [tls.trusted_roots]
    return issuer


def on_demand_settings(form: OnDemandForm, ask_url: str) -> dict[str, Any]:
    """``automation.on_demand`` in ``form``: either way Caddy GETs ``ask_url?domain=NAME``
    and orders a certificate only on a 2xx answer."""
    if form == PERMISSION:
        return {"permission": {"module": "http", "endpoint": ask_url}}
    return {"ask": ask_url}


def ask_url_in(automation: Any) -> str:
    """The ask URL an ``automation`` block read from Caddy holds, in either form ("" for none)."""
    on_demand = automation.get("on_demand") if isinstance(automation, dict) else None
    if not isinstance(on_demand, dict):
        return ""
    permission = on_demand.get("permission")
    if isinstance(permission, dict) and permission.get("module") == "http":
        return str(permission.get("endpoint", ""))
    return str(on_demand.get("ask", ""))


def tls_app(
    tls: EdgeTls,
    ask_url: str = "",
    on_demand_bases: Collection[str] = (),
    form: OnDemandForm = PERMISSION,
) -> dict[str, Any]:
    """Caddy's ``tls`` app: one ACME issuer (``_issuer``) for every managed name.

    Names one label under an ``on_demand_bases`` domain (the generated default-access names)
    get their certificate on demand: at the first TLS handshake for the name, and only after
    ``ask_url`` allowed it. Caddy then orders nothing for them when their routes are added
    (its automatic HTTPS defers names an on-demand policy covers). Without an ask URL nothing
    is on demand: an open on-demand policy would order a certificate for any name sent to it.
    ``form`` is how the ask URL is written (``on_demand_settings``).
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
        automation["on_demand"] = on_demand_settings(form, ask_url)
    policies.append({"issuers": [_issuer(tls)]})
    return {"automation": automation}
