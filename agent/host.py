"""Host facts and local checks; psutil and file I/O run in worker threads."""

import asyncio
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

import psutil

from agent.runtime import ContainerRuntime, RuntimeUnavailable
from shared.messages import CheckResult, HostFacts


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    except OSError:
        return platform.system()


def _facts_sync(docker_version: str | None) -> HostFacts:
    return HostFacts(
        hostname=socket.gethostname(),
        os=_os_name(),
        kernel=platform.release(),
        architecture=platform.machine(),
        cpu_count=psutil.cpu_count(logical=True) or 0,
        memory_bytes=psutil.virtual_memory().total,
        docker_version=docker_version,
        python_version=platform.python_version(),
    )


async def collect_facts(runtime: ContainerRuntime) -> HostFacts:
    """Gather the facts reported in every hello."""
    try:
        docker_version: str | None = await runtime.version()
    except RuntimeUnavailable:
        docker_version = None
    return await asyncio.to_thread(_facts_sync, docker_version)


async def check_docker(runtime: ContainerRuntime) -> CheckResult:
    """Ping the engine and report its version."""
    started = time.perf_counter()
    try:
        await runtime.ping()
        version = await runtime.version()
    except RuntimeUnavailable as exc:
        return CheckResult(
            name="docker-daemon",
            status="failed",
            message=str(exc)[:1000],
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    return CheckResult(
        name="docker-daemon",
        status="passed",
        message=f"Docker engine {version} answered",
        duration_ms=(time.perf_counter() - started) * 1000,
        metadata={"dockerVersion": version},
    )


def _probe_write(directory: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-") as handle:
        handle.write(b"ok")
        handle.flush()
        os.fsync(handle.fileno())


async def check_state_dir(directory: Path) -> CheckResult:
    """Check the state directory is writable (enrollment and spools live there)."""
    started = time.perf_counter()
    try:
        await asyncio.to_thread(_probe_write, directory)
    except OSError as exc:
        return CheckResult(
            name="state-directory",
            status="failed",
            message=f"{directory} is not writable: {exc.strerror}",
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    return CheckResult(
        name="state-directory",
        status="passed",
        message=f"{directory} writable",
        duration_ms=(time.perf_counter() - started) * 1000,
    )
