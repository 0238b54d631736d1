"""``berth orgs``: the organizations you belong to, switching, members, invitations, roles."""

from typing import TYPE_CHECKING, Final

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

ROLES: Final = ("owner", "admin", "member", "viewer")
_INVITABLE: Final = ("admin", "member", "viewer")
ORG_COLUMNS: Final = (
    ("ID", "organizationId"), ("SLUG", "slug"), ("NAME", "name"), ("ROLE", "role"),
)  # fmt: skip
MEMBER_COLUMNS: Final = (
    ("ID", "memberId"), ("E-MAIL", "email"), ("NAME", "displayName"), ("ROLE", "role"),
    ("JOINED", "joinedAt"),
)  # fmt: skip
INVITATION_COLUMNS: Final = (
    ("ID", "invitationId"), ("E-MAIL", "email"), ("ROLE", "role"), ("STATUS", "status"),
    ("EXPIRES", "expiresAt"),
)  # fmt: skip


async def _current(api: ApiClient) -> str:
    context = await api.get("/organizations/current-context")
    return str(render.lookup(context, "currentOrganization.organizationId"))


async def _member_id(api: ApiClient, organization_id: str, ref: str) -> str:
    """A member by id or e-mail address."""
    page = await api.get_all(f"/organizations/{organization_id}/members", 250)
    for item in objects(page, "items"):
        if ref in (item.get("memberId"), item.get("email")):
            return text(item, "memberId")
    raise ClientError(f"no member {ref!r} in this organization")


@click.group()
def orgs() -> None:
    """Organizations: where you act, who else is in them, with which role."""


@orgs.command("list")
@click.pass_obj
def orgs_list(opts: "Options") -> None:
    """List the organizations you belong to and the one you act in."""
    answer = opts.call(lambda api: api.get("/organizations/current-context"))

    def human(data: JsonObject) -> None:
        current = render.lookup(data, "currentOrganization.slug")
        click.echo(f"Acting in {current}.")
        render.table(objects(data, "organizations"), ORG_COLUMNS, empty="No organizations.")

    opts.show(answer, human)


@orgs.command("switch")
@click.argument("organization")
@click.pass_obj
def orgs_switch(opts: "Options", organization: str) -> None:
    """Act in ORGANIZATION (id or slug) with your login session from now on."""

    async def switch(api: ApiClient) -> JsonObject:
        context = await api.get("/organizations/current-context")
        found = [
            o
            for o in objects(context, "organizations")
            if organization in (o.get("organizationId"), o.get("slug"))
        ]
        target = text(found[0], "organizationId") if found else organization
        return await api.post("/organizations/current-context/switch", {"organizationId": target})

    answer = opts.call(switch)
    opts.show(
        answer,
        lambda d: click.echo(
            f"Now acting in {render.lookup(d, 'currentOrganization.slug')} as "
            f"{render.lookup(d, 'currentOrganization.role')}."
        ),
    )


@orgs.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@click.pass_obj
def orgs_create(opts: "Options", slug: str, name: str | None) -> None:
    """Create an organization you own (then `berth orgs switch SLUG`)."""
    body: JsonObject = {"slug": slug, "name": name or slug}
    answer = opts.call(lambda api: api.post("/organizations", body))
    opts.show(answer, lambda d: click.echo(f"Created {text(d, 'organizationId')} ({slug})."))


@orgs.command("members")
@click.pass_obj
def orgs_members(opts: "Options") -> None:
    """List the current organization's members."""

    async def members(api: ApiClient) -> JsonObject:
        return await api.get_all(f"/organizations/{await _current(api)}/members", 250)

    answer = opts.call(members)
    opts.show(
        answer, lambda d: render.table(objects(d, "items"), MEMBER_COLUMNS, empty="No members.")
    )


@orgs.command("invite")
@click.argument("email")
@click.option("--role", type=click.Choice(_INVITABLE), default="member", show_default=True)
@click.pass_obj
def orgs_invite(opts: "Options", email: str, role: str) -> None:
    """Invite EMAIL with a role; prints the one-time invitation secret (shown only now)."""

    async def invite(api: ApiClient) -> JsonObject:
        organization_id = await _current(api)
        body: JsonObject = {"email": email, "role": role}
        return await api.post(f"/organizations/{organization_id}/invitations", body)

    answer = opts.call(invite)

    def human(data: JsonObject) -> None:
        click.echo(f"Invited {email} as {role}; expires {text(data, 'expiresAt')}.")
        click.echo("Give them this secret (shown once) for `berth orgs accept`:")
        click.echo(f"  {text(data, 'token')}")

    opts.show(answer, human)


@orgs.command("invitations")
@click.pass_obj
def orgs_invitations(opts: "Options") -> None:
    """List the current organization's invitations."""

    async def listed(api: ApiClient) -> JsonObject:
        return await api.get_all(f"/organizations/{await _current(api)}/invitations", 250)

    answer = opts.call(listed)
    opts.show(
        answer,
        lambda d: render.table(objects(d, "items"), INVITATION_COLUMNS, empty="No invitations."),
    )


@orgs.command("accept")
@click.argument("secret")
@click.pass_obj
def orgs_accept(opts: "Options", secret: str) -> None:
    """Join with an invitation SECRET, as the account you are logged in with."""
    answer = opts.call(lambda api: api.post("/organization-invitations/accept", {"token": secret}))
    opts.show(
        answer,
        lambda d: click.echo(
            f"Joined {text(d, 'organizationId')} as {render.lookup(d, 'member.role')}."
        ),
    )


@orgs.command("role")
@click.argument("member")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_obj
def orgs_role(opts: "Options", member: str, role: str) -> None:
    """Give MEMBER (id or e-mail) ROLE; a downgrade applies to their open streams at once."""

    async def change(api: ApiClient) -> JsonObject:
        organization_id = await _current(api)
        member_id = await _member_id(api, organization_id, member)
        path = f"/organizations/{organization_id}/members/{member_id}/role"
        return await api.post(path, {"role": role})

    answer = opts.call(change)
    opts.show(answer, lambda d: click.echo(f"{text(d, 'email')} is now {text(d, 'role')}."))


@orgs.command("grant")
@click.argument("member")
@click.option(
    "--project",
    "projects",
    multiple=True,
    metavar="PROJECT_ID=ROLE",
    help="A project and the role there (member or viewer); repeat for more.",
)
@click.option(
    "--clear", is_flag=True, help="Lift the limit: every project, with the role's rights."
)
@click.pass_obj
def orgs_grant(opts: "Options", member: str, projects: tuple[str, ...], clear: bool) -> None:
    """Limit MEMBER (id or e-mail) to some projects, each with its own role (replaces them)."""
    if clear == bool(projects):
        raise click.UsageError("give --project PROJECT_ID=ROLE (one or more) or --clear")
    grants: dict[str, object] = {}
    for item in projects:
        project_id, _, role = item.partition("=")
        if not project_id or role not in ("member", "viewer"):
            raise click.BadParameter(f"{item!r}: expected PROJECT_ID=member|viewer")
        grants[project_id] = role

    async def grant(api: ApiClient) -> JsonObject:
        organization_id = await _current(api)
        member_id = await _member_id(api, organization_id, member)
        path = f"/organizations/{organization_id}/members/{member_id}/project-grants"
        return await api.post(path, {"projectRoles": grants or None})

    answer = opts.call(grant)
    opts.show(
        answer,
        lambda d: click.echo(
            f"{text(d, 'email')}: "
            + (", ".join(f"{k} {v}" for k, v in grants.items()) or "every project")
            + "."
        ),
    )


@orgs.command("remove")
@click.argument("member")
@click.pass_obj
def orgs_remove(opts: "Options", member: str) -> None:
    """Remove MEMBER (id or e-mail); their streams and terminals here end at once."""

    async def remove(api: ApiClient) -> JsonObject:
        organization_id = await _current(api)
        member_id = await _member_id(api, organization_id, member)
        return await api.call(
            "DELETE", f"/organizations/{organization_id}/members/{member_id}", body={}
        )

    answer = opts.call(remove)
    opts.show(answer, lambda d: click.echo(f"Removed member {text(d, 'memberId')}."))


COMMANDS: Final = (orgs,)
