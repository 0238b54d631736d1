"""Archive artifacts: download from the coordinator, verify, unpack safely, docker build."""

import asyncio
import hashlib
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from agent.http_client import locate, request
from agent.rollout import DeployLog
from agent.runtime import ContainerRuntime
from agent.tls import client_context
from shared.errors import RuntimeFailed
from shared.messages import ArchiveArtifact, DeployPlan

# Unpacked sources larger than this are refused (a small gzip can expand enormously).
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_MEMBERS = 200_000
_CHUNK = 64 * 1024
# 15 minutes in all, 30 s to connect, 60 s per read (the bounds aiohttp was given before).
_DOWNLOAD_SECONDS = 900.0
_CONNECT_SECONDS = 30.0
_READ_SECONDS = 60.0


class UnsafeArchive(RuntimeFailed):
    """The archive tries to write outside its directory or holds special files."""


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise UnsafeArchive(f"archive entry {member.name!r} escapes the workspace")
    if member.isdev():
        raise UnsafeArchive(f"archive entry {member.name!r} is a device or fifo")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        if link.is_absolute():
            raise UnsafeArchive(f"archive link {member.name!r} points to an absolute path")
        # Symlinks resolve from their own directory, hard links from the archive root.
        base = (root / name).parent if member.issym() else root
        target = (base / link).resolve()
        if not target.is_relative_to(root):
            raise UnsafeArchive(f"archive link {member.name!r} points outside the workspace")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"archive entry {member.name!r} has an unsupported type")


def extract_safely(archive: Path, destination: Path) -> None:
    """Unpack a gzip tar into ``destination``, refusing anything that could escape it."""
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise UnsafeArchive(f"archive has more than {MAX_MEMBERS} entries")
            total = 0
            for member in members:
                _check_member(member, root)
                total += max(member.size, 0)
                if total > MAX_UNPACKED_BYTES:
                    raise UnsafeArchive("archive unpacks to more than 4 GiB")
            # The "data" filter re-checks the same rules and drops owners and special modes.
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise UnsafeArchive(f"archive refused: {exc}") from exc
        raise RuntimeFailed(f"cannot unpack the source archive: {exc}") from exc


def _origin(coordinator_url: str) -> str:
    parts = urlsplit(coordinator_url)
    return f"{parts.scheme}://{parts.netloc}"


class ArchiveBuilder:
    """Turns an ``archive`` artifact into a local image; the workspace never outlives it."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        state_dir: Path,
        coordinator_url: str,
        ca_file: str | None,
    ) -> None:
        self._runtime = runtime
        self._workspaces = state_dir / "workspaces"
        self._origin = _origin(coordinator_url)
        self._ca_file = ca_file

    async def __call__(self, plan: DeployPlan, log: DeployLog) -> str:
        """Download, verify, unpack and build; return the image id."""
        artifact = plan.artifact
        if not isinstance(artifact, ArchiveArtifact):
            raise RuntimeFailed("not an archive artifact")
        workspace = self._workspaces / plan.deployment_id
        try:
            await asyncio.to_thread(shutil.rmtree, workspace, True)
            await asyncio.to_thread(workspace.mkdir, 0o700, True, True)
            archive = workspace / "source.tar.gz"
            await self._download(artifact, archive, log)
            source = workspace / "source"
            await asyncio.to_thread(extract_safely, archive, source)
            log.line("fetch", "unpacked the source archive", event="source-unpacked")
            dockerfile = (source / artifact.dockerfile_path).resolve()
            if not dockerfile.is_relative_to(source.resolve()) or not dockerfile.is_file():
                raise RuntimeFailed(f"no Dockerfile at {artifact.dockerfile_path} in the source")
            return await self._build(artifact, source, log)
        finally:
            await asyncio.to_thread(shutil.rmtree, workspace, True)

    async def _download(self, artifact: ArchiveArtifact, target: Path, log: DeployLog) -> None:
        url = self._origin + artifact.download_path
        ssl_context = client_context(self._ca_file) if url.startswith("https://") else None
        digest = hashlib.sha256()
        size = 0
        try:
            # HTTPS_PROXY / NO_PROXY from the environment are honoured.
            endpoint, path = locate(url, ssl_context, environment_proxy=True)
            async with asyncio.timeout(_DOWNLOAD_SECONDS):
                response = await request(
                    endpoint,
                    "GET",
                    path,
                    headers={"Authorization": f"Bearer {artifact.download_token}"},
                    connect_timeout=_CONNECT_SECONDS,
                    read_timeout=_READ_SECONDS,
                )
                try:
                    if response.status != 200:
                        raise RuntimeFailed(
                            f"archive download refused: HTTP {response.status} from the coordinator"
                        )
                    with target.open("wb") as handle:
                        async for chunk in response.iter_chunked(_CHUNK):
                            size += len(chunk)
                            if size > artifact.size_bytes:
                                raise RuntimeFailed("the archive is larger than announced")
                            digest.update(chunk)
                            await asyncio.to_thread(handle.write, chunk)
                finally:
                    response.close()
        except TimeoutError as exc:
            raise RuntimeFailed("archive download timed out") from exc
        except (OSError, ValueError) as exc:
            raise RuntimeFailed(f"archive download failed: {exc}") from exc
        if size != artifact.size_bytes or digest.hexdigest() != artifact.sha256:
            raise RuntimeFailed("the downloaded archive does not match its sha256 checksum")
        log.line("fetch", f"downloaded {size} bytes, sha256 verified", event="source-fetched")

    async def _build(self, artifact: ArchiveArtifact, source: Path, log: DeployLog) -> str:
        loop = asyncio.get_running_loop()

        def on_line(text: str) -> None:
            # Called from the build's worker thread: hand each line to the loop.
            loop.call_soon_threadsafe(lambda: log.line("build", text, stream="stdout"))

        log.line("build", f"building {artifact.image}", event="phase-started")
        image_id = await self._runtime.build(
            source, artifact.dockerfile_path, artifact.build_target, artifact.image, on_line
        )
        log.line("build", f"built {artifact.image} ({image_id[:19]})", event="image-built")
        return image_id
