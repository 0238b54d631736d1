"""The daemon: load identity, own the link task, stop cleanly on SIGTERM/SIGINT."""

import asyncio
import contextlib
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent import (
    backup_dirs,
    backup_feature,
    certificates,
    dependencies,
    logstream,
    monitoring,
    tasks as task_runs,
    terminal,
    volume_feature,
)
from agent.artifacts import ArchiveBuilder
from agent.connection import Link, ReconnectPolicy
from agent.deploy_feature import DeploymentFeature
from agent.deployments import DeploymentManager
from agent.edge import CaddyEdge
from agent.edge_feature import EdgeFeature
from agent.features import AgentFeature
from agent.runtime.docker import DockerRuntime
from agent.settings import AgentSettings
from agent.state import StateDir

logger = logging.getLogger(__name__)

# Engine calls are async on the loop; worker threads only do blocking file, cgroup and /proc
# reads (monitoring, state, archives) and the SDK's calls when it serves the engine.
WORKER_THREADS = 4
# How long stopping waits for worker threads (a sample, a prune) to finish their call.
EXECUTOR_DRAIN_SECONDS = 10.0


async def run(
    state_dir: Path, policy: ReconnectPolicy, settings: AgentSettings | None = None
) -> None:
    """Run until a signal arrives (returns) or the coordinator refuses us (``FatalError``)."""
    settings = settings or AgentSettings()
    enrollment, key = StateDir(state_dir).load()
    # A small pool: every thread holds a stack and, under load, a malloc arena of its own.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="berth-worker")
    )
    runtime = DockerRuntime(extra_labels=settings.extra_labels, server_id=enrollment.server_id)
    # Deployments outlive any one link, so the manager belongs to the daemon, not the Link.
    builder = ArchiveBuilder(runtime, state_dir, enrollment.coordinator_url, enrollment.ca_file)
    edge = CaddyEdge(settings.edge_admin_url, settings.edge_listen, settings.edge_tls())
    manager = DeploymentManager(
        runtime, edge, state_dir, builder, bind_mount_roots=settings.bind_mount_roots
    )
    deployments = DeploymentFeature(manager)
    # Every capability plugs in here; deployments first, so its inventory leads on each link.
    features: list[AgentFeature] = [
        deployments,
        EdgeFeature(edge, manager.restore_routes),
        *(
            feature
            for build in (
                monitoring.build_feature,
                logstream.build_feature,
                terminal.build_feature,
                dependencies.build_feature,
                volume_feature.build_feature,
                certificates.build_feature,
                task_runs.build_feature,
                backup_feature.build_feature,
                backup_dirs.build_feature,
            )
            if (feature := build(runtime, state_dir, settings)) is not None
        ),
    ]
    link = Link(enrollment, key, runtime, state_dir, policy, features)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger.info(
        "berth-agent starting for server %s (%s), coordinator %s",
        enrollment.server_name,
        enrollment.server_id,
        enrollment.coordinator_url,
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            # The deployment manager's end (a crash) stops the daemon, as the link's does.
            manager_task, *feature_tasks = [tasks.create_task(f.run()) for f in features]
            link_task = tasks.create_task(link.run_forever())
            stop_task = tasks.create_task(stop.wait())
            done, _ = await asyncio.wait(
                {link_task, stop_task, manager_task}, return_when=asyncio.FIRST_COMPLETED
            )
            # Containers are left running on purpose: stopping the agent never stops workloads.
            # A deployment cut short is settled from the journal on the next start.
            link_task.cancel()
            stop_task.cancel()
            manager_task.cancel()
            for task in feature_tasks:
                task.cancel()
    except BaseExceptionGroup as group:
        # Unwrap so the CLI sees the FatalError (or crash) itself, not a group.
        raise group.exceptions[0] from None
    finally:
        # Worker threads still running (a monitoring sample) may ask the engine for one more
        # answer through the loop; let them finish first, or the engine client they reopen
        # after close() would be left open (and reported unclosed at exit).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(loop.shutdown_default_executor(), EXECUTOR_DRAIN_SECONDS)
        with contextlib.suppress(Exception):
            await runtime.close()
    logger.info("berth-agent stopped")
    del done
