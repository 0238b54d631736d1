"""The agent learns which on-demand ask setting its Caddy takes from what Caddy says and holds."""

from typing import Any

import pytest

from agent.edge_on_demand import AskForm
from agent.edge_tls import ASK, PERMISSION, OnDemandForm, on_demand_settings
from shared.errors import RuntimeFailed

URL = "http://127.0.0.1:1234/ask"
PATH = "/config/apps/tls/automation"
# What each Caddy answers (through admin_call) when it refuses the form it does not take.
REFUSED_BY_2_6: dict[OnDemandForm, str] = {
    PERMISSION: 'edge proxy refused POST /config/apps/tls/automation: HTTP 500 {"error":"loading '
    "new config: loading http app module: provision http: getting tls app: loading tls app "
    'module: decoding module config: tls: json: unknown field \\"permission\\""}'
}
REFUSED_BY_2_11: dict[OnDemandForm, str] = {
    ASK: 'edge proxy refused POST /config/apps/tls/automation: HTTP 400 {"error":"loading new '
    "config: loading tls app module: provision tls: provisioning automation policy 0: on-demand "
    'TLS cannot be enabled without a permission module to prevent abuse"}'
}


class FakeCaddy:
    """An admin API that refuses one form of the ask setting with that Caddy's message."""

    def __init__(self, refusals: dict[OnDemandForm, str]) -> None:
        self.refusals = refusals
        self.writes: list[Any] = []
        self.held: Any = None

    async def __call__(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        assert (method, path) == ("POST", PATH)
        self.writes.append(body)
        for form, message in self.refusals.items():
            if body == build(form):
                raise RuntimeFailed(message)
        self.held = body


def build(form: OnDemandForm) -> dict[str, Any]:
    return {"on_demand": on_demand_settings(form, URL)}


@pytest.mark.parametrize(
    ("refusals", "taken"), [(REFUSED_BY_2_6, ASK), (REFUSED_BY_2_11, PERMISSION)]
)
async def test_the_form_caddy_takes_is_found_once_and_remembered(
    refusals: dict[OnDemandForm, str], taken: OnDemandForm
) -> None:
    caddy, form = FakeCaddy(refusals), AskForm()
    await form.write(caddy, PATH, build)
    assert (form.form, caddy.held) == (taken, build(taken))
    tries = len(caddy.writes)
    await form.write(caddy, PATH, build)
    assert caddy.writes[tries:] == [build(taken)]  # no refused try the second time


async def test_a_replaced_caddy_that_refuses_the_remembered_form_switches_it_back() -> None:
    form = AskForm()
    await form.write(FakeCaddy(REFUSED_BY_2_6), PATH, build)
    assert form.form == ASK
    newer = FakeCaddy(REFUSED_BY_2_11)
    await form.write(newer, PATH, build)
    assert (form.form, newer.writes) == (PERMISSION, [build(ASK), build(PERMISSION)])


async def test_any_other_refusal_is_raised_and_changes_nothing() -> None:
    form = AskForm()
    caddy = FakeCaddy({ASK: 'HTTP 400 {"error":"unknown field \\"policies\\""}'})
    with pytest.raises(RuntimeFailed, match="policies"):
        await form.write(caddy, PATH, build)
    assert (form.form, caddy.writes) == (ASK, [build(ASK)])


def test_what_caddy_holds_tells_the_form_without_a_write() -> None:
    form = AskForm()
    assert (form.holds(build(ASK), build), form.form) == (True, ASK)
    assert (form.holds(build(PERMISSION), build), form.form) == (True, PERMISSION)
    elsewhere = {"on_demand": {"ask": "http://elsewhere/"}}
    assert (form.holds(elsewhere, build), form.form) == (False, PERMISSION)
