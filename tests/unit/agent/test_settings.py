"""AgentSettings: every BERTH_AGENT_* variable read in one place, malformed values refused."""

import pytest

from agent.edge_tls import EdgeTls, tls_app
from agent.settings import AgentSettings, SettingsError, parse_labels

NAMES = (
    "BERTH_AGENT_SAMPLE_SECONDS",
    "BERTH_AGENT_SPOOL_HOURS",
    "BERTH_AGENT_ALLOW_HOST_SHELL",
    "BERTH_AGENT_TERMINAL_IDLE_SECONDS",
    "BERTH_AGENT_RECONNECT_BASE_SECONDS",
    "BERTH_AGENT_RECONNECT_MAX_SECONDS",
    "BERTH_AGENT_EDGE_ADMIN_URL",
    "BERTH_AGENT_EDGE_LISTEN",
    "BERTH_AGENT_EXTRA_LABELS",
    "BERTH_AGENT_EDGE_TLS_LISTEN",
    "BERTH_AGENT_ACME_DIRECTORY",
    "BERTH_AGENT_ACME_EMAIL",
    "BERTH_AGENT_ACME_CA_ROOTS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_when_nothing_is_set() -> None:
    assert AgentSettings.from_env() == AgentSettings()
    assert AgentSettings().edge_admin_url == "http://127.0.0.1:2019"
    assert (AgentSettings().reconnect_base_seconds, AgentSettings().reconnect_max_seconds) == (
        1.0,
        60.0,
    )


def test_every_variable_lands_in_its_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_AGENT_RECONNECT_BASE_SECONDS", "0.05")
    monkeypatch.setenv("BERTH_AGENT_RECONNECT_MAX_SECONDS", "5")
    monkeypatch.setenv("BERTH_AGENT_EDGE_ADMIN_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BERTH_AGENT_EDGE_LISTEN", "127.0.0.1:8080")
    monkeypatch.setenv("BERTH_AGENT_EXTRA_LABELS", "berth.test=s1, team = ops ,broken,=x")
    monkeypatch.setenv("BERTH_AGENT_ALLOW_HOST_SHELL", "yes")
    settings = AgentSettings.from_env()
    assert settings.reconnect_base_seconds == 0.05
    assert settings.reconnect_max_seconds == 5.0
    assert settings.edge_admin_url == "http://127.0.0.1:9"
    assert settings.edge_listen == "127.0.0.1:8080"
    assert settings.extra_labels == {"berth.test": "s1", "team": "ops"}
    assert settings.allow_host_shell is True


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("BERTH_AGENT_RECONNECT_BASE_SECONDS", "soon", "must be a number"),
        ("BERTH_AGENT_RECONNECT_MAX_SECONDS", "-1", "at least 0"),
        ("BERTH_AGENT_SAMPLE_SECONDS", "0.5", "at least 1"),
        ("BERTH_AGENT_ALLOW_HOST_SHELL", "maybe", "1/0"),
    ],
)
def test_malformed_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=reason) as caught:
        AgentSettings.from_env()
    assert name in str(caught.value)


def test_labels_parse_as_before() -> None:
    assert parse_labels("") == {}
    assert parse_labels("a=1,b=2=3") == {"a": "1", "b": "2=3"}


def test_https_is_off_until_a_tls_listen_address_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AgentSettings.from_env().edge_tls() is None
    monkeypatch.setenv("BERTH_AGENT_EDGE_TLS_LISTEN", ":443")
    tls = AgentSettings.from_env().edge_tls()
    assert tls == EdgeTls(":443", "https://acme-v02.api.letsencrypt.org/directory", "", "")
    monkeypatch.setenv("BERTH_AGENT_ACME_DIRECTORY", "https://ca.internal/dir")
    monkeypatch.setenv("BERTH_AGENT_ACME_EMAIL", "ops@example.test")
    monkeypatch.setenv("BERTH_AGENT_ACME_CA_ROOTS", "/etc/berth/ca.pem")
    tls = AgentSettings.from_env().edge_tls()
    assert tls == EdgeTls(
        ":443", "https://ca.internal/dir", "ops@example.test", "/etc/berth/ca.pem"
    )
    issuer = tls_app(tls)["automation"]["policies"][0]["issuers"][0]
    assert issuer["ca"] == "https://ca.internal/dir"
    assert issuer["email"] == "ops@example.test"
    assert issuer["trusted_roots_pem_files"] == ["/etc/berth/ca.pem"]


def test_acme_challenges_follow_the_https_port_unless_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def challenges(listen: str) -> dict[str, object]:
        monkeypatch.setenv("BERTH_AGENT_EDGE_TLS_LISTEN", listen)
        tls = AgentSettings.from_env().edge_tls()
        assert tls is not None
        issuer = tls_app(tls)["automation"]["policies"][0]["issuers"][0]
        found: dict[str, object] = issuer["challenges"]
        return found

    # On 443 a CA can reach TLS-ALPN-01; anywhere else only HTTP-01 is offered.
    assert challenges(":443") == {"tls-alpn": {"alternate_port": 443}}
    assert challenges("127.0.0.1:8443") == {"tls-alpn": {"disabled": True}}
    monkeypatch.setenv("BERTH_AGENT_ACME_CHALLENGES", "tls-alpn-01")
    assert challenges("127.0.0.1:8443") == {
        "tls-alpn": {"alternate_port": 8443},
        "http": {"disabled": True},
    }
    monkeypatch.setenv("BERTH_AGENT_ACME_CHALLENGES", " HTTP-01 , http-01 ")
    assert challenges(":443") == {"tls-alpn": {"disabled": True}}
    monkeypatch.setenv("BERTH_AGENT_ACME_CHALLENGES", "dns-01")
    with pytest.raises(SettingsError) as caught:
        AgentSettings.from_env()
    assert "dns-01" in str(caught.value)
