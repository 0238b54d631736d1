// One DNS provider (``GET /dns-providers/{id}``): its server, zone and TSIG key (the secret only
// ever masked), the wildcard certificates that use it, and *Delete* (refused while in use).
import { api } from "../api";
import { h, link } from "../dom";
import { navigate } from "../nav";
import { actionButton, table, when } from "../widgets";

export async function page(root: HTMLElement, [providerId]: string[]): Promise<void> {
  const [p, wildcards] = await Promise.all([api("GET", `/dns-providers/${providerId}`), api("GET", "/wildcard-certificates")]);
  const using = wildcards.items.filter((c: any) => c.dnsProviderId === p.id);
  const out = h("div", { role: "status", id: "dns-provider-status" });
  const facts: [string, string | HTMLElement][] = [
    ["Kind", p.kind],
    ["Server", h("code", {}, p.serverAddress)],
    ["Zone", p.zone],
    ["TSIG key", `${p.tsigKeyName} (${p.tsigAlgorithm})`],
    ["TSIG secret", h("span", { class: "secret" }, p.tsigSecret)],
    ["Added", when(p.createdAt)],
  ];
  root.append(
    h("p", { class: "crumbs" }, link("/certificates", "Certificates"), " / DNS provider"),
    h("h1", {}, `DNS provider ${p.name}`),
    h("dl", { class: "facts", id: "dns-provider-facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("h2", {}, "Wildcard certificates using it"),
    table("dns-provider-wildcards", ["Names", "Status", "Expires"], using.map((c: any) =>
      h("tr", { "data-wildcard": c.domainName },
        h("td", {}, link(`/wildcard-certificates/${c.id}`, `*.${c.domainName}`)),
        h("td", {}, h("span", { class: `state state-${c.status}` }, c.status)),
        h("td", {}, when(c.expiresAt)))), "None."),
    h("div", { class: "actions" },
      actionButton("Delete", out, async () => {
        await api("DELETE", `/dns-providers/${p.id}`);
        navigate("/certificates");
      }, { confirmText: `Delete the DNS provider ${p.name}?`, name: `Delete DNS provider ${p.name}` })),
    out,
  );
}
