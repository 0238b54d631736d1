"""Domain routes on the agent: Caddy JSON per binding, the label they survive in, the journal."""

import pytest

from agent.edge_protocol import domain_routes_label
from agent.edge_routes import build_domain_route, domain_route_id
from agent.journal import JournalEntry
from agent.rollout import plan_labels
from agent.runtime import DOMAINS_LABEL
from shared.messages.deploy import DomainRoute
from shared.wire import ValidationError
from tests.unit.agent.test_rollout import make_plan

APEX = DomainRoute(id="dbd_apex", domain_name="app.example.test", ownership_token="tok-1")
WWW = DomainRoute(
    id="dbd_www",
    domain_name="www.example.test",
    path_prefix="/shop",
    redirect_to="app.example.test",
    redirect_status=308,
)


def test_a_served_binding_proxies_and_answers_its_ownership_token_first() -> None:
    route = build_domain_route("res_1", APEX, ["127.0.0.1:9000"])
    assert route["@id"] == domain_route_id("res_1", "dbd_apex") == "berth-res_1.dbd_apex"
    assert route["match"] == [{"host": ["app.example.test"]}]
    tags, subroute = route["handle"]
    # The failure pages learn which resource, binding and route a failed request had.
    assert (tags["handler"], tags["berth_resource"], tags["berth_binding"]) == (
        "vars",
        "res_1",
        "dbd_apex",
    )
    proof, serve = subroute["routes"]
    assert proof["match"] == [{"path": ["/.well-known/berth-domain/tok-1"]}]
    assert proof["handle"][0]["body"] == "tok-1"
    assert serve["handle"][0]["upstreams"] == [{"dial": "127.0.0.1:9000"}]


def test_a_redirect_binding_keeps_its_status_path_and_query() -> None:
    route = build_domain_route("res_1", WWW, ["127.0.0.1:9000"])
    assert route["match"] == [{"host": ["www.example.test"], "path": ["/shop/*", "/shop"]}]
    (only,) = route["handle"][-1]["routes"]  # no token pending: no proof route
    handler = only["handle"][0]
    assert handler["status_code"] == "308"
    assert handler["headers"]["Location"] == [
        "{http.request.scheme}://app.example.test{http.request.uri}"
    ]


def test_domain_routes_survive_in_the_container_label() -> None:
    plain = make_plan()
    assert plain.route is not None
    plan = plain.model_copy(
        update={"route": plain.route.model_copy(update={"domains": [APEX, WWW]})}
    )
    labels = plan_labels(plan, 0)
    assert domain_routes_label(labels[DOMAINS_LABEL]) == [APEX, WWW]
    assert DOMAINS_LABEL not in plan_labels(make_plan(), 0)
    assert domain_routes_label("not json") == []
    assert domain_routes_label(None) == []


def test_the_journal_keeps_what_the_edge_routed() -> None:
    entry = JournalEntry("dep_1", "res_1", "web", routed_domains=["dbd_apex"])
    assert JournalEntry.from_json(entry.to_json()).routed_domains == ["dbd_apex"]
    older = entry.to_json()
    del older["routedDomains"]  # written by an agent before this field
    assert JournalEntry.from_json(older).routed_domains is None


@pytest.mark.parametrize(
    "field",
    [
        {"domainName": "{env.HOME}.example.test"},
        {"redirectTo": "app.example.test{env.HOME}"},
        {"pathPrefix": "/{env.HOME}"},
        {"domainName": "App.Example.test"},
    ],
)
def test_a_domain_route_refuses_what_caddy_would_read_as_a_placeholder(
    field: dict[str, str],
) -> None:
    with pytest.raises(ValidationError):
        _ = DomainRoute.model_validate({"id": "dbd_1", "domainName": "app.example.test", **field})
