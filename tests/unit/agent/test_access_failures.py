"""The failure pages' server: evidence from Caddy's headers, the page, the reporting budget."""

import aiohttp

from agent.access_failures import REPORTS_PER_MINUTE, AccessFailures, classify
from agent.edge_routes import NO_ROUTE_ERROR, STOPPED_ERROR
from shared.messages.edge import AccessFailure

REQUEST_ID = "0b9b1a5e-8f57-4d43-9a3f-3d5f7c0e2a11"


def caddy_headers(status: str, error: str, **extra: str) -> dict[str, str]:
    return {
        "X-Berth-Request-Id": REQUEST_ID,
        "X-Berth-Status": status,
        "X-Berth-Error": error,
        "X-Berth-Host": "web.localhost",
        "X-Berth-Uri": "/a?b=<script>",
        "X-Berth-Method": "GET",
        "X-Berth-Scheme": "http",
        **extra,
    }


def test_codes_follow_the_edges_status_and_error_text() -> None:
    assert classify(404, NO_ROUTE_ERROR) == "resource_access_route_not_found"
    assert classify(503, STOPPED_ERROR) == "resource_access_resource_stopped"
    assert classify(502, "dial tcp 127.0.0.1:1: connect: connection refused") == (
        "resource_access_upstream_unavailable"
    )
    assert classify(504, "i/o timeout") == "resource_access_upstream_timeout"
    assert classify(500, "anything") == "resource_access_edge_error"


async def test_the_page_names_the_request_id_and_escapes_what_the_visitor_sent() -> None:
    pages = AccessFailures()
    dial = await pages.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"http://{dial}/a",
                headers=caddy_headers("503", STOPPED_ERROR, **{"X-Berth-Host": "<b>x</b>"}),
            ) as response:
                body = await response.text()
                assert response.status == 503
                assert response.headers["X-Berth-Request-Id"] == REQUEST_ID
            assert f"<code id=request-id>{REQUEST_ID}</code>" in body
            assert "<b>x</b>" not in body
            assert "&lt;b&gt;x&lt;/b&gt;" in body
            # Not from Caddy (no status, or a request id nobody could look up): refused.
            async with session.get(f"http://{dial}/") as response:
                assert response.status == 400
            bad_id = caddy_headers("502", "x", **{"X-Berth-Request-Id": "{nope}"})
            async with session.get(f"http://{dial}/", headers=bad_id) as response:
                assert response.status == 400
    finally:
        await pages.stop()
    [kept] = pages.ring
    assert (kept.code, kept.resource_id, kept.path) == (
        "resource_access_resource_stopped",
        None,
        "/a?b=<script>",
    )
    assert pages.take(10) == [kept]
    assert pages.take(10) == []


def test_reports_are_capped_per_minute_but_every_failure_is_kept_locally() -> None:
    pages = AccessFailures()
    item = AccessFailure.model_validate(
        {
            "requestId": REQUEST_ID,
            "observedAt": "2026-01-01T00:00:00Z",
            "code": "resource_access_route_not_found",
            "httpStatus": 404,
            "hostname": "x",
            "path": "/",
            "method": "GET",
        }
    )
    for _ in range(REPORTS_PER_MINUTE + 5):
        pages.record(item)
    assert len(pages.ring) == REPORTS_PER_MINUTE + 5
    assert pages.unreported == 5
    taken = pages.take(100)
    assert len(taken) == 100
    pages.requeue(taken)
    assert len(pages.take(1000)) == REPORTS_PER_MINUTE


async def test_a_host_routes_failure_names_the_binding_its_host_belongs_to() -> None:
    # An HTTPS host route's requests carry their resource, not which binding's name they
    # came for: the edge's host index names it (agent/edge_tls_map.py).
    pages = AccessFailures()
    bindings = {"shop.example.test": ("res_a", "dbd_1"), "other.example.test": ("res_b", "dbd_9")}
    pages.host_binding = lambda host: bindings.get(host.lower())
    dial = await pages.start()
    host_route = {"X-Berth-Resource": "res_a", "X-Berth-Route": "berth-res_a.~hosts-tls"}
    try:
        async with aiohttp.ClientSession() as session:
            for host in ("Shop.example.test", "other.example.test", "unknown.example.test"):
                headers = caddy_headers("502", "connection refused", **host_route)
                headers["X-Berth-Host"] = host
                async with session.get(f"http://{dial}/", headers=headers) as response:
                    assert response.status == 502
    finally:
        await pages.stop()
    named = [(f.domain_binding_id, f.route_id) for f in pages.ring]
    assert named == [
        ("dbd_1", "berth-res_a.dbd_1"),
        # Another resource's name, or none: the route's own tags stay.
        (None, "berth-res_a.~hosts-tls"),
        (None, "berth-res_a.~hosts-tls"),
    ]
