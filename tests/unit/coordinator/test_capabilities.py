"""Capabilities plug into the coordinator in one place, each through the same seam."""

from pathlib import Path

from coordinator import accounts, console, retention
from coordinator.app import CAPABILITIES, create_app
from coordinator.appkeys import ENGINE_KEY, REGISTRY_KEY
from coordinator.deployments.engine import DeploymentEngine
from coordinator.dns01 import plugin as dns01
from coordinator.notifications import outcome_sources
from coordinator.settings import Settings
from shared.messages import AgentMessage
from shared.messages.typeset import unsolicited_types


def test_every_unsolicited_agent_frame_has_exactly_one_listener(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    registry = app[REGISTRY_KEY]
    claimed: list[str] = [t for listener in registry._listeners for t in listener.message_types]
    assert len(claimed) == len(set(claimed))  # add_listener also refuses a second claimant
    # hello is the handshake's and heartbeat the link's own; every other frame that answers
    # nothing belongs to a capability's listener.
    assert set(claimed) == unsolicited_types(AgentMessage) - {"hello", "heartbeat"}


def test_deployments_plug_in_like_the_others(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    engine = app[ENGINE_KEY]
    assert isinstance(engine, DeploymentEngine)
    # The engine is the first listener: it sees each link (and its inventory) first.
    assert app[REGISTRY_KEY]._listeners[0] is engine
    # One listener per capability, except those that listen to no agent link: retention (a
    # scheduled job), the console (static files), accounts (logins, sessions) and DNS-01
    # (the coordinator's own ACME orders; agents get the result as imported certificates), and
    # the outcome events (hooks on other capabilities).
    without_link = {
        accounts.install,
        console.install,
        retention.install,
        dns01.install,
        outcome_sources.install,
    }
    assert len(app[REGISTRY_KEY]._listeners) == len(CAPABILITIES) - len(without_link)
