// API tokens: list (only the last characters are ever shown), create (the token is shown once,
// here, and never again), revoke.
import { api, query } from "../api";
import { errorBox, field, h } from "../dom";

export async function page(root: HTMLElement): Promise<void> {
  const rows = h("tbody", { id: "token-rows" });
  const name = h("input", { name: "displayName", id: "token-name", required: true, maxlength: 200 });
  const permissions = h(
    "select",
    { name: "permissions", id: "token-permissions" },
    h("option", { value: "servers:read" }, "Read servers only (the API's default)"),
    h("option", { value: "*" }, "Everything this account may do (*)"),
  );
  const created = h("div", { id: "token-created", role: "status" });
  const form = h("form", { class: "card", "aria-label": "New API token" }, h("h2", {}, "New API token"), field("Name", name), field("Permissions", permissions), h("button", { type: "submit" }, "Create"), created);
  root.append(
    h("h1", {}, "API tokens"),
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...["Name", "Ends with", "Status", "Created", ""].map((t) => h("th", { scope: "col" }, t)))), rows)),
    form,
  );
  const load = async () => {
    const answer = await api("GET", "/deploy-tokens" + query({ limit: 100 }));
    rows.replaceChildren(
      ...answer.items.map((t: any) =>
        h("tr", {},
          h("td", {}, t.displayName),
          h("td", {}, h("code", {}, `…${t.secretSuffix}`)),
          h("td", {}, t.status),
          h("td", {}, new Date(t.createdAt).toLocaleString()),
          h("td", {}, t.status === "active"
            ? h("button", { type: "button", class: "small", "aria-label": `Revoke ${t.displayName}`, onclick: async () => {
                if (!confirm(`Revoke ${t.displayName}? Clients using it stop working.`)) return;
                await api("POST", `/deploy-tokens/${t.tokenId}/revoke`, { confirmation: { tokenId: t.tokenId } }).catch((e) => created.replaceChildren(errorBox(e)));
                await load();
              } }, "Revoke")
            : null))),
    );
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", "/deploy-tokens", { displayName: name.value, scope: { permissions: [permissions.value] } });
      const secret = h("code", { id: "new-token" }, answer.token);
      created.replaceChildren(
        h("p", {}, "Copy it now: it is shown only this once."),
        h("pre", {}, secret),
        h("button", { type: "button", onclick: () => void navigator.clipboard.writeText(answer.token) }, "Copy"),
      );
      name.value = "";
      await load();
    } catch (error) {
      created.replaceChildren(errorBox(error));
    }
  });
  await load();
}
