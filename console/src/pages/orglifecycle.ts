// Creating an organization (the console switches to it) and deleting the one acted in: the name
// typed to confirm, the servers and resources that still block it listed from the API's refusal,
// and afterwards the session switched to another organization the person belongs to.
import { api, ApiError } from "../api";
import { h, link } from "../dom";
import { navigate } from "../nav";
import { currentContext, forgetContext } from "../org";
import { actionForm } from "../widgets";

async function switchTo(organizationId: string): Promise<void> {
  await api("POST", "/organizations/current-context/switch", { organizationId });
  forgetContext();
  // A whole drawing: the header's switcher and the page belong to the new organization.
  navigate("/organization");
}

export function createForm(): HTMLFormElement {
  const name = h("input", { name: "name", id: "new-org-name", required: true, maxlength: 200 });
  const slug = h("input", { name: "slug", id: "new-org-slug", required: true, maxlength: 100, autocomplete: "off" });
  return actionForm("Create an organization", [["Organization name", name], ["Organization slug", slug]], "Create and switch", async () => {
    const created = await api("POST", "/organizations", { name: name.value, slug: slug.value });
    await switchTo(created.organizationId);
  });
}

const BLOCKER_PAGES: Record<string, string> = { server: "/servers/", resource: "/resources/" };

function blockerList(blockers: any[]): HTMLElement {
  return h("ul", { id: "delete-blockers" }, ...blockers.map((b) => {
    const page = BLOCKER_PAGES[b.kind];
    const what = page ? link(page + b.relatedEntityId, b.relatedEntityId) : h("code", {}, b.relatedEntityId);
    return h("li", { "data-kind": b.kind }, `${b.kind} `, what);
  }));
}

export function deleteForm(organizationId: string, organizationName: string): HTMLFormElement {
  const typed = h("input", { name: "confirm-name", id: "delete-org-name", autocomplete: "off" });
  const blockers = h("div", { id: "delete-org-blockers" });
  const form = actionForm("Delete organization", [[`Type ${organizationName} to confirm`, typed]], "Delete organization", async () => {
    blockers.replaceChildren();
    if (typed.value !== organizationName) throw new Error(`Type the organization's name (${organizationName}) to confirm.`);
    try {
      await api("DELETE", `/organizations/${organizationId}`, { confirmation: { organizationId } });
    } catch (error) {
      const found = error instanceof ApiError ? error.details.blockers : null;
      if (Array.isArray(found) && found.length) {
        blockers.replaceChildren(h("p", {}, "Delete or move these first:"), blockerList(found));
      }
      throw error;
    }
    forgetContext();
    const other = (await currentContext()).organizations.find((o) => o.organizationId !== organizationId);
    if (other) await switchTo(other.organizationId);
    else return `${organizationName} is deleted. You belong to no other organization: create one to go on.`;
  }, { class: "card danger" });
  const button = form.querySelector<HTMLButtonElement>("button[type=submit]")!;
  button.disabled = true;
  // The button waits for the exact name: nothing is deleted by a stray click.
  typed.addEventListener("input", () => (button.disabled = typed.value !== organizationName));
  form.insertBefore(h("p", { class: "hint" }, "Only an empty organization can be deleted: its members, invitations and API tokens end with it."), form.querySelector("label"));
  form.append(blockers);
  return form;
}
