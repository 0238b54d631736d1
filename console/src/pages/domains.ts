// A resource's domain bindings: add, verify (DNS checked again), confirm ownership by the DNS
// TXT record, delete after its safety check,
// each shown with its DNS observation, ownership record and route readiness.
import { api, query } from "../api";
import { h, link } from "../dom";
import { actionButton, actionForm, select, table } from "../widgets";

export async function page(root: HTMLElement, [resourceId]: string[]): Promise<void> {
  const resource = (await api("GET", `/resources/${resourceId}`)).resource;
  const servers = await api("GET", "/servers" + query({ limit: 200 }));
  const out = h("div", { role: "status", id: "domain-status" });
  const list = h("div", { id: "domains" });
  const domain = h("input", { name: "domainName", id: "domain-name", required: true, placeholder: "shop.example.com", autocomplete: "off" });
  const pathPrefix = h("input", { name: "pathPrefix", id: "domain-path", placeholder: "/" });
  const server = select("domain-server", [["", "the latest deployment's server"], ...servers.items.map((s: any): [string, string] => [s.id, s.name])]);
  const tls = select("domain-tls", [["auto", "automatic (ACME)"], ["imported", "imported certificate"], ["disabled", "no TLS"]]);
  root.append(
    h("p", { class: "crumbs" }, link(`/resources/${resourceId}`, resource.name), " / domains"),
    h("h1", {}, `Domains of ${resource.name}`),
    list,
    out,
    actionForm("Add a domain", [["Domain name", domain], ["Path prefix", pathPrefix], ["Server", server], ["TLS", tls]], "Add domain", async () => {
      await api("POST", "/domain-bindings", {
        projectId: resource.projectId,
        environmentId: resource.environmentId,
        resourceId,
        domainName: domain.value,
        pathPrefix: pathPrefix.value || null,
        serverId: server.value || null,
        tlsMode: tls.value,
      });
      const added = `${domain.value} added; create the DNS records shown, then verify.`;
      domain.value = "";
      pathPrefix.value = "";
      await load();
      return added;
    }),
    h("p", {}, link("/certificates", "All certificates")),
  );

  async function remove(binding: any): Promise<void> {
    const check = await api("GET", `/domain-bindings/${binding.id}/delete-check`);
    if (!check.safeToDelete) {
      const reasons = check.blockers.map((b: any) => b.message).join("; ");
      throw new Error(`${binding.domainName} cannot be deleted: ${reasons}`);
    }
    const warnings = check.warnings.map((w: any) => `\n- ${w.message}`).join("");
    if (!confirm(`Delete ${binding.domainName}?${warnings}`)) return;
    await api("DELETE", `/domain-bindings/${binding.id}`, { confirmation: { domainBindingId: binding.id } });
    await load();
  }

  async function load(): Promise<void> {
    const answer = await api("GET", "/domain-bindings" + query({ resourceId }));
    const shown = await Promise.all(answer.items.map((b: any) => api("GET", `/domain-bindings/${b.id}`)));
    list.replaceChildren(table("domain-rows", ["Domain", "Status", "DNS", "Ownership record", "Route", ""], shown.map((s: any) => {
      const b = s.binding;
      const dns = b.dnsObservation;
      const route = s.routeReadiness.selectedRoute;
      return h("tr", { "data-domain": b.domainName },
        h("td", {}, h("strong", {}, b.domainName), b.pathPrefix !== "/" ? h("code", {}, b.pathPrefix) : null, h("div", { class: "hint" }, `TLS ${b.tlsMode}`)),
        h("td", { class: "binding-status" }, b.status, h("div", { class: "hint" }, `${b.verificationAttemptCount} check(s)`)),
        h("td", { class: "dns-observation", "data-dns-status": dns.status }, h("strong", {}, dns.status), h("div", {}, dns.message),
          dns.expectedTargets.length ? h("div", { class: "hint" }, `expected ${dns.expectedTargets.join(", ")}; seen ${dns.observedTargets.join(", ") || "nothing"}`) : null),
        h("td", {}, h("code", {}, `${b.ownership.dnsRecordName} TXT ${b.ownership.token}`), b.ownership.confirmedAt ? h("div", { class: "hint" }, "confirmed") : null),
        h("td", { class: "route-readiness", "data-readiness": s.routeReadiness.status }, h("strong", {}, s.routeReadiness.status),
          h("div", {}, route.copySafeSummary.message), route.blockingReason ? h("div", { class: "hint" }, `Next: ${route.recommendedAction}`) : null),
        h("td", { class: "actions" },
          actionButton("Verify", out, async () => {
            await api("POST", `/domain-bindings/${b.id}/verification-retries`, {});
            await load();
          }, { name: `Verify ${b.domainName}` }),
          b.ownership.confirmedAt
            ? null
            : actionButton("Confirm ownership", out, async () => {
                // The coordinator looks the TXT record up; not published yet is a 409 saying what it saw.
                await api("POST", `/domain-bindings/${b.id}/ownership-confirmations`, { method: "dns-txt" });
                await load();
              }, { name: `Confirm ownership of ${b.domainName}` }),
          link(`/certificates?domainBindingId=${b.id}`, "Certificates"),
          actionButton("Delete", out, () => remove(b), { name: `Delete ${b.domainName}` })),
      );
    }), "No domains bound yet."));
  }
  await load();
}
