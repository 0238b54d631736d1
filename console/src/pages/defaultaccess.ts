// Default access domain policies: the system one and one per server (which wins over it), each
// shown and set: mode (generated names under a base domain, or none), base domain, TLS mode.
import { api, query } from "../api";
import { h, link } from "../dom";
import { actionForm, select, when } from "../widgets";

const TLS: [string, string][] = [
  ["on-demand", "on-demand (Caddy orders a certificate per name at first use)"],
  ["certificate", "certificate (a *.base-domain certificate the edge already holds)"],
  ["disabled", "disabled (plain HTTP)"],
];

function describe(policy: any | null, fallback: string): string {
  if (!policy) return fallback;
  const names = policy.mode === "custom" ? `names under ${policy.baseDomain}, TLS ${policy.tlsMode}` : "no generated names (disabled)";
  return `${names}; set ${when(policy.updatedAt)}.`;
}

// One scope's policy: what is set now, and the form that replaces it.
async function scopeCard(title: string, scope: { kind: string; serverId?: string }, fallback: string): Promise<HTMLElement> {
  const key = scope.serverId ?? "system";
  const current = h("p", { class: "policy-current", "data-scope": key });
  const mode = select(`access-mode-${key}`, [["custom", "generated names under a base domain"], ["disabled", "disabled (no generated names)"]]);
  const base = h("input", { name: "baseDomain", id: `access-base-${key}`, maxlength: 253, placeholder: "apps.example.com" });
  const tls = select(`access-tls-${key}`, TLS);

  async function load(): Promise<void> {
    const shown = await api("GET", "/default-access-domain-policies/show" + query({ scopeKind: scope.kind, serverId: scope.serverId }));
    const p = shown.policy;
    current.dataset.mode = p?.mode ?? "none";
    current.replaceChildren(describe(p, fallback));
    if (p) {
      mode.value = p.mode;
      base.value = p.baseDomain ?? "";
      tls.value = p.tlsMode;
    }
  }

  const form = actionForm(title, [["Mode", mode], ["Base domain", base], ["TLS mode", tls]], "Save policy", async () => {
    await api("POST", "/default-access-domain-policies", {
      scope,
      mode: mode.value,
      baseDomain: base.value.trim() || null,
      tlsMode: tls.value,
    });
    await load();
    return "Saved: resources get it from their next deployment.";
  }, { "data-scope": key });
  form.insertBefore(current, form.children[1]);
  await load();
  return form;
}

export async function page(root: HTMLElement): Promise<void> {
  const serverId = new URLSearchParams(location.search).get("serverId");
  root.append(
    h("p", { class: "crumbs" }, link("/servers", "Servers"), " / default access domains"),
    h("h1", {}, "Default access domains"),
    h("p", { class: "hint" }, "Each deployed resource gets a generated host name under a base domain. A server's own policy wins over the system one."),
  );
  if (serverId) {
    const server = (await api("GET", `/servers/${serverId}`)).server;
    root.append(await scopeCard(`Policy of the server ${server.name}`, { kind: "deployment-target", serverId }, "No policy of its own: the system policy applies."));
    root.append(h("p", {}, link("/default-access", "The system policy and every server")));
    return;
  }
  root.append(await scopeCard("System policy", { kind: "system" }, "No system policy set."));
  const servers = (await api("GET", "/servers" + query({ limit: 200 }))).items;
  for (const s of servers) {
    root.append(await scopeCard(`Policy of the server ${s.name}`, { kind: "deployment-target", serverId: s.id }, "No policy of its own: the system policy applies."));
  }
}
