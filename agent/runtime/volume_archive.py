"""Engine calls that read a Docker named volume as a tar stream and write one back, streamed.

Both go through a helper container that is created and never started (so any local image
serves): the engine's archive API (``GET``/``PUT /containers/{id}/archive``) reads and writes
the volumes mounted into it. A backup mounts the volume read-only. A restore first writes the
whole stream into a staging volume; only when every byte arrived (the coordinator checked the
artifact's checksum) is the target volume emptied and filled from the staging volume. A volume
no container names is removed and created again with its labels; one that containers name
(the engine will not remove it) is emptied by a short-lived container of their image, with
the running ones stopped for the restore and started again after it.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final

from agent.http_client import Response
from agent.runtime import MANAGED_LABEL, EngineError
from agent.runtime.engine import EngineClient, quoted
from agent.runtime.tar_census import TarCensus
from shared.messages import VolumeManifest

_JSON: Final = {"Content-Type": "application/json"}
_TAR: Final = {"Content-Type": "application/x-tar"}
# Where the helper mounts the volume; archive entries are named ``volume/...``.
MOUNT_POINT: Final = "/volume"
HELPER_LABEL: Final = "berth.volume-helper"
_COPY_CHUNK: Final = 256 * 1024
# How long a discarded restore waits for its staging volume to be free.
_DISCARD_SECONDS: Final = 10.0

logger = logging.getLogger(__name__)


class VolumeHelper:
    """A created, never started container with one volume mounted (removed by ``remove``)."""

    def __init__(self, api: EngineClient, name: str) -> None:
        self._api = api
        self.name = name

    async def remove(self) -> None:
        """Remove the helper (already gone is fine)."""
        with contextlib.suppress(EngineError):
            await self._api.read("DELETE", f"/containers/{quoted(self.name)}", {"force": "1"})


class ArchiveStream:
    """One volume being read: ``read`` returns its next tar bytes, ``b''`` at the end."""

    def __init__(
        self,
        response: Response,
        helper: VolumeHelper,
        stopped: list[str],
        ops: "VolumeArchiveOps",
    ) -> None:
        self._response = response
        self._helper = helper
        self._stopped = stopped
        self._ops = ops

    async def read(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the archive."""
        try:
            return await self._response.read(limit)
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"the volume archive broke off: {exc!r}") from exc

    async def aclose(self) -> None:
        """Stop reading, remove the helper, start the containers stopped for the copy."""
        self._response.close()
        await self._helper.remove()
        await self._ops.start(self._stopped)


class VolumeArchiveOps:
    """Volume archives through the agent's one engine client."""

    def __init__(self, api: EngineClient, extra_labels: dict[str, str] | None = None) -> None:
        self._api = api
        self._labels = {HELPER_LABEL: "true", **(extra_labels or {})}
        self._extra = dict(extra_labels or {})

    async def _image(self) -> str:
        # The helper never runs: any image present on the host serves as its root.
        images = await self._api.json("GET", "/images/json")
        for image in images or []:
            tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
            if tags:
                return str(tags[0])
            if image.get("Id"):
                return str(image["Id"])
        raise EngineError("no image on this host to create the volume helper from")

    async def _volume(self, name: str) -> dict[str, Any] | None:
        try:
            info = await self._api.json("GET", f"/volumes/{quoted(name)}")
        except EngineError as exc:
            if "404" in str(exc) or "no such volume" in str(exc).lower():
                return None
            raise
        return info if isinstance(info, dict) else None

    async def _helper(self, name: str, volume: str, read_only: bool) -> VolumeHelper:
        mount = {"Type": "volume", "Source": volume, "Target": MOUNT_POINT, "ReadOnly": read_only}
        body = {
            "Image": await self._image(),
            "Cmd": ["true"],
            "Labels": self._labels,
            "NetworkDisabled": True,
            "HostConfig": {"Mounts": [mount]},
        }
        await self._api.json(
            "POST",
            "/containers/create",
            {"name": name},
            body=json.dumps(body).encode(),
            headers=_JSON,
        )
        return VolumeHelper(self._api, name)

    async def stop_users(self, volume: str) -> list[str]:
        """Stop the running containers that mount ``volume``; their ids."""
        found = await self._api.json(
            "GET",
            "/containers/json",
            {"filters": json.dumps({"volume": [volume], "status": ["running"]})},
        )
        stopped: list[str] = []
        try:
            for container in found or []:
                # Listed before the call: one whose stop was cut off is started again too.
                stopped.append(str(container["Id"]))
                await self._api.read(
                    "POST", f"/containers/{quoted(container['Id'])}/stop", timeout=60
                )
        except BaseException:
            await self.start(stopped)
            raise
        return stopped

    async def start(self, container_ids: list[str]) -> None:
        """Start containers stopped for a copy again (one that is gone is skipped)."""
        for container_id in container_ids:
            with contextlib.suppress(EngineError):
                await self._api.read("POST", f"/containers/{quoted(container_id)}/start")

    async def read(self, backup_id: str, volume: str, stop_users: bool = False) -> ArchiveStream:
        """Start reading ``volume`` (mounted read-only) as a tar stream; with ``stop_users`` its
        running containers are stopped until the stream is closed."""
        if await self._volume(volume) is None:
            raise EngineError(f"volume {volume} does not exist on this server")
        stopped = await self.stop_users(volume) if stop_users else []
        helper: VolumeHelper | None = None
        try:
            helper = await self._helper(f"berth-vbk-{backup_id.lower()}", volume, read_only=True)
            response = await self._api.open(
                "GET",
                f"/containers/{quoted(helper.name)}/archive",
                {"path": f"{MOUNT_POINT}/."},
                timeout=0,
            )
        except BaseException:
            if helper is not None:
                await helper.remove()
            await self.start(stopped)
            raise
        return ArchiveStream(response, helper, stopped, self)

    async def stage(self, backup_id: str) -> VolumeHelper:
        """Create the staging volume of a restore and its helper (before any byte is sent, so
        that an abort never races their creation)."""
        staging = staging_volume(backup_id)
        await self._api.json(
            "POST",
            "/volumes/create",
            body=json.dumps({"Name": staging, "Labels": self._labels}).encode(),
            headers=_JSON,
        )
        try:
            return await self._helper(f"berth-vrs-{backup_id.lower()}", staging, read_only=False)
        except BaseException:
            await self.discard(backup_id, None)
            raise

    async def fill(self, staged: VolumeHelper, chunks: AsyncIterator[bytes]) -> None:
        """Write the tar stream from ``chunks`` into the staging volume."""
        await self._api.read(
            "PUT",
            f"/containers/{quoted(staged.name)}/archive",
            {"path": MOUNT_POINT},
            body=chunks,
            headers=_TAR,
            timeout=0,
        )

    async def _users(self, volume: str) -> list[dict[str, Any]]:
        """Every container (running or not) that mounts ``volume``, helpers aside."""
        found = await self._api.json(
            "GET", "/containers/json", {"all": "1", "filters": json.dumps({"volume": [volume]})}
        )
        return [c for c in found or [] if HELPER_LABEL not in (c.get("Labels") or {})]

    async def _empty(self, backup_id: str, volume: str, image: str) -> None:
        """Delete everything in ``volume`` with a short-lived container of ``image`` (the image
        of a container that uses it: the engine will not remove a volume a container names)."""
        name = f"berth-vem-{backup_id.lower()}"
        body = {
            "Image": image,
            # find + rm, no shell: GNU's and busybox's both understand it.
            "Entrypoint": [
                "find",
                MOUNT_POINT,
                "-mindepth",
                "1",
                "-maxdepth",
                "1",
                "-exec",
                "rm",
                "-rf",
                "{}",
                ";",
            ],
            "Cmd": [],
            "User": "0",
            "Labels": self._labels,
            "NetworkDisabled": True,
            "HostConfig": {"Mounts": [{"Type": "volume", "Source": volume, "Target": MOUNT_POINT}]},
        }
        helper = VolumeHelper(self._api, name)
        try:
            await self._api.json(
                "POST",
                "/containers/create",
                {"name": name},
                body=json.dumps(body).encode(),
                headers=_JSON,
            )
            await self._api.read("POST", f"/containers/{quoted(name)}/start")
            waited = await self._api.json("POST", f"/containers/{quoted(name)}/wait", timeout=0)
            code = int((waited or {}).get("StatusCode", -1))
            if code != 0:
                raise EngineError(f"emptying volume {volume} with {image} exited with {code}")
        finally:
            await helper.remove()

    async def replace(
        self,
        backup_id: str,
        staged: VolumeHelper,
        volume: str,
        *,
        committed: Callable[[list[str], dict[str, str]], Awaitable[None]] | None = None,
        restart: Sequence[str] = (),
        labels: dict[str, str] | None = None,
    ) -> None:
        """Empty ``volume`` (created when missing) and copy the staging volume into it. The
        running containers using it are stopped meanwhile and started again after (with those
        of ``restart``: stopped by an earlier try that did not end). ``committed`` is told the
        containers to start again and the volume's labels before anything is changed (the
        caller records them durably). Cancelled, it starts nothing: the volume is not whole."""
        info = await self._volume(volume)
        users = await self._users(volume) if info is not None else []
        running = [str(c["Id"]) for c in users if c.get("State") == "running"]
        stopped = list(dict.fromkeys([*restart, *running]))
        kept = dict((info or {}).get("Labels") or labels or {MANAGED_LABEL: "true", **self._extra})
        if committed is not None:
            await committed(stopped, kept)
        try:
            for container_id in running:
                await self._api.read("POST", f"/containers/{quoted(container_id)}/stop", timeout=60)
            if users:
                await self._empty(
                    backup_id, volume, str(users[0].get("ImageID") or users[0]["Image"])
                )
            else:
                # No container names it: remove it and create it again with its labels (a
                # volume restored before any deployment used it: managed like a deployment's).
                if info is not None:
                    await self._api.read("DELETE", f"/volumes/{quoted(volume)}")
                await self._api.json(
                    "POST",
                    "/volumes/create",
                    body=json.dumps({"Name": volume, "Labels": kept}).encode(),
                    headers=_JSON,
                )
            await self._copy(backup_id, staged, volume)
        except asyncio.CancelledError:
            # The daemon stops mid-replace: the caller's record finishes it on the next start.
            raise
        except BaseException:
            await self.start(stopped)
            raise
        await self.start(stopped)

    async def restage(self, backup_id: str) -> VolumeHelper | None:
        """The helper of a staging volume left by an earlier run (leftover helpers of that
        restore removed first); ``None`` when the staging volume is gone."""
        if await self._volume(staging_volume(backup_id)) is None:
            return None
        for prefix in ("berth-vrs", "berth-vrt", "berth-vem"):
            await VolumeHelper(self._api, f"{prefix}-{backup_id.lower()}").remove()
        return await self._helper(
            f"berth-vrs-{backup_id.lower()}", staging_volume(backup_id), read_only=False
        )

    async def _copy(self, backup_id: str, staged: VolumeHelper, volume: str) -> None:
        target = await self._helper(f"berth-vrt-{backup_id.lower()}", volume, read_only=False)
        try:
            source = await self._api.open(
                "GET",
                f"/containers/{quoted(staged.name)}/archive",
                {"path": f"{MOUNT_POINT}/."},
                timeout=0,
            )
            try:
                await self._api.read(
                    "PUT",
                    f"/containers/{quoted(target.name)}/archive",
                    {"path": MOUNT_POINT},
                    body=source.iter_chunked(_COPY_CHUNK),
                    headers=_TAR,
                    timeout=0,
                )
            finally:
                source.close()
        finally:
            await target.remove()

    async def census(self, staged: VolumeHelper) -> VolumeManifest:
        """Read the staging volume back as a tar stream and count it (a verification: the
        archive was written into a volume and every file of it reads back)."""
        census = TarCensus()
        try:
            source = await self._api.open(
                "GET",
                f"/containers/{quoted(staged.name)}/archive",
                {"path": f"{MOUNT_POINT}/."},
                timeout=0,
            )
            try:
                async for chunk in source.iter_chunked(_COPY_CHUNK):
                    await census.feed(chunk)
            except (OSError, TimeoutError) as exc:
                raise EngineError(f"the restored volume's archive broke off: {exc!r}") from exc
            finally:
                source.close()
            return await census.finish()
        finally:
            await census.aclose()

    async def discard(self, backup_id: str, staged: VolumeHelper | None) -> None:
        """Remove a restore's helpers and staging volume (gone is fine)."""
        for prefix in ("berth-vrs", "berth-vrt", "berth-vem"):
            name = f"{prefix}-{backup_id.lower()}"
            await VolumeHelper(self._api, name).remove()
        if staged is not None:
            await staged.remove()
        # A helper whose upload was cut off may still be going away for a moment: the engine
        # refuses (409) to remove a volume a container names until then.
        deadline = asyncio.get_running_loop().time() + _DISCARD_SECONDS
        while True:
            try:
                await self._api.read("DELETE", f"/volumes/{quoted(staging_volume(backup_id))}")
                return
            except EngineError as exc:
                gone = "404" in str(exc) or "no such volume" in str(exc).lower()
                if gone or asyncio.get_running_loop().time() > deadline:
                    if not gone:
                        logger.warning("staging volume of %s not removed: %s", backup_id, exc)
                    return
            await asyncio.sleep(0.2)


def staging_volume(backup_id: str) -> str:
    """The staging volume of restore ``backup_id``."""
    return f"berth-vrs-{backup_id.lower()}"
