"""Live capacity inspection (``capacity_inspect``): read-only, blocking, run in a worker thread."""

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from agent.monitoring.engine import Engine, EngineContainer, EngineError
from agent.monitoring.host import mount_usage, real_mounts
from agent.monitoring.inventory import (
    JOURNAL_DIR,
    LIVE_STATES,
    WORKSPACES_DIR,
    directory_size,
    journal_facts,
    serving_deployments,
    workspaces,
)
from agent.monitoring.sampler import DockerDiskCache
from shared.messages.monitoring import (
    CapacityContainer,
    CapacityCpu,
    CapacityDisk,
    CapacityDocker,
    CapacityInodes,
    CapacityMemory,
    CapacityReport,
    CapacityWarning,
    CapacityWorkspace,
    ReclaimableEstimate,
    RuntimeDirectory,
)

FULL_PERCENT = 90.0
LOW_MEMORY_PERCENT = 10.0


def _percent(used: int, available: int) -> float:
    # Like df: reserved blocks count neither as used nor available.
    return round(used / (used + available) * 100, 1) if used + available > 0 else 0.0


def docker_figures(df: dict[str, Any]) -> CapacityDocker:
    """Docker's disk usage and the parts no container or build uses."""
    images = df.get("Images") or []
    unused_images = 0
    for image in images:
        if int(image.get("Containers") or 0) == 0:
            size = int(image.get("Size") or 0)
            shared = int(image.get("SharedSize") or 0)
            # Layers shared with used images are not freed by removing this one.
            unused_images += max(size - shared, 0) if shared > 0 else max(size, 0)
    cache = df.get("BuildCache") or []
    return CapacityDocker(
        images_size=int(df.get("LayersSize") or 0),
        reclaimable_images_size=unused_images,
        build_cache_size=sum(int(b.get("Size") or 0) for b in cache),
        reclaimable_build_cache_size=sum(
            int(b.get("Size") or 0) for b in cache if not b.get("InUse") and not b.get("Shared")
        ),
        containers_size=sum(max(int(c.get("SizeRw") or 0), 0) for c in df.get("Containers") or []),
        volumes_size=sum(
            max(int((v.get("UsageData") or {}).get("Size") or 0), 0)
            for v in df.get("Volumes") or []
        ),
    )


@dataclass
class Inspector:
    """Builds a ``capacity_report`` from the host, the engine and the state directory."""

    engine: Engine
    state_dir: Path
    docker_disk: DockerDiskCache

    def inspect(self, frame_id: int, re: int) -> CapacityReport:
        """Blocking: the whole report. An unreadable part makes it ``partial``, never fails it."""
        partial = False
        warnings: list[CapacityWarning] = []
        disks, inodes = self._mounts(warnings)
        docker: CapacityDocker | None = None
        self.docker_disk.refresh()
        if self.docker_disk.data is not None and self.docker_disk.error is None:
            docker = docker_figures(self.docker_disk.data)
        else:
            partial = True
            warnings.append(
                CapacityWarning(
                    code="docker-unavailable",
                    message=f"Docker disk usage unavailable: {self.docker_disk.error}",
                    resource="docker",
                )
            )
        memory = self._memory(warnings)
        load1, load5, load15 = os.getloadavg()
        cpu = CapacityCpu(
            logical_cores=psutil.cpu_count() or 0,
            load_average1m=round(load1, 2),
            load_average5m=round(load5, 2),
            load_average15m=round(load15, 2),
        )
        containers: list[EngineContainer] = []
        try:
            containers = self.engine.all_containers(size=True)
        except EngineError as exc:
            partial = True
            warnings.append(
                CapacityWarning(code="docker-unavailable", message=str(exc), resource="docker")
            )
        journal = journal_facts(self.state_dir)
        serving = serving_deployments(containers, journal)
        managed = [c for c in containers if c.managed]
        stopped_with_data = {
            c.deployment_id for c in managed if c.state not in LIVE_STATES and c.deployment_id
        }
        found_workspaces = [
            CapacityWorkspace(
                deployment_id=w.deployment_id,
                path=str(w.path),
                bytes=w.bytes,
                active_marker=w.deployment_id in serving,
                rollback_candidate_marker=w.deployment_id in stopped_with_data,
            )
            for w in workspaces(self.state_dir)
        ]
        stopped_size = sum(
            c.size_rw or 0
            for c in managed
            if c.state not in LIVE_STATES and c.deployment_id not in serving
        )
        dangling = self._dangling_size(containers)
        old_workspaces = sum(w.bytes for w in found_workspaces if not w.active_marker)
        return CapacityReport(
            id=frame_id,
            re=re,
            inspected_at=datetime.now(UTC),
            disk=disks,
            inodes=inodes,
            docker=docker,
            memory=memory,
            cpu=cpu,
            runtime_directories=self._directories(),
            containers=[self._container(c, serving) for c in managed][:2000],
            workspaces=found_workspaces[:2000],
            safe_reclaimable_estimate=ReclaimableEstimate(
                stopped_containers_size=stopped_size,
                dangling_images_size=dangling,
                # The prune never touches the build cache (it may hold other projects' layers).
                old_build_cache_size=0,
                old_workspace_candidates_size=old_workspaces,
                total=stopped_size + dangling + old_workspaces,
            ),
            warnings=warnings[:100],
            partial=partial,
        )

    def _mounts(
        self, warnings: list[CapacityWarning]
    ) -> tuple[list[CapacityDisk], list[CapacityInodes]]:
        root = self.docker_disk_root()
        disks: list[CapacityDisk] = []
        inodes: list[CapacityInodes] = []
        for point in real_mounts([root] if root else []):
            try:
                usage = mount_usage(point.path, point.device, point.fstype)
            except OSError:
                continue
            mount = point.device or point.path
            used_percent = _percent(usage.used_bytes, usage.available_bytes)
            disks.append(
                CapacityDisk(
                    path=point.path,
                    mount=mount,
                    size=usage.total_bytes,
                    used=usage.used_bytes,
                    available=usage.available_bytes,
                    use_percent=used_percent,
                )
            )
            inode_percent = _percent(usage.inodes_used, usage.inodes_available)
            inodes.append(
                CapacityInodes(
                    path=point.path,
                    mount=mount,
                    used=usage.inodes_used,
                    free=usage.inodes_available,
                    use_percent=inode_percent,
                )
            )
            if used_percent >= FULL_PERCENT:
                warnings.append(
                    CapacityWarning(
                        code="full-disk",
                        message=f"{point.path} is {used_percent:.0f}% full",
                        path=point.path,
                        mount=mount,
                        resource="disk",
                    )
                )
            if usage.inodes_total and inode_percent >= FULL_PERCENT:
                warnings.append(
                    CapacityWarning(
                        code="inodes-low",
                        message=f"{point.path} has used {inode_percent:.0f}% of its inodes",
                        path=point.path,
                        mount=mount,
                        resource="inode",
                    )
                )
        return disks[:64], inodes[:64]

    def docker_disk_root(self) -> str | None:
        """Docker's data root, None when the engine does not answer."""
        try:
            return self.engine.data_root()
        except EngineError:
            return None

    def _memory(self, warnings: list[CapacityWarning]) -> CapacityMemory:
        memory = psutil.virtual_memory()
        used = max(memory.total - memory.available, 0)
        available_percent = memory.available / memory.total * 100 if memory.total else 0.0
        if available_percent < LOW_MEMORY_PERCENT:
            warnings.append(
                CapacityWarning(
                    code="memory-low",
                    message=f"only {available_percent:.1f}% of memory is available",
                    resource="memory",
                )
            )
        return CapacityMemory(
            total=memory.total,
            available=memory.available,
            used=used,
            use_percent=round(used / memory.total * 100, 1) if memory.total else 0.0,
        )

    def _directories(self) -> dict[str, RuntimeDirectory]:
        directories: dict[str, RuntimeDirectory] = {}
        for key, path in (
            ("stateRoot", self.state_dir),
            ("sourceWorkspace", self.state_dir / WORKSPACES_DIR),
            ("deploymentJournal", self.state_dir / JOURNAL_DIR),
        ):
            size = directory_size(path)
            directories[key] = RuntimeDirectory(
                path=str(path), size=size, detectable=size is not None
            )
        return directories

    def _dangling_size(self, containers: list[EngineContainer]) -> int:
        used = {c.image_id for c in containers}
        try:
            images = self.engine.dangling_images()
        except EngineError:
            return 0
        return sum(max(int(i.get("Size") or 0), 0) for i in images if i.get("Id") not in used)

    @staticmethod
    def _container(container: EngineContainer, serving: set[str]) -> CapacityContainer:
        return CapacityContainer(
            id=container.container_id,
            name=container.name,
            running=container.state == "running",
            status=container.status or container.state,
            writable_bytes=container.size_rw,
            deployment_id=container.deployment_id,
            project_id=container.project_id,
            environment_id=container.environment_id,
            resource_id=container.resource_id,
            serving=container.deployment_id in serving and container.state == "running",
        )
