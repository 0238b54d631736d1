"""Settling a volume restore whose link was lost mid-replace, with a stand-in agent session (the
e2e test, tests/integration/test_volume_restore_atomic_e2e.py, has the real agent): the agent's
answer turns ``replace-unconfirmed`` into ``ready`` or ``replace-failed``; an agent that cannot
say, or one before the message, leaves it; an agent away is waited for; another attempt is
never touched."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from coordinator.backups import volume_settle
from coordinator.backups.volume_settle import UNCONFIRMED_CODE, settle_replace
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.hub.registry import Registry
from shared.errors import PlatformError, Unavailable, UnknownType
from shared.messages import REPLACE_UNKNOWN, BackupReply, VolumeRestoreSettle
from tests.harness import Coordinator
from tests.unit.coordinator.test_volume_backup_verify import _backup


class Session:
    """Answers each ``request`` with the next of ``answers`` (an exception is raised)."""

    def __init__(self, answers: list[BackupReply | PlatformError]) -> None:
        self.answers = answers
        self.asked: list[VolumeRestoreSettle] = []

    async def request(self, build: Callable[[int], Any], timeout: float) -> BackupReply:
        message = build(7)
        assert isinstance(message, VolumeRestoreSettle)
        self.asked.append(message)
        answer = self.answers.pop(0)
        if isinstance(answer, PlatformError):
            raise answer
        return answer


class Agents:
    """A registry whose agent is away for the first ``away`` looks."""

    def __init__(self, session: Session, away: int = 0) -> None:
        self.session = session
        self.away = away

    def get(self, server_id: str) -> Session | None:
        if self.away:
            self.away -= 1
            return None
        return self.session


def _reply(backup_id: str, status: str, message: str = "") -> BackupReply:
    return BackupReply(id=1, re=7, backup_id=backup_id, status=status, message=message)  # type: ignore[arg-type]


async def _unconfirmed(coordinator: Coordinator, token: str) -> StorageVolumeBackup:
    backup_id = await _backup(coordinator, token)
    await StorageVolumeBackup.filter(id=backup_id).update(
        restore_status="failed",
        restore_failed_at=datetime.now(UTC),
        restore_failure_code=UNCONFIRMED_CODE,
        restore_failure_message="the agent's link was lost",
    )
    return await StorageVolumeBackup.get(id=backup_id)


async def _settle(row: StorageVolumeBackup, agents: Agents) -> StorageVolumeBackup:
    await settle_replace(cast(Registry, agents), row.id, row.server_id)
    return await StorageVolumeBackup.get(id=row.id)


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volume_settle, "_RETRY_SECONDS", 0.01)


async def test_a_confirmed_replace_makes_the_restore_ready_once_the_agent_is_back(
    coordinator: Coordinator, admin_token: str
) -> None:
    row = await _unconfirmed(coordinator, admin_token)
    # Away twice, then its old link answers unavailable once, then it answers.
    session = Session([Unavailable("the agent's connection is closed"), _reply(row.id, "ok")])
    settled = await _settle(row, Agents(session, away=2))
    assert [m.backup_id for m in session.asked] == [row.id, row.id]
    assert settled.restore_status == "ready"
    assert settled.restore_completed_at is not None
    assert (settled.restore_failure_code, settled.restore_failed_at) == (None, None)


async def test_a_failed_replace_is_recorded_with_the_agents_reason(
    coordinator: Coordinator, admin_token: str
) -> None:
    row = await _unconfirmed(coordinator, admin_token)
    session = Session([_reply(row.id, "failed", "emptying volume exited with 1")])
    settled = await _settle(row, Agents(session))
    assert settled.restore_status == "failed"
    assert settled.restore_failure_code == "replace-failed"
    assert settled.restore_failure_message == "emptying volume exited with 1"


@pytest.mark.parametrize(
    "answer", ["unknown", UnknownType("unknown message type 'volume_restore_settle'")]
)
async def test_an_agent_that_cannot_say_leaves_it_unconfirmed(
    coordinator: Coordinator, admin_token: str, answer: str | PlatformError
) -> None:
    row = await _unconfirmed(coordinator, admin_token)
    reply = _reply(row.id, "failed", REPLACE_UNKNOWN) if answer == "unknown" else answer
    settled = await _settle(row, Agents(Session([cast(BackupReply | PlatformError, reply)])))
    assert (settled.restore_status, settled.restore_failure_code) == ("failed", UNCONFIRMED_CODE)
    assert settled.restore_failure_message == "the agent's link was lost"


async def test_a_newer_restore_attempt_is_not_touched(
    coordinator: Coordinator, admin_token: str
) -> None:
    row = await _unconfirmed(coordinator, admin_token)
    await StorageVolumeBackup.filter(id=row.id).update(restore_status="pending")
    settled = await _settle(row, Agents(Session([_reply(row.id, "ok")])))
    assert settled.restore_status == "pending"
