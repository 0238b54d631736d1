"""The deployments feature: plans, cancels, result acks, runtime control and probes plug into the
link through the same seam as logs, terminals and monitoring (``agent.features``)."""

import asyncio
import logging
from typing import Any, assert_never

from agent.deployments import DeploymentManager
from agent.features import LinkContext, Send, reply_or_error
from shared.errors import PlatformError
from shared.messages import (
    DEPLOY_CAPABILITY,
    DEPLOY_COORDINATOR_TYPES,
    UNSTAMPED,
    DeployAccepted,
    DeployCancel,
    DeployCancelAck,
    DeploymentsCoordinatorMessage,
    DeployPlan,
    DeployResultAck,
    IdSequence,
    ResourceProbe,
    RuntimeControl,
)

logger = logging.getLogger(__name__)


class DeploymentFeature:
    """Serves the deployment frames; the manager it wraps outlives every link.

    On each link the manager sends the inventory first, then replays unacknowledged progress
    and results from its journal (see ``docs/protocol-deploy.md``).
    """

    def __init__(self, manager: DeploymentManager) -> None:
        self.manager = manager
        # Requests of each link, so none is lost to the garbage collector while it runs.
        self._requests: set[asyncio.Task[None]] = set()

    @property
    def message_types(self) -> frozenset[str]:
        """``deploy_plan``, ``deploy_cancel``, ``deploy_result_ack``, ``runtime_control``,
        ``resource_probe``."""
        return DEPLOY_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``deploy.v1``."""
        return [DEPLOY_CAPABILITY]

    async def run(self) -> None:
        """Reconcile the journal and host rollouts until the daemon stops."""
        try:
            await self.manager.run()
        finally:
            for task in list(self._requests):
                task.cancel()

    async def attached(self, link: LinkContext) -> None:
        """Send the inventory, then replay what the coordinator has not acknowledged."""
        await self.manager.attach(link.send, link.ids)

    def detached(self, link: LinkContext) -> None:
        """Progress and results wait in the journal for the next link."""
        self.manager.detach(link.send)

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing of this feature waits on an error frame (a refused result is replayed)."""
        return False

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer the request in its own task, so a slow one never blocks the reader."""
        task = asyncio.get_running_loop().create_task(self._answer(message, link))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _answer(self, message: DeploymentsCoordinatorMessage, link: LinkContext) -> None:
        try:
            await self.handle(message, link.send, link.ids)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The link closed under the reply: the coordinator asks again on the next link.
            logger.debug("could not answer %s (%s): %s", message.id, message.type, exc)

    async def handle(
        self, message: DeploymentsCoordinatorMessage, send: Send, ids: IdSequence
    ) -> None:
        """Answer one request with exactly one reply: its result or an error frame."""
        await reply_or_error(message.id, message.type, self._handle(message, send, ids), send)

    async def _handle(
        self, message: DeploymentsCoordinatorMessage, send: Send, ids: IdSequence
    ) -> None:
        manager = self.manager
        match message:
            case DeployPlan():
                already_known, outcome = await manager.accept(message)
                await send(
                    DeployAccepted(
                        id=UNSTAMPED,
                        re=message.id,
                        deployment_id=message.deployment_id,
                        already_known=already_known,
                        outcome=outcome,
                        accepted_at=manager.accepted_at(message.deployment_id),
                    )
                )
            case DeployCancel():
                state = manager.cancel(message.deployment_id)
                await send(
                    DeployCancelAck(
                        id=UNSTAMPED,
                        re=message.id,
                        deployment_id=message.deployment_id,
                        state=state,
                    )
                )
            case DeployResultAck():
                # An ack is itself a reply: nothing is sent back.
                await manager.acknowledge(message.deployment_id)
            case RuntimeControl():
                await send(await manager.control(message, ids))
            case ResourceProbe():
                await send(await manager.probe(message, ids))
            case _:
                assert_never(message)
