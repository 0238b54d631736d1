"""The forced renewal on a Caddy that keeps certificates cached across config loads: which
Caddy it is (learnt from the probe field's refusal), and the skip-then-manage eviction."""

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.certificates.renewal import ForcedRenewals, policy_id
from shared.messages.certificates import CertificateObservation

NAME = "shop.example.test"
ISSUER = {"module": "acme", "ca": "https://ca.test/dir"}
REFUSED_26 = (
    "loading new config: loading tls app module: decoding module config: tls: json: "
    'unknown field "reuse_private_keys"'
)


def cert() -> CertificateObservation:
    issued = datetime.now(UTC) - timedelta(days=10)
    return CertificateObservation(
        domain_name=NAME,
        issuer="Pebble Intermediate CA",
        subject_alternative_names=[NAME],
        not_before=issued,
        not_after=issued + timedelta(days=90),
        fingerprint="ab" * 32,
        key_algorithm="ECDSA-P256",
    )


class Caddy:
    """A config tree for the paths these steps use; records writes and the config each one
    leaves (every write is a config load in Caddy)."""

    def __init__(self, *, knows_probe: bool) -> None:
        self.knows_probe = knows_probe
        self.servers: dict[str, Any] = {
            "berth": {"automatic_https": {"disable": True}},
            "berth-tls": {"automatic_https": {"disable_redirects": True}},
            "other": {"automatic_https": {"skip_certificates": ["held.example.test"]}},
            "bare": {},
        }
        self.policies: list[Any] = [{"issuers": [ISSUER]}]
        self.writes: list[tuple[str, str, Any]] = []
        self.loads: list[dict[str, Any]] = []

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if method == "GET":
            return self._get(path)
        self.writes.append((method, path, body))
        if path == "/config/apps/tls/automation/policies/0":
            if "reuse_private_keys" in body and not self.knows_probe:
                return 500, {"error": REFUSED_26}
            self.policies.insert(0, body)
        elif path.startswith("/id/"):
            self.policies = [p for p in self.policies if p.get("@id") != path[4:]]
        else:
            parts = path.removeprefix("/config/apps/http/servers/").split("/")
            auto = self.servers[parts[0]].setdefault("automatic_https", {})
            if parts[1:] == ["automatic_https"]:
                auto.update(body)
            else:
                auto["skip_certificates"] = body
        self.loads.append(copy.deepcopy(self.servers))
        return 200, None

    async def edit(self, path: str, change: Callable[[Any], Any]) -> None:
        """A read and a write of one server in one step, as ``CaddyAdmin.edit``."""
        status, held = self._get(path)
        if status != 200:
            raise OSError(f"Caddy refused: {held}")
        written = change(held)
        self.writes.append(("PATCH", path, written))
        self.servers[path.removeprefix("/config/apps/http/servers/")] = written
        self.loads.append(copy.deepcopy(self.servers))

    def _get(self, path: str) -> tuple[int, Any]:
        if path == "/config/apps/tls/automation/policies":
            return 200, copy.deepcopy(self.policies)
        node: Any = {"config": {"apps": {"http": {"servers": self.servers}}}}
        for part in path.strip("/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return 404, {"error": "invalid traversal path"}
            node = node[part]
        return 200, copy.deepcopy(node)


def skipping(servers: dict[str, Any]) -> set[str]:
    """The servers that skip NAME in a recorded config."""
    return {
        key
        for key, server in servers.items()
        if NAME in server.get("automatic_https", {}).get("skip_certificates", [])
    }


async def test_a_caddy_that_knows_the_probe_field_gets_the_name_evicted_after_the_policy() -> None:
    caddy = Caddy(knows_probe=True)
    renewals = ForcedRenewals()
    renewals.want([NAME])
    await renewals.step(caddy, {NAME: cert()})  # type: ignore[arg-type]
    method, path, policy = caddy.writes[0]
    assert (method, path) == ("PUT", "/config/apps/tls/automation/policies/0")
    assert policy["@id"] == policy_id(NAME)
    assert policy["reuse_private_keys"] is False
    # One load skips the name on each server that manages it, the following ones manage it
    # again, with the renewal policy in force all along.
    after_policy = caddy.loads[1:]
    assert skipping(after_policy[0]) == {"bare"}
    assert skipping(after_policy[2]) == {"bare", "berth-tls", "other"}
    assert skipping(after_policy[-1]) == set()
    assert len(after_policy) == 6
    assert caddy.policies[0]["@id"] == policy_id(NAME)
    # What other servers skipped is kept; the edge's own names too.
    assert caddy.servers["other"]["automatic_https"]["skip_certificates"] == ["held.example.test"]
    assert caddy.servers["berth"]["automatic_https"] == {"disable": True}


async def test_caddy_26_refusing_the_probe_field_gets_the_plain_policy_and_no_eviction() -> None:
    caddy = Caddy(knows_probe=False)
    renewals = ForcedRenewals()
    renewals.want([NAME])
    await renewals.step(caddy, {NAME: cert()})  # type: ignore[arg-type]
    [(_, _, probe), (method, path, policy)] = caddy.writes
    assert "reuse_private_keys" in probe
    assert (method, path) == ("PUT", "/config/apps/tls/automation/policies/0")
    assert "reuse_private_keys" not in policy
    assert [p.get("@id") for p in caddy.policies] == [policy_id(NAME), None]
    assert all(skipping(load) == set() for load in caddy.loads)

    # Learnt once: the next renewal writes the plain policy straight away.
    caddy.writes.clear()
    await renewals.step(caddy, {NAME: cert().model_copy(update={"fingerprint": "cd" * 32})})  # type: ignore[arg-type]
    renewals.want([NAME])
    await renewals.step(caddy, {NAME: cert()})  # type: ignore[arg-type]
    puts = [body for method, _, body in caddy.writes if method == "PUT"]
    assert len(puts) == 1
    assert "reuse_private_keys" not in puts[0]


async def test_a_refusal_for_another_reason_is_an_error_and_teaches_nothing() -> None:
    class Refusing(Caddy):
        async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
            if method == "PUT":
                self.writes.append((method, path, body))
                return 400, {"error": "loading new config: storage is read-only"}
            return await super().call(method, path, body)

    caddy = Refusing(knows_probe=False)
    renewals = ForcedRenewals()
    renewals.want([NAME])
    with pytest.raises(OSError, match="read-only"):
        await renewals.step(caddy, {NAME: cert()})  # type: ignore[arg-type]
    assert len(caddy.writes) == 1  # no fallback write on a refusal that does not name the field


async def test_a_failed_unskip_is_retried_at_the_next_step_and_keeps_the_edges_names() -> None:
    class Flaky(Caddy):
        fail_patch = True

        async def edit(self, path: str, change: Callable[[Any], Any]) -> None:
            # What the change would write (nothing to write raises here as it would there).
            changed = change(self._get(path)[1])
            unskip = NAME not in changed["automatic_https"]["skip_certificates"]
            if unskip and self.fail_patch:
                self.fail_patch = False
                raise OSError("Caddy's admin API failed: connection reset")
            await super().edit(path, change)

    caddy = Flaky(knows_probe=True)
    caddy.servers["berth-tls"]["automatic_https"]["skip_certificates"] = ["held.example.test"]
    renewals = ForcedRenewals()
    renewals.want([NAME])
    with pytest.raises(OSError, match="connection reset"):
        await renewals.step(caddy, {NAME: cert()})  # type: ignore[arg-type]
    assert skipping(caddy.loads[-1]) == {"bare", "berth-tls", "other"}
    assert renewals.busy
    # The next step (the certificate not renewed yet) manages the name again everywhere.
    await renewals.step(caddy, {NAME: cert()})  # type: ignore[arg-type]
    assert skipping(caddy.loads[-1]) == set()
    assert caddy.servers["berth-tls"]["automatic_https"]["skip_certificates"] == [
        "held.example.test"
    ]
    assert caddy.servers["bare"]["automatic_https"]["skip_certificates"] == []
    assert caddy.policies[0]["@id"] == policy_id(NAME)  # the renewal policy stays meanwhile
