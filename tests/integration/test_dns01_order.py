"""DNS-01 against real parts: bind9 taking TSIG-signed RFC 2136 updates, Pebble validating."""

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dns.name
import pytest
from cryptography import x509

from coordinator.dns01.acme_order import order
from coordinator.dns01.rfc2136 import Dns01Failure, Target
from tests.acme_server import Pebble
from tests.bind_server import ALGORITHM, KEY_NAME, BindServer
from tests.edge_proxy import free_port

ZONE = "dns01.test"


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[BindServer]:
    server = BindServer(tmp_path / "bind", ZONE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pebble(tmp_path: Path, bind: BindServer) -> Iterator[Pebble]:
    ca = Pebble(tmp_path / "pebble", free_port(), free_port(), bind.address)
    ca.start()
    try:
        yield ca
    finally:
        ca.stop()


def _target(bind: BindServer) -> Target:
    return Target("127.0.0.1", bind.port, ZONE, KEY_NAME, ALGORITHM, bind.secret, timeout=5)


def _order(
    pebble: Pebble, target: Target, names: list[str], account_key_pem: str | None = None
) -> object:
    return order(
        directory_url=pebble.directory_url,
        ca_bundle=str(pebble.listener_ca),
        email="ops@dns01.test",
        account_key_pem=account_key_pem,
        names=names,
        target=target,
        visible_within=5,
        deadline_seconds=30,
    )


async def test_a_wildcard_and_its_apex_are_issued_over_dns01(
    bind: BindServer, pebble: Pebble
) -> None:
    names = [f"*.apps.{ZONE}", f"apps.{ZONE}"]
    issued = await asyncio.to_thread(_order, pebble, _target(bind), names)
    chain = x509.load_pem_x509_certificates(issued.certificate_chain.encode())  # type: ignore[attr-defined]
    sans = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    # Signed by this Pebble's intermediate, and the challenge records were cleaned up.
    assert "Pebble Intermediate" in chain[1].subject.rfc4514_string()
    assert bind.txt(f"_acme-challenge.apps.{ZONE}") == []


async def test_a_renewal_the_ca_answers_with_reused_authorizations_is_issued(
    bind: BindServer, tmp_path: Path
) -> None:
    # This CA hands an account back every authorization it validated before (as Let's Encrypt
    # does for 30 days): the renewal's challenges are valid already and must not be answered.
    ca = Pebble(
        tmp_path / "reusing", free_port(), free_port(), bind.address, authz_reuse_percent=100
    )
    ca.start()
    try:
        names = [f"*.apps.{ZONE}", f"apps.{ZONE}"]
        first = await asyncio.to_thread(_order, ca, _target(bind), names)
        account = first.account_key  # type: ignore[attr-defined]
        second = await asyncio.to_thread(_order, ca, _target(bind), names, account)
        assert second.certificate_chain != first.certificate_chain  # type: ignore[attr-defined]
        assert bind.txt(f"_acme-challenge.apps.{ZONE}") == []
    finally:
        ca.stop()


async def test_a_wrong_tsig_secret_is_diagnosed_and_nothing_published(
    bind: BindServer, pebble: Pebble
) -> None:
    wrong = replace(_target(bind), secret="d3JvbmcgYnV0IHdlbGwgZm9ybWVkIHNlY3JldCE=")
    with pytest.raises(Dns01Failure) as caught:
        await asyncio.to_thread(_order, pebble, wrong, [f"*.apps.{ZONE}"])
    assert caught.value.error_code == "dns_tsig_refused", caught.value
    assert caught.value.failure_phase == "dns"
    assert caught.value.retriable is False
    assert bind.txt(f"_acme-challenge.apps.{ZONE}") == []


async def test_a_server_not_authoritative_for_the_zone_is_diagnosed(
    bind: BindServer, pebble: Pebble
) -> None:
    elsewhere = replace(_target(bind), zone="other.test")
    with pytest.raises(Dns01Failure) as caught:
        await asyncio.to_thread(_order, pebble, elsewhere, ["*.apps.other.test"])
    assert caught.value.error_code == "dns_zone_not_authoritative", caught.value


async def test_a_key_the_policy_does_not_cover_is_refused(bind: BindServer) -> None:
    # The key may change TXT only: an A record is refused by the server's update policy.
    target = _target(bind)
    message = target._message()
    message.add(dns.name.from_text(f"x.{ZONE}"), 60, "A", "127.0.0.9")
    with pytest.raises(Dns01Failure) as caught:
        await asyncio.to_thread(target._update, message, "add an A record")
    assert caught.value.error_code == "dns_update_refused", caught.value


async def test_a_record_the_server_does_not_answer_is_diagnosed_with_what_it_answers(
    bind: BindServer,
) -> None:
    target = _target(bind)
    name = f"_acme-challenge.seen.{ZONE}"
    await asyncio.to_thread(target.publish, name, ["published"])
    with pytest.raises(Dns01Failure) as caught:
        await asyncio.to_thread(target.wait_visible, name, ["published", "missing"], 0.5)
    assert caught.value.error_code == "dns_txt_not_visible", caught.value
    assert caught.value.retriable is True
    assert caught.value.details["observed"] == ["published"]
    await asyncio.to_thread(target.withdraw, name, ["published"])
    assert bind.txt(name) == []
