"""On-demand TLS on the agent: Caddy's automation policy and the loopback ask endpoint."""

import aiohttp

from agent.edge_ask import ASK_PATH, OnDemandAsk
from agent.edge_tls import ASK, PERMISSION, EdgeTls, ask_url_in, tls_app


def test_without_an_ask_url_nothing_is_on_demand() -> None:
    automation = tls_app(EdgeTls(":443"), "", ["apps.example.com"])["automation"]
    assert "on_demand" not in automation
    assert [sorted(p) for p in automation["policies"]] == [["issuers"]]


def test_generated_names_get_an_on_demand_policy_before_the_catch_all() -> None:
    ask = "http://127.0.0.1:1234" + ASK_PATH
    automation = tls_app(EdgeTls(":443"), ask, {"b.example.org", "apps.example.com"})["automation"]
    on_demand, catch_all = automation["policies"]
    assert on_demand["subjects"] == ["*.apps.example.com", "*.b.example.org"]
    assert on_demand["on_demand"] is True
    assert on_demand["issuers"] == catch_all["issuers"]
    assert "subjects" not in catch_all
    assert "on_demand" not in catch_all
    assert automation["on_demand"] == {"permission": {"module": "http", "endpoint": ask}}
    assert ask_url_in(automation) == ask


def test_caddy_2_6_s_form_names_the_ask_url_itself() -> None:
    ask = "http://127.0.0.1:1234" + ASK_PATH
    automation = tls_app(EdgeTls(":443"), ask, {"apps.example.com"}, ASK)["automation"]
    assert automation["on_demand"] == {"ask": ask}
    assert ask_url_in(automation) == ask
    # Only the on-demand settings differ between the two forms.
    other = tls_app(EdgeTls(":443"), ask, {"apps.example.com"}, PERMISSION)["automation"]
    assert other["policies"] == automation["policies"]
    assert ask_url_in({"policies": []}) == ""


async def test_the_ask_endpoint_allows_only_what_the_predicate_allows() -> None:
    allowed = {"web-production-shop.apps.example.com"}
    ask = OnDemandAsk(allowed.__contains__)
    url = await ask.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        assert await ask.start() == url  # started once
        async with aiohttp.ClientSession() as session:
            for name, status in (
                ("web-production-shop.apps.example.com", 200),
                ("WEB-production-shop.apps.example.com.", 200),  # Caddy may send any case
                ("other.apps.example.com", 403),
                ("", 403),
            ):
                async with session.get(url, params={"domain": name}) as response:
                    assert response.status == status, name
            async with session.get(url) as response:
                assert response.status == 403
    finally:
        await ask.stop()
    assert ask.url == ""
