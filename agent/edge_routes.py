"""Caddy JSON for Berth's routes, redirects, failure-page error routes and the fallback route."""

from typing import Any

from shared.messages.deploy import DomainRoute


def route_id(resource_id: str) -> str:
    """The ``@id`` of a resource's route in Caddy's config."""
    return f"berth-{resource_id}"


def domain_route_id(resource_id: str, binding_id: str) -> str:
    """The ``@id`` of one domain binding's route; prefixed by its resource's route id."""
    return f"{route_id(resource_id)}.{binding_id}"


def _match(hostnames: list[str], path_prefix: str) -> dict[str, Any]:
    match: dict[str, Any] = {"host": list(hostnames)}
    if path_prefix and path_prefix != "/":
        match["path"] = [path_prefix.rstrip("/") + "/*", path_prefix.rstrip("/")]
    return match


STOPPED_ERROR = "berth: the resource is stopped"
NO_ROUTE_ERROR = "berth: no route for this address"
FALLBACK_ROUTE_ID = "berth-edge-fallback"
# Idle connections Caddy keeps per upstream (its own default when keep_alive is not named).
UPSTREAM_IDLE_CONNECTIONS = 32
TLS_FALLBACK_ROUTE_ID = "berth-edge-fallback-tls"
# What Caddy tells the failure pages about a request it could not serve (headers it sets
# itself, so a visitor's own X-Berth-* headers are overwritten, never believed).
_FAILURE_HEADERS = {
    "X-Berth-Request-Id": ["{http.request.uuid}"],
    "X-Berth-Status": ["{http.error.status_code}"],
    "X-Berth-Error": ["{http.error.message}"],
    "X-Berth-Host": ["{http.request.host}"],
    "X-Berth-Uri": ["{http.request.uri}"],
    "X-Berth-Method": ["{http.request.method}"],
    "X-Berth-Scheme": ["{http.request.scheme}"],
    "X-Berth-Resource": ["{http.vars.berth_resource}"],
    "X-Berth-Binding": ["{http.vars.berth_binding}"],
    "X-Berth-Route": ["{http.vars.berth_route}"],
}


def failure_errors(dial: str) -> dict[str, Any]:
    """A server's ``errors`` block: every failed request goes to the agent's failure pages."""
    return {
        "routes": [
            {
                "handle": [
                    {
                        "handler": "reverse_proxy",
                        "upstreams": [{"dial": dial}],
                        "headers": {"request": {"set": _FAILURE_HEADERS}},
                    }
                ]
            }
        ]
    }


def fallback_route(route_id_: str = FALLBACK_ROUTE_ID) -> dict[str, Any]:
    """The last route of a server: a host nothing routes is a 404 failure page."""
    return {
        "@id": route_id_,
        "handle": [{"handler": "error", "status_code": 404, "error": NO_ROUTE_ERROR}],
    }


def tag(resource_id: str, route_id_: str, binding_id: str = "") -> dict[str, Any]:
    """The ``vars`` handler naming, for the failure pages, which resource, binding and route
    a failed request had (placeholders are expanded: the host map's entries set them)."""
    return {
        "handler": "vars",
        "berth_resource": resource_id,
        "berth_binding": binding_id,
        "berth_route": route_id_,
    }


def proxy(upstreams: list[str]) -> dict[str, Any]:
    """The proxy to ``upstreams`` (dials; placeholders are expanded per request), or the
    stopped resource's 503 when there are none."""
    if not upstreams:
        # A resource whose containers are all stopped: 503 (it is unavailable on purpose),
        # not the 502 of a proxy that cannot reach a container that should be there.
        return {"handler": "error", "status_code": 503, "error": STOPPED_ERROR}
    # No retries across upstreams and no passive health: a failing upstream shows up as a 502
    # instead of being hidden behind another attempt. Idle upstream connections close after
    # 10 s: every config change gives each route a new connection pool, and Caddy (2.6) leaves
    # the old pools' idle connections open for their whole idle timeout (2 min by default),
    # which with many routes and frequent changes runs Caddy out of file descriptors.
    # Naming ``keep_alive`` replaces Caddy's whole default block, whose 32 idle connections
    # per upstream would otherwise fall to Go's default of 2: with more concurrent visitors
    # than that, most proxied requests opened a new upstream connection (bench/README.md).
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": u} for u in upstreams],
        "transport": {
            "protocol": "http",
            "keep_alive": {
                "idle_timeout": 10_000_000_000,
                "max_idle_conns_per_host": UPSTREAM_IDLE_CONNECTIONS,
            },
        },
    }


def build_route(
    resource_id: str, hostnames: list[str], path_prefix: str, upstreams: list[str]
) -> dict[str, Any]:
    """The Caddy JSON for one resource's route."""
    return {
        "@id": route_id(resource_id),
        "match": [_match(hostnames, path_prefix)],
        "handle": [tag(resource_id, route_id(resource_id)), proxy(upstreams)],
        "terminal": True,
    }


def _redirect(location: str, status: int) -> dict[str, Any]:
    return {
        "handler": "static_response",
        "status_code": str(status),
        "headers": {"Location": [location]},
    }


def _binding_route(
    resource_id: str, route_id_: str, domain: DomainRoute, handler: dict[str, Any]
) -> dict[str, Any]:
    routes: list[dict[str, Any]] = []
    if domain.ownership_token is not None:
        # The ownership proof is answered before any redirect, or it could never be fetched.
        routes.append(
            {
                "match": [{"path": [f"/.well-known/berth-domain/{domain.ownership_token}"]}],
                "handle": [
                    {
                        "handler": "static_response",
                        "status_code": "200",
                        "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
                        "body": domain.ownership_token,
                    }
                ],
                "terminal": True,
            }
        )
    routes.append({"handle": [handler]})
    return {
        "@id": route_id_,
        "match": [_match([domain.domain_name], domain.path_prefix)],
        "handle": [
            tag(resource_id, route_id_, domain.id),
            {"handler": "subroute", "routes": routes},
        ],
        "terminal": True,
    }


def build_domain_route(
    resource_id: str, domain: DomainRoute, upstreams: list[str]
) -> dict[str, Any]:
    """The Caddy JSON for one domain binding: proxy to the resource, or redirect.

    A redirect keeps the scheme, path and query (``www`` -> apex keeps the visitor's page).
    """
    handler = (
        _redirect(
            f"{{http.request.scheme}}://{domain.redirect_to}{{http.request.uri}}",
            domain.redirect_status or 301,
        )
        if domain.redirect_to is not None
        else proxy(upstreams)
    )
    return _binding_route(resource_id, domain_route_id(resource_id, domain.id), domain, handler)


def build_https_redirect_route(
    resource_id: str, domain: DomainRoute, https_port: int
) -> dict[str, Any]:
    """The plain-HTTP side of a binding served over HTTPS: a permanent redirect to HTTPS.

    The ownership token still answers on HTTP; ACME's HTTP-01 challenge is answered by Caddy
    before any route.
    """
    route_id_ = domain_route_id(resource_id, domain.id) + ".http"
    return _binding_route(resource_id, route_id_, domain, https_redirect(https_port))


def https_redirect(https_port: int) -> dict[str, Any]:
    """The handler sending a plain-HTTP request to the same host and URI over HTTPS (308)."""
    port = "" if https_port == 443 else f":{https_port}"
    return _redirect(f"https://{{http.request.host}}{port}{{http.request.uri}}", 308)
