// The organization acted in: its profile, members (role, project grants, removal), invitations
// (the one-time secret shown once), the owner transfer, creating another organization and
// deleting this one (pages/orglifecycle.ts). Controls the caller's role may not
// use are not drawn; if one is reached anyway (the role changed meanwhile), the API's 403 shows.
import { api } from "../api";
import { h } from "../dom";
import { canAdminister, currentContext, forgetContext, type Context } from "../org";
import { actionButton, actionForm, select, table, when } from "../widgets";
import { createForm, deleteForm } from "./orglifecycle";

const ROLES = ["owner", "admin", "member", "viewer"];

export async function page(root: HTMLElement): Promise<void> {
  const context: Context = await currentContext();
  const orgId = context.currentOrganization.organizationId;
  const base = `/organizations/${orgId}`;
  const may = context.permissions;
  const myRole = context.currentOrganization.role;
  const [profile, projects] = await Promise.all([
    api("GET", `${base}/profile`),
    api("GET", "/projects").then((answer) => answer.items as any[]),
  ]);
  const projectName = new Map(projects.map((p) => [p.id, p.name] as [string, string]));
  const out = h("div", { role: "status", id: "org-status" });
  const members = h("div", { id: "members" });
  const invitations = h("div", { id: "invitations" });
  const heading = h("h1", {}, profile.name);
  let memberItems: any[] = [];
  const me = () => memberItems.find((m) => m.userId === context.user?.userId);

  // Roles at or below the caller's: nobody grants a role above its own (only owners make owners).
  const grantable = ROLES.slice(myRole === "owner" ? 0 : 1);

  const name = h("input", { name: "name", id: "org-name", required: true, maxlength: 200, value: profile.name });
  const slug = h("input", { name: "slug", id: "org-slug", required: true, maxlength: 100, value: profile.slug });
  const inviteEmail = h("input", { name: "email", id: "invite-email", type: "email", required: true, maxlength: 320 });
  const inviteRole = select("invite-role", grantable.filter((r) => r !== "owner").map((r) => [r, r]));
  inviteRole.value = "member";
  const invited = h("div", { id: "invitation-created", role: "status" });
  const grantPick = select("grant-member", []);
  const everyProject = h("input", { type: "checkbox", id: "grant-every", name: "every", checked: true });
  const projectPicks = projects.map((p) => [p, select(`grant-${p.id}`, [["", "no access"], ["member", "member"], ["viewer", "viewer"]], { "aria-label": `Role in ${p.name}` })] as const);
  const transferPick = select("transfer-to", []);

  const parts: (Node | null)[] = [
    heading,
    h("p", { class: "hint", id: "org-summary" }, `Slug `, h("code", {}, profile.slug), ` · your role: `, h("strong", { id: "my-role" }, myRole ?? "none"), ` · created ${when(profile.createdAt)}`),
    out,
    canAdminister(myRole)
      ? actionForm("Organization profile", [["Name", name], ["Slug", slug]], "Save profile", async () => {
          const saved = await api("POST", `${base}/profile`, { name: name.value, slug: slug.value });
          heading.textContent = saved.name;
          forgetContext();
          return "Saved.";
        })
      : null,
    h("section", { "aria-labelledby": "members-title" }, h("h2", { id: "members-title" }, "Members"), members),
    may.canUpdateMemberRoles
      ? actionForm("Project grants", [["Member", grantPick], ["Every project (no limit)", everyProject], ...projectPicks.map(([p, pick]): [string, HTMLElement] => [p.name, pick])], "Save grants", async () => {
          if (!grantPick.value) throw new Error("Only members and viewers can be limited to projects: there is none.");
          const roles: Record<string, string> = {};
          for (const [p, pick] of projectPicks) if (pick.value) roles[p.id] = pick.value;
          await api("POST", `${base}/members/${grantPick.value}/project-grants`, { projectRoles: everyProject.checked ? null : roles });
          await loadMembers();
          return "Grants saved.";
        })
      : null,
    may.canTransferOwnership
      ? actionForm("Transfer ownership", [["New owner", transferPick]], "Transfer ownership", async () => {
          const target = memberItems.find((m) => m.memberId === transferPick.value);
          if (!target) throw new Error("Nobody else is a member yet: invite the new owner first.");
          if (!confirm(`Make ${target.email} the owner? You become an admin.`)) return;
          await api("POST", `${base}/owner-transfer`, { fromMemberId: me()?.memberId, toMemberId: transferPick.value });
          forgetContext();
          root.replaceChildren();
          await page(root);
        })
      : null,
    h("section", { "aria-labelledby": "invitations-title" },
      h("h2", { id: "invitations-title" }, "Invitations"),
      invitations,
      may.canInviteMembers
        ? actionForm("Invite someone", [["E-mail", inviteEmail], ["Role", inviteRole]], "Invite", async () => {
            const answer = await api("POST", `${base}/invitations`, { email: inviteEmail.value, role: inviteRole.value });
            inviteEmail.value = "";
            const mailed = answer.emailStatus === "sent" ? "It was also e-mailed." : answer.emailStatus === "failed" ? `E-mailing it failed: ${answer.emailError}` : "No e-mail channel is configured: pass it on yourself.";
            invited.replaceChildren(
              h("p", {}, `Invitation for ${answer.email} (${answer.role}). Copy the link now: it is shown only this once. ${mailed}`),
              h("pre", {}, h("code", { id: "invitation-link" }, answer.acceptUrl)),
              h("button", { type: "button", onclick: () => void navigator.clipboard.writeText(answer.acceptUrl) }, "Copy link"),
              h("p", { class: "hint" }, "The link opens the accept page with the secret filled in. The secret alone, for ", h("code", {}, "berth orgs accept"), ":"),
              h("pre", {}, h("code", { id: "invitation-secret" }, answer.token)),
              h("button", { type: "button", onclick: () => void navigator.clipboard.writeText(answer.token) }, "Copy secret"),
            );
            await loadInvitations();
          })
        : null,
      invited),
    // Organizations belong to people: an API token's caller has no account to own one.
    context.user ? createForm() : null,
    myRole === "owner" ? deleteForm(orgId, profile.name) : null,
  ];
  root.append(...parts.filter((part): part is Node => part !== null));

  function grantsText(m: any): string {
    if (!m.projectRoles) return "every project";
    const entries = Object.entries(m.projectRoles);
    return entries.length ? entries.map(([id, role]) => `${projectName.get(id) ?? id}: ${role}`).join(", ") : "no project";
  }

  async function loadMembers(): Promise<void> {
    memberItems = (await api("GET", `${base}/members`)).items;
    const others = memberItems.filter((m) => m.userId !== context.user?.userId);
    grantPick.replaceChildren(...memberItems.filter((m) => m.role === "member" || m.role === "viewer").map((m) => h("option", { value: m.memberId }, m.email)));
    transferPick.replaceChildren(...others.map((m) => h("option", { value: m.memberId }, m.email)));
    members.replaceChildren(table("member-rows", ["Member", "Role", "Projects", "Joined", ""], memberItems.map((m) => {
      const isMe = m.userId === context.user?.userId;
      const role = select(`role-${m.memberId}`, grantable.map((r) => [r, r]), { "aria-label": `Role of ${m.email}` });
      role.value = m.role;
      const manageable = !isMe && (m.role !== "owner" || myRole === "owner");
      return h("tr", { "data-member": m.email },
        h("td", {}, h("strong", {}, m.displayName), h("div", { class: "hint" }, m.email), isMe ? h("div", { class: "hint" }, "you") : null),
        h("td", { class: "member-role" }, m.role),
        h("td", { class: "member-grants" }, grantsText(m)),
        h("td", {}, when(m.joinedAt)),
        h("td", { class: "actions" },
          may.canUpdateMemberRoles && manageable
            ? [role, actionButton("Change role", out, async () => {
                await api("POST", `${base}/members/${m.memberId}/role`, { role: role.value });
                await loadMembers();
              }, { name: `Change the role of ${m.email}` })]
            : null,
          may.canRemoveMembers && manageable
            ? actionButton("Remove", out, async () => {
                await api("DELETE", `${base}/members/${m.memberId}`, {});
                await loadMembers();
              }, { confirmText: `Remove ${m.email} from ${profile.name}? Their sessions and tokens here stop working.`, name: `Remove ${m.email}` })
            : null),
      );
    }), "No members."));
  }

  async function loadInvitations(): Promise<void> {
    if (!may.canListMembers) return;
    const items: any[] = (await api("GET", `${base}/invitations`)).items;
    invitations.replaceChildren(table("invitation-rows", ["E-mail", "Role", "Status", "Invited by", "Expires", ""], items.map((i) =>
      h("tr", { "data-invitation": i.email },
        h("td", {}, i.email),
        h("td", {}, i.role),
        h("td", { class: "invitation-status" }, i.status),
        h("td", {}, i.inviter?.email ?? "–"),
        h("td", {}, when(i.expiresAt)),
        h("td", {}, i.status === "pending" && may.canInviteMembers
          ? actionButton("Revoke", out, async () => {
              await api("POST", `${base}/invitations/${i.invitationId}/revoke`, {});
              await loadInvitations();
            }, { confirmText: `Revoke the invitation for ${i.email}? Its secret stops working.`, name: `Revoke the invitation for ${i.email}` })
          : null),
      )), "No invitations."));
  }

  await Promise.all([loadMembers(), loadInvitations()]);
}
