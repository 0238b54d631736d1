"""The role table is derived from the permission catalogue, and grants narrow what tokens get."""

from coordinator.organizations.roles import (
    ACCOUNT_ONLY,
    ROLE_PERMISSIONS,
    ROLES,
    bounds_of,
    grants_of,
    permissions_of,
    rank,
)
from coordinator.permissions import ALL_PERMISSIONS, PERMISSIONS


def test_viewers_read_everything_and_change_only_their_own_account() -> None:
    viewer = ROLE_PERMISSIONS["viewer"]
    assert {p for p in PERMISSIONS if p.endswith(":read")} <= viewer
    assert viewer - {p for p in PERMISSIONS if p.endswith(":read")} == {"account:write"}


def test_members_ship_software_but_manage_neither_people_servers_nor_shells() -> None:
    member = ROLE_PERMISSIONS["member"]
    assert ROLE_PERMISSIONS["viewer"] < member
    assert {"deployments:write", "projects:write", "deploy-tokens:write"} <= member
    forbidden = {
        "servers:write",
        "terminal-sessions:open",
        "organization-members:write",
        "organizations:write",
        "capacity:prune",
        "domain-bindings:override-ownership",
    }
    assert not forbidden & member
    assert member <= set(PERMISSIONS)


def test_admins_and_owners_hold_everything_and_roles_rank_in_order() -> None:
    assert ROLE_PERMISSIONS["admin"] == ROLE_PERMISSIONS["owner"] == {ALL_PERMISSIONS}
    assert [rank(r) for r in ROLES] == [3, 2, 1, 0]
    assert rank("stranger") < rank("viewer")
    assert permissions_of(None) == ACCOUNT_ONLY
    assert permissions_of("stranger") == ACCOUNT_ONLY


def test_a_granted_members_tokens_get_the_weakest_grant_in_the_granted_projects() -> None:
    grants = {"prj_a": "member", "prj_b": "viewer"}
    assert grants_of(grants) == {
        "prj_a": ROLE_PERMISSIONS["member"],
        "prj_b": ROLE_PERMISSIONS["viewer"],
    }
    bounds = bounds_of("member", grants)
    assert bounds.get("permissions") == ROLE_PERMISSIONS["viewer"]
    assert bounds.get("projectIds") == {"prj_a", "prj_b"}
    only_a = bounds_of("member", {"prj_a": "member"})
    assert only_a.get("permissions") == ROLE_PERMISSIONS["member"]
    assert bounds_of("owner", None).get("permissions") == {ALL_PERMISSIONS}
    assert bounds_of("viewer", None).get("projectIds") == frozenset()
