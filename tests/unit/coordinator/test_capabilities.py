"""Capabilities plug into the coordinator in one place, each through the same seam."""

from pathlib import Path

from coordinator.app import CAPABILITIES, create_app
from coordinator.appkeys import ENGINE_KEY, REGISTRY_KEY
from coordinator.deployments.engine import DeploymentEngine
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
    # At most one listener per capability: retention (a scheduled job) listens to no link.
    assert len(app[REGISTRY_KEY]._listeners) == len(CAPABILITIES) - 1
