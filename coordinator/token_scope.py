"""The one rule for token scopes: whether a scope lies within another in every dimension.

A token may only create, rotate, revoke, list or show tokens whose scope is within its own, so
no token can hand out (or take away) more than it holds. Every dimension is checked: lists that
narrow what a token reaches (projects, environments, resources, servers, repositories, workflow
commands), its permissions, and its expiry (a child cannot outlive its parent).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from coordinator.permissions import ALL_PERMISSIONS

PERMISSIONS_KEY: Final = "permissions"

# Scope lists in which "empty" means "unrestricted": a child must name a subset of the parent's
# ids whenever the parent names any. Wire names, as stored in ``ApiToken.scope``.
NARROWING_KEYS: Final = (
    "projectIds",
    "environmentIds",
    "resourceIds",
    "deploymentTargetIds",
    "repositoryFullNames",
    "workflowCommands",
)


@dataclass(frozen=True)
class Bounds:
    """Everything a token's scope limits: its lists (wire names) and its expiry."""

    lists: Mapping[str, frozenset[str]]
    expires_at: datetime | None

    @classmethod
    def of(cls, scope: Mapping[str, object] | None, expires_at: datetime | None) -> "Bounds":
        """Bounds of a stored or requested scope (``ApiToken.scope`` / ``TokenScope`` JSON)."""
        scope = scope or {}
        lists: dict[str, frozenset[str]] = {}
        for key in (PERMISSIONS_KEY, *NARROWING_KEYS):
            value = scope.get(key)
            found = value if isinstance(value, list) else []
            lists[key] = frozenset(str(v) for v in found)
        return cls(lists=lists, expires_at=expires_at)

    def get(self, key: str) -> frozenset[str]:
        """One list of the scope (empty when absent)."""
        return self.lists.get(key, frozenset())


def excess(child: Bounds, parent: Bounds) -> list[str]:
    """The dimensions (wire names, plus ``expiresAt``) in which ``child`` reaches beyond
    ``parent``; an empty answer means ``child`` is within ``parent``."""
    beyond: list[str] = []
    granted = parent.get(PERMISSIONS_KEY)
    wanted = child.get(PERMISSIONS_KEY)
    if ALL_PERMISSIONS not in granted and (ALL_PERMISSIONS in wanted or not wanted <= granted):
        beyond.append(PERMISSIONS_KEY)
    for key in NARROWING_KEYS:
        limit = parent.get(key)
        # An empty child list is unrestricted, so it is only within an unrestricted parent.
        if limit and not (child.get(key) and child.get(key) <= limit):
            beyond.append(key)
    if parent.expires_at is not None and (
        child.expires_at is None or child.expires_at > parent.expires_at
    ):
        beyond.append("expiresAt")
    return beyond


def within(child: Bounds, parent: Bounds) -> bool:
    """Whether ``child`` reaches nothing that ``parent`` does not."""
    return not excess(child, parent)
