"""The agent feature that serves ``log_open``/``log_credit``/``log_close``: one task per stream
in the feature's own task group, so a slow stream never blocks another, the link or deploys."""

import asyncio
import logging
from typing import Any

from agent.features import LinkContext
from agent.logstream import cursor
from agent.logstream.stream import LogStream
from agent.runtime import ContainerInfo, ContainerRuntime, EngineError
from shared.errors import NotFound, PlatformError, Unavailable
from shared.messages import UNSTAMPED
from shared.messages.logs import (
    LOGS_CAPABILITY,
    LOGS_COORDINATOR_TYPES,
    LogClose,
    LogCredit,
    LogOpen,
    LogOpened,
    LogSource,
)

logger = logging.getLogger(__name__)


def select_sources(found: list[ContainerInfo], deployment_id: str | None) -> list[ContainerInfo]:
    """The containers a stream reads: those of ``deployment_id``, or else those of the most
    recent deployment that has containers (replicas together), oldest first."""
    if deployment_id is not None:
        chosen = [c for c in found if c.deployment_id == deployment_id]
    elif found:
        newest = max(found, key=lambda c: c.created)
        chosen = [c for c in found if c.deployment_id == newest.deployment_id]
    else:
        chosen = []
    return sorted(chosen, key=lambda c: (c.created, c.container_id))


class LogFeature:
    """Runtime log streams over the link (see ``docs/protocol-logs.md``)."""

    def __init__(self, runtime: ContainerRuntime) -> None:
        # Containers and their logs come through the runtime seam (its engine client).
        self._api = runtime
        self._streams: dict[str, LogStream] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None

    @property
    def message_types(self) -> frozenset[str]:
        """``log_open``, ``log_credit``, ``log_close``."""
        return LOGS_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``logs.v1``."""
        return [LOGS_CAPABILITY]

    async def run(self) -> None:
        """Own the streams' task group until the daemon stops (the daemon closes the runtime)."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                await asyncio.Event().wait()
        finally:
            self._group = None

    async def attached(self, link: LinkContext) -> None:
        """Nothing per link: streams start on ``log_open``."""

    def detached(self, link: LinkContext) -> None:
        """Stop every stream of the link that went away (closing their Docker connections)."""
        for stream_id, stream in list(self._streams.items()):
            if stream.link is link:
                self._stop(stream_id)

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing of this feature waits on an error frame."""
        return False  # its frames are not answered with errors it waits for

    def receive(self, message: Any, link: LinkContext) -> None:
        """Dispatch one frame; never awaits."""
        if isinstance(message, LogOpen):
            self._spawn(message.stream_id, self._serve(message, link))
        elif isinstance(message, LogCredit):
            stream = self._streams.get(message.stream_id)
            if stream is not None and stream.link is link:
                stream.grant(message.chunks)
        elif isinstance(message, LogClose):
            stream = self._streams.get(message.stream_id)
            if stream is not None and stream.link is link:
                self._stop(message.stream_id)

    def _spawn(self, stream_id: str, work: Any) -> None:
        if self._group is None or stream_id in self._tasks:
            work.close()
            return
        task = self._group.create_task(self._guarded(stream_id, work))
        self._tasks[stream_id] = task

    def _stop(self, stream_id: str) -> None:
        task = self._tasks.get(stream_id)
        if task is not None:
            task.cancel()

    async def _guarded(self, stream_id: str, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            pass  # closed by the coordinator or the link went away; the group lives on
        except Exception:
            logger.exception("log stream %s failed", stream_id)
            stream = self._streams.get(stream_id)
            if stream is not None:
                try:
                    await stream.end("error", "the agent's log reader failed")
                except Exception:
                    logger.debug("could not report the failed stream", exc_info=True)
        finally:
            self._streams.pop(stream_id, None)
            self._tasks.pop(stream_id, None)

    async def _serve(self, request: LogOpen, link: LinkContext) -> None:
        try:
            resume = cursor.decode(request.cursor) if request.cursor else {}
            try:
                found = await self._api.log_sources(request.resource_id)
            except EngineError as exc:
                raise Unavailable(f"the container engine did not answer: {exc}") from exc
            sources = select_sources(found, request.deployment_id)
            if not sources:
                raise NotFound(
                    "the resource has no containers on this server",
                    details={"resourceId": request.resource_id},
                )
        except PlatformError as exc:
            await link.fail(request.id, exc)
            return
        stream = LogStream(
            self._api,
            link,
            request,
            sources,
            known={c.container_id for c in found},
            resume=resume,
        )
        self._streams[request.stream_id] = stream
        await link.send(
            LogOpened(
                id=UNSTAMPED,
                re=request.id,
                stream_id=request.stream_id,
                sources=[
                    LogSource(
                        container_id=c.short_id, deployment_id=c.deployment_id, running=c.running
                    )
                    for c in sources[:100]
                ],
            )
        )
        await stream.run()
