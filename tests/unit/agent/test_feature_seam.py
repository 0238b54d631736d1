"""Every agent capability, deployments included, plugs into the link through ``AgentFeature``."""

from pathlib import Path
from typing import cast

from agent.connection import Link, ReconnectPolicy
from agent.deploy_feature import DeploymentFeature
from agent.deployments import DeploymentManager
from agent.dispatch import Dispatcher
from agent.features import AgentFeature, LinkContext
from agent.identity import AgentKey
from agent.runtime import ContainerRuntime
from agent.state import Enrollment
from shared.messages import (
    COORDINATOR_MESSAGE_TYPES,
    DEPLOY_CAPABILITY,
    LOGS_CAPABILITY,
    AgentMessage,
    DeployCancel,
    IdSequence,
)
from shared.messages.backup_dirs import BACKUP_DIRS_COORDINATOR_TYPES
from shared.messages.backups import BACKUPS_COORDINATOR_TYPES
from shared.messages.certificates import CERTIFICATES_COORDINATOR_TYPES
from shared.messages.dependencies import DEPENDENCIES_COORDINATOR_TYPES
from shared.messages.edge import EDGE_COORDINATOR_TYPES
from shared.messages.logs import LOGS_COORDINATOR_TYPES
from shared.messages.monitoring import MONITORING_COORDINATOR_TYPES
from shared.messages.tasks import TASKS_COORDINATOR_TYPES
from shared.messages.terminal import TERMINAL_COORDINATOR_TYPES
from shared.messages.volumes import VOLUMES_COORDINATOR_TYPES
from tests.fakes.runtime import FakeEdge, FakeRuntime


class Advertiser:
    """A feature that only advertises a capability."""

    message_types: frozenset[str] = frozenset()
    capabilities = [LOGS_CAPABILITY]

    async def run(self) -> None:
        """Nothing to run."""

    async def attached(self, link: LinkContext) -> None:
        """Nothing to attach."""

    def detached(self, link: LinkContext) -> None:
        """Nothing to detach."""

    def receive(self, message: object, link: LinkContext) -> None:
        """Consumes nothing."""

    def refused(self, re: int, error: object, link: LinkContext) -> bool:
        return False


def _deployments(tmp_path: Path) -> DeploymentFeature:
    return DeploymentFeature(DeploymentManager(FakeRuntime(), FakeEdge(), tmp_path))


def test_hello_advertises_the_features_capabilities_in_their_order(tmp_path: Path) -> None:
    enrollment = Enrollment("http://127.0.0.1:9", "srv_1", "web-1", "fp", None)
    features = cast(list[AgentFeature], [_deployments(tmp_path), Advertiser()])
    runtime = cast(ContainerRuntime, object())
    link = Link(enrollment, AgentKey.generate(), runtime, tmp_path, ReconnectPolicy(), features)
    assert link._capabilities() == [DEPLOY_CAPABILITY, LOGS_CAPABILITY]
    # Without the feature the agent does not claim to deploy.
    bare = Link(enrollment, AgentKey.generate(), runtime, tmp_path, ReconnectPolicy(), [])
    assert bare._capabilities() == []


def test_features_and_the_link_split_the_coordinator_frames_between_them(tmp_path: Path) -> None:
    link_own = {"challenge", "welcome", "connectivity_check", "error"}
    parts = [
        _deployments(tmp_path).message_types,
        LOGS_COORDINATOR_TYPES,
        MONITORING_COORDINATOR_TYPES,
        TERMINAL_COORDINATOR_TYPES,
        DEPENDENCIES_COORDINATOR_TYPES,
        VOLUMES_COORDINATOR_TYPES,
        CERTIFICATES_COORDINATOR_TYPES,
        TASKS_COORDINATOR_TYPES,
        EDGE_COORDINATOR_TYPES,
        BACKUPS_COORDINATOR_TYPES,
        BACKUP_DIRS_COORDINATOR_TYPES,
    ]
    claimed = [t for part in parts for t in part]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) | link_own == COORDINATOR_MESSAGE_TYPES


async def test_the_dispatcher_hands_deploy_frames_to_the_feature(tmp_path: Path) -> None:
    sent: list[AgentMessage] = []

    async def send(message: AgentMessage) -> None:
        sent.append(message)

    taken: list[object] = []

    class Recording(DeploymentFeature):
        def receive(self, message: object, link: LinkContext) -> None:
            taken.append(message)

    feature = Recording(DeploymentManager(FakeRuntime(), FakeEdge(), tmp_path))
    link = LinkContext(send=send, ids=IdSequence())
    dispatcher = Dispatcher(FakeRuntime(), tmp_path, features=[feature], link=link)
    cancel = DeployCancel(id=3, deployment_id="dep_1")
    assert dispatcher.deliver(cancel)
    assert taken == [cancel]
    assert sent == []
