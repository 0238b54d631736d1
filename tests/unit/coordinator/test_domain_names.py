"""Domain-name normal form and resolver settings (pure rules; the API tests cover the envelope)."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from coordinator.cli import main
from coordinator.domains.dns_check import parse_resolver
from coordinator.domains.names import normalize_domain, normalize_path_prefix
from coordinator.settings import Settings
from shared.errors import InvalidRequest
from shared.version import EXIT_FATAL


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("App.Example.COM", "app.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
        (".".join(["a" * 61] * 4), ".".join(["a" * 61] * 4)),  # 247 characters
    ],
)
def test_valid_names_take_their_normal_form(raw: str, normal: str) -> None:
    assert normalize_domain(raw) == normal


@pytest.mark.parametrize(
    "raw",
    ["*.example.com", "example.com.", "10.0.0.1", "::1", "com", "a..b", "a_b.example", "x.123"],
)
def test_invalid_names_are_refused(raw: str) -> None:
    with pytest.raises(InvalidRequest):
        _ = normalize_domain(raw)


@pytest.mark.parametrize(
    ("raw", "normal"), [(None, "/"), ("/", "/"), ("/api/", "/api"), ("/a/b", "/a/b")]
)
def test_path_prefixes(raw: str | None, normal: str) -> None:
    assert normalize_path_prefix(raw) == normal


@pytest.mark.parametrize("raw", ["api", "/a/../b", "/a?x=1", "/a#f", "//a"])
def test_bad_path_prefixes(raw: str) -> None:
    with pytest.raises(InvalidRequest):
        _ = normalize_path_prefix(raw)


def test_resolver_addresses() -> None:
    assert parse_resolver("192.0.2.53") == ("192.0.2.53", 53)
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver("[2001:db8::53]:5353") == ("2001:db8::53", 5353)
    assert parse_resolver("2001:db8::53") == ("2001:db8::53", 53)


@pytest.mark.parametrize("raw", ["dns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1]x"])
def test_a_bad_resolver_setting_stops_start_up(raw: str) -> None:
    with pytest.raises(ValidationError):
        _ = Settings(data_dir=Path("/nonexistent"), dns_resolver=raw)


def test_serve_refuses_a_bad_dns_resolver_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path / "data"), "--dns-resolver", "dns.example"]
    )
    assert result.exit_code == EXIT_FATAL, result.output
    assert "invalid settings" in result.output
    assert not (tmp_path / "data").exists()
