// The organization the console acts in: the current context (who, where, which role, what the
// role may do) read once per shell drawing, and the header's switcher, which switches the login
// session to another organization and draws the app again there.
import { api } from "./api";
import { errorBox, h } from "./dom";

export interface OrgRef {
  organizationId: string;
  name: string;
  slug: string;
  role: string | null;
}

export interface Context {
  user: { userId: string; email: string; displayName: string } | null;
  currentOrganization: OrgRef;
  organizations: OrgRef[];
  permissions: Record<string, boolean>;
}

let cached: Promise<Context> | null = null;

// One read shared by the header and the page drawn under it; a switch or a sign-out forgets it.
export function currentContext(): Promise<Context> {
  cached ??= api<Context>("GET", "/organizations/current-context").catch((error) => {
    cached = null;
    throw error;
  });
  return cached;
}

export function forgetContext(): void {
  cached = null;
}

// Roles that may change the organization's profile (organizations:write): admins and owners.
export function canAdminister(role: string | null): boolean {
  return role === "owner" || role === "admin";
}

// The header's organization picker; ``redraw`` draws the whole app again after a switch (every
// page's data belongs to the organization acted in).
export function switcher(redraw: () => void): HTMLElement {
  const pick = h("select", { id: "org-switch", "aria-label": "Organization", disabled: true });
  const out = h("span", { id: "org-switch-status", role: "status" });
  const box = h("span", { class: "org-switch" }, pick, out);
  void currentContext()
    .then((context) => {
      const current = context.currentOrganization.organizationId;
      pick.replaceChildren(
        ...context.organizations.map((org) =>
          h("option", { value: org.organizationId, selected: org.organizationId === current }, `${org.name}${org.role ? ` (${org.role})` : ""}`),
        ),
      );
      pick.disabled = context.organizations.length < 2;
      pick.addEventListener("change", async () => {
        out.replaceChildren();
        try {
          await api("POST", "/organizations/current-context/switch", { organizationId: pick.value });
          forgetContext();
          redraw();
        } catch (error) {
          pick.value = current;
          out.replaceChildren(errorBox(error));
        }
      });
    })
    .catch(() => {
      // No context (e.g. a token without account:read): the switcher stays empty and disabled.
    });
  return box;
}
