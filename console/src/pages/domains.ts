// A resource's domain bindings: add (served, or redirecting to another binding), verify (DNS
// checked again), confirm ownership by the DNS TXT record, the HTTP token the edge serves or an
// audited manual override, delete after its safety check; each shown with its redirect, DNS
// observation, ownership record and route readiness.
import { api, query } from "../api";
import { errorBox, h, link } from "../dom";
import { actionButton, actionForm, select, table } from "../widgets";

export async function page(root: HTMLElement, [resourceId]: string[]): Promise<void> {
  const resource = (await api("GET", `/resources/${resourceId}`)).resource;
  const servers = await api("GET", "/servers" + query({ limit: 200 }));
  const out = h("div", { role: "status", id: "domain-status" });
  const list = h("div", { id: "domains" });
  const domain = h("input", { name: "domainName", id: "domain-name", required: true, placeholder: "shop.example.com", autocomplete: "off" });
  const pathPrefix = h("input", { name: "pathPrefix", id: "domain-path", placeholder: "/" });
  const server = select("domain-server", [["", "the latest deployment's server"], ...servers.items.map((s: any): [string, string] => [s.id, s.name])]);
  const redirectTo = h("input", { name: "redirectTo", id: "domain-redirect-to", placeholder: "another bound domain (optional)", autocomplete: "off" });
  const redirectStatus = select("domain-redirect-status", [["", "301 (default)"], ["301", "301 moved permanently"], ["302", "302 found"], ["307", "307 temporary"], ["308", "308 permanent"]]);
  const tls = select("domain-tls", [["auto", "automatic (ACME)"], ["imported", "imported certificate"], ["disabled", "no TLS"]]);
  root.append(
    h("p", { class: "crumbs" }, link(`/resources/${resourceId}`, resource.name), " / domains"),
    h("h1", {}, `Domains of ${resource.name}`),
    list,
    out,
    actionForm("Add a domain", [["Domain name", domain], ["Path prefix", pathPrefix], ["Server", server], ["TLS", tls], ["Redirect to", redirectTo], ["Redirect status", redirectStatus]], "Add domain", async () => {
      await api("POST", "/domain-bindings", {
        projectId: resource.projectId,
        environmentId: resource.environmentId,
        resourceId,
        domainName: domain.value,
        pathPrefix: pathPrefix.value || null,
        serverId: server.value || null,
        tlsMode: tls.value,
        redirectTo: redirectTo.value || null,
        redirectStatus: redirectStatus.value ? Number(redirectStatus.value) : null,
      });
      const added = `${domain.value} added; create the DNS records shown, then verify.`;
      domain.value = "";
      pathPrefix.value = "";
      redirectTo.value = "";
      redirectStatus.value = "";
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
        h("td", {}, h("strong", {}, b.domainName), b.pathPrefix !== "/" ? h("code", {}, b.pathPrefix) : null, h("div", { class: "hint" }, `TLS ${b.tlsMode}`),
          b.redirectTo ? h("div", { class: "redirect", "data-redirect-to": b.redirectTo, "data-redirect-status": b.redirectStatus }, `redirects to ${b.redirectTo} (${b.redirectStatus})`) : null),
        h("td", { class: "binding-status" }, b.status, h("div", { class: "hint" }, `${b.verificationAttemptCount} check(s)`)),
        h("td", { class: "dns-observation", "data-dns-status": dns.status }, h("strong", {}, dns.status), h("div", {}, dns.message),
          dns.expectedTargets.length ? h("div", { class: "hint" }, `expected ${dns.expectedTargets.join(", ")}; seen ${dns.observedTargets.join(", ") || "nothing"}`) : null),
        h("td", { class: "ownership", "data-method": b.ownership.method ?? "", "data-confirmed": String(Boolean(b.ownership.confirmedAt)) },
          h("div", {}, "DNS: ", h("code", { class: "ownership-txt" }, `${b.ownership.dnsRecordName} TXT ${b.ownership.token}`)),
          // What the edge answers once a deployment carries the route (the ACME-style well-known path).
          h("div", {}, "HTTP: ", h("code", { class: "ownership-http" }, `http://${b.domainName}${b.ownership.httpPath}`), " answers ", h("code", {}, b.ownership.token)),
          h("div", { class: "hint ownership-state" }, ownershipState(b.ownership))),
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
          b.ownership.confirmedAt || b.ownership.method === "http-token"
            ? null
            : actionButton("Serve HTTP token", out, async () => {
                // Recorded now; the edge serves the token after the next deployment.
                await api("POST", `/domain-bindings/${b.id}/ownership-confirmations`, { method: "http-token" });
                await load();
              }, { name: `Serve the HTTP token of ${b.domainName}` }),
          b.ownership.confirmedAt
            ? null
            : overrideForm(b, out, load),
          redirectForm(b, out, load),
          link(`/certificates?domainBindingId=${b.id}`, "Certificates"),
          actionButton("Delete", out, () => remove(b), { name: `Delete ${b.domainName}` })),
      );
    }), "No domains bound yet."));
  }
  await load();
}

// Change what the binding does (``POST /domain-bindings/{id}/route``): redirect to another bound
// domain with a status, or serve the resource again when the target is left empty.
function redirectForm(binding: any, out: HTMLElement, reload: () => Promise<void>): HTMLElement {
  const target = h("input", { name: "redirectTo", class: "route-redirect-to", value: binding.redirectTo ?? "", placeholder: "serve (no redirect)", "aria-label": `Redirect ${binding.domainName} to`, autocomplete: "off" });
  const status = select(`route-status-${binding.id}`, [["301", "301"], ["302", "302"], ["307", "307"], ["308", "308"]], { "aria-label": `Redirect status of ${binding.domainName}` });
  status.value = String(binding.redirectStatus ?? 301);
  const form = h("form", { class: "inline-form", "aria-label": `Route of ${binding.domainName}` },
    target, status, h("button", { type: "submit", class: "small" }, "Save route"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren();
    try {
      const body = target.value.trim() ? { redirectTo: target.value.trim(), redirectStatus: Number(status.value) } : {};
      await api("POST", `/domain-bindings/${binding.id}/route`, body);
      await reload();
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  });
  return form;
}

// The audited manual override: confirmed without a check, the reason kept in the audit event
// (the API refuses it without a reason, and without the override permission).
function overrideForm(binding: any, out: HTMLElement, reload: () => Promise<void>): HTMLElement {
  const reason = h("input", { name: "reason", class: "override-reason", placeholder: "reason (audited)", "aria-label": `Reason to override the ownership check of ${binding.domainName}`, autocomplete: "off" });
  const form = h("form", { class: "inline-form", "aria-label": `Override the ownership check of ${binding.domainName}` },
    reason, h("button", { type: "submit", class: "small" }, "Override"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren();
    try {
      await api("POST", `/domain-bindings/${binding.id}/ownership-confirmations`, { method: "manual", reason: reason.value.trim() || null });
      await reload();
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  });
  return form;
}

function ownershipState(ownership: any): string {
  if (ownership.confirmedAt) return `confirmed (${ownership.method ?? "dns-txt"})`;
  if (ownership.method === "http-token") return "HTTP token requested: served by the edge after the next deployment";
  return "not confirmed";
}
