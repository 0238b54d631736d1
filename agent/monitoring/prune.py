"""``capacity_prune``: Berth-managed stopped containers, dangling images and old workspaces only.

Never volumes (containers are removed without ``v``), never running containers (removal is not
forced, so the engine refuses a container that started meanwhile), never rollback candidates.
"""

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agent.monitoring.engine import Engine, EngineContainer, EngineError
from agent.monitoring.inventory import (
    LIVE_STATES,
    journal_facts,
    serving_deployments,
    workspaces,
)
from shared.messages.monitoring import (
    CapacityPrune,
    CapacityPruneResult,
    PruneCandidate,
    PruneCategory,
)

ACTIVE = "active-runtime"
ROLLBACK = "rollback-candidate"
NEWER = "newer-than-before"
IN_USE = "in-use"

Action = Literal["matched", "pruned", "skipped", "excluded", "failed"]


def _at(epoch: float) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch > 0 else None


@dataclass
class _Run:
    """Candidates and warnings as one prune collects them."""

    request: CapacityPrune
    candidates: list[PruneCandidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def older(self, updated_at: datetime | None) -> bool:
        before = self.request.before
        if before is None:
            return True
        if before.tzinfo is None:
            before = before.replace(tzinfo=UTC)
        return updated_at is not None and updated_at < before

    def consider(
        self,
        category: PruneCategory,
        target_id: str,
        target: str,
        updated_at: datetime | None,
        size: int,
        *,
        skipped: str | None = None,
        remove: Callable[[], None] | None = None,
    ) -> None:
        """Decide one candidate; remove it when it is eligible and this is a real run."""

        def add(action: Action, reason: str | None = None) -> None:
            self.candidates.append(
                PruneCandidate(
                    id=target_id[:80],
                    category=category,
                    target=target[:500],
                    updated_at=updated_at,
                    size=max(size, 0),
                    action=action,
                    skipped_reason=reason,
                )
            )

        if skipped is not None:
            add("skipped", skipped)
        elif not self.older(updated_at):
            add("excluded", NEWER)
        elif self.request.dry_run or remove is None:
            add("matched")
        else:
            try:
                remove()
            except (EngineError, OSError) as exc:
                self.warnings.append(f"{category} {target}: {exc}"[:500])
                add("failed", str(exc)[:200])
            else:
                add("pruned")


@dataclass
class Pruner:
    """Finds and (unless dry-run) removes Berth's leftovers."""

    engine: Engine
    state_dir: Path

    def prune(self, request: CapacityPrune, frame_id: int) -> CapacityPruneResult:
        """Blocking: run the prune for the requested categories."""
        run = _Run(request)
        containers: list[EngineContainer] | None = None
        try:
            # Sizes matter only when containers are pruned (size=1 makes the engine walk layers).
            containers = self.engine.all_containers(size="stopped-containers" in request.categories)
        except EngineError as exc:
            run.warnings.append(str(exc)[:500])
        journal = journal_facts(self.state_dir)
        serving = serving_deployments(containers or [], journal)
        protected = set(request.protected_deployment_ids)
        for category in dict.fromkeys(request.categories):
            if category == "stopped-containers" and containers is not None:
                self._containers(run, containers, serving, protected)
            elif category == "dangling-images" and containers is not None:
                protected_images = {
                    fact.image_id
                    for fact in journal.values()
                    if fact.image_id
                    and (fact.deployment_id in protected or fact.deployment_id in serving)
                }
                self._images(run, containers, protected_images)
            elif category == "old-workspaces":
                self._workspaces(run, serving, protected)
        return self._result(run, frame_id)

    def _containers(
        self,
        run: _Run,
        containers: list[EngineContainer],
        serving: set[str],
        protected: set[str],
    ) -> None:
        for container in containers:
            if not container.managed or container.state in LIVE_STATES:
                continue
            deployment = container.deployment_id
            skipped = None
            if deployment in protected:
                skipped = ROLLBACK
            elif deployment in serving:
                skipped = ACTIVE
            cid = container.container_id

            def remove(cid: str = cid) -> None:
                self.engine.remove_container(cid)

            run.consider(
                "stopped-containers",
                cid,
                container.name or cid[:12],
                _at(container.created),
                container.size_rw or 0,
                skipped=skipped,
                remove=remove,
            )

    def _images(
        self, run: _Run, containers: list[EngineContainer], protected_images: set[str]
    ) -> None:
        used = {c.image_id for c in containers}
        try:
            images = self.engine.dangling_images()
        except EngineError as exc:
            run.warnings.append(str(exc)[:500])
            return
        for image in images:
            image_id = str(image.get("Id", ""))
            skipped = None
            if image_id in used:
                skipped = IN_USE
            elif image_id in protected_images:
                skipped = ROLLBACK

            def remove(image_id: str = image_id) -> None:
                self.engine.remove_image(image_id)

            run.consider(
                "dangling-images",
                image_id,
                image_id[:19],
                _at(float(image.get("Created") or 0)),
                int(image.get("Size") or 0),
                skipped=skipped,
                remove=remove,
            )

    def _workspaces(self, run: _Run, serving: set[str], protected: set[str]) -> None:
        for workspace in workspaces(self.state_dir):
            skipped = None
            if workspace.deployment_id in protected:
                skipped = ROLLBACK
            elif workspace.deployment_id in serving:
                skipped = ACTIVE

            def remove(path: Path = workspace.path) -> None:
                shutil.rmtree(path)

            run.consider(
                "old-workspaces",
                workspace.deployment_id,
                str(workspace.path),
                _at(workspace.modified_at),
                workspace.bytes,
                skipped=skipped,
                remove=remove,
            )

    @staticmethod
    def _result(run: _Run, frame_id: int) -> CapacityPruneResult:
        request = run.request
        candidates = run.candidates
        count: dict[str, int] = dict.fromkeys(
            ("matched", "pruned", "skipped", "excluded", "failed"), 0
        )
        for candidate in candidates:
            count[candidate.action] += 1
        return CapacityPruneResult(
            id=frame_id,
            re=request.id,
            dry_run=request.dry_run,
            pruned_at=datetime.now(UTC),
            inspected_count=len(candidates),
            # In a real run, "matched" means eligible: pruned or failed to prune.
            matched_count=count["matched"] + count["pruned"] + count["failed"],
            pruned_count=count["pruned"],
            skipped_count=count["skipped"],
            excluded_count=count["excluded"],
            reclaimed_bytes=sum(c.size for c in candidates if c.action == "pruned"),
            omitted_candidate_count=max(len(candidates) - request.output_limit, 0),
            candidates=candidates[: request.output_limit],
            warnings=run.warnings[:100],
        )
