"""Planning a slot ahead of time, so that its minute mark only writes.

With thousands of tasks sharing a slot (issue 19's benchmark: 10,000 due in the same minute)
reading the due rows, parsing their date-times and computing each task's following slot took
about half of the time between the slot and its runs being recorded. The scheduler's loop
therefore plans the soonest slot a few seconds before it comes (``prepare``); at the slot
(``take``) the plans are used for the tasks that are still due exactly then and were not
changed since, which one id-only query tells. Everything else (a task changed meanwhile, a
task added, a slot found late) goes through the ordinary path, which reads the rows at the
slot, so a stale plan is never used and nothing is planned twice.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from coordinator.scheduling import slots
from shared.errors import PlatformError

# How long before a slot it is planned: enough for 10,000 tasks on a loaded machine.
LOOKAHEAD: Final = timedelta(seconds=5)
# A change written while the look-ahead was reading may carry a stamp from just before the
# read: tasks changed this close to the planning go the ordinary way.
_WRITE_MARGIN: Final = timedelta(seconds=10)

Planner = Callable[[slots.DueTask, datetime, bool], slots.SlotPlan]


@dataclass(frozen=True)
class PlannedSlot:
    """A slot's plans (as if no task were busy), by task id, and what they were read under."""

    slot_at: datetime
    changed_before: datetime
    plans: dict[str, slots.SlotPlan]


class SlotLookahead:
    """Holds at most one planned slot: the soonest one, planned shortly before it comes."""

    def __init__(self) -> None:
        self._planned: PlannedSlot | None = None

    def wants(self, soonest: datetime, now: datetime) -> bool:
        """Whether ``soonest`` is close enough to plan and not planned yet."""
        if self._planned is not None and self._planned.slot_at == soonest:
            return False
        return soonest - now <= LOOKAHEAD

    async def prepare(self, soonest: datetime, now: datetime, planner: Planner) -> int:
        """Plan every task due exactly at ``soonest`` (not busy: that is checked at the slot)."""
        changed_before = now - _WRITE_MARGIN
        due = await slots.tasks_at_slot(soonest, changed_before)
        plans: dict[str, slots.SlotPlan] = {}
        for task in due:
            try:
                plans[task.id] = planner(task, soonest, False)
            except PlatformError:
                continue  # the ordinary path reports it at the slot (and parks the task)
        self._planned = PlannedSlot(soonest, changed_before, plans)
        return len(plans)

    async def take(
        self, now: datetime, missed_after: timedelta
    ) -> tuple[datetime, list[slots.SlotPlan]] | None:
        """The planned slot's plans still valid at ``now``, with busy tasks' plans adjusted;
        None when nothing planned is due (or the slot is so late it counts as missed)."""
        planned = self._planned
        if planned is None or planned.slot_at > now:
            return None
        self._planned = None
        if now - planned.slot_at > missed_after:
            return None  # the missed-run policy decides: the ordinary path applies it
        still = await slots.still_at_slot(planned.slot_at, planned.changed_before)
        busy = await slots.busy_tasks() if still else set()
        chosen: list[slots.SlotPlan] = []
        for task_id, plan in planned.plans.items():
            if task_id not in still:
                continue
            chosen.append(_busy(plan) if task_id in busy else plan)
        return planned.slot_at, chosen


def _busy(plan: slots.SlotPlan) -> slots.SlotPlan:
    """``plan`` for a task that has a run accepted or running (the concurrency policy decides)."""
    policy = plan.task.concurrency_policy
    if policy == "forbid":
        return replace(plan, skipped_reason="concurrency-forbidden")
    if policy == "replace":
        return replace(plan, replaces_active=True)
    return plan
