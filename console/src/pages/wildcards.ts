// DNS-01 on the certificates page: RFC 2136 DNS providers (the TSIG secret typed like a
// password, never shown again) and wildcard certificates (request, list with the latest
// attempt's diagnosis, retry, delete); one wildcard certificate with every attempt.
import { api } from "../api";
import { errorBox, h, link } from "../dom";
import { navigate } from "../nav";
import { actionButton, actionForm, select, table, when } from "../widgets";
import { diagnosis } from "./certificates";

const ALGORITHMS: [string, string][] = ["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"].map((a) => [a, a]);

export async function dns01Sections(): Promise<HTMLElement> {
  const out = h("div", { role: "status", id: "dns01-status" });
  const providers = h("div", { id: "dns-providers" });
  const wildcards = h("div", { id: "wildcards" });
  const name = h("input", { name: "name", id: "dns-name", required: true, maxlength: 100 });
  const server = h("input", { name: "serverAddress", id: "dns-server", required: true, placeholder: "ns1.example.com:53" });
  const zone = h("input", { name: "zone", id: "dns-zone", required: true, placeholder: "example.com" });
  const keyName = h("input", { name: "tsigKeyName", id: "dns-key-name", required: true });
  const algorithm = select("dns-algorithm", ALGORITHMS);
  // Sealed on the coordinator and only ever listed masked: typed like a password, cleared after.
  const secret = h("input", { name: "tsigSecret", id: "dns-secret", type: "password", required: true, autocomplete: "off" });
  const domain = h("input", { name: "domainName", id: "wildcard-domain", required: true, placeholder: "apps.example.com" });
  const provider = select("wildcard-provider", []);

  async function load(): Promise<void> {
    const [p, w] = await Promise.all([api("GET", "/dns-providers"), api("GET", "/wildcard-certificates")]);
    provider.replaceChildren(...p.items.map((d: any) => h("option", { value: d.id }, `${d.name} (${d.zone})`)));
    providers.replaceChildren(table("dns-provider-rows", ["Name", "Server", "Zone", "TSIG key", "Secret", ""], p.items.map((d: any) =>
      h("tr", { "data-provider": d.name },
        h("td", {}, link(`/dns-providers/${d.id}`, d.name)),
        h("td", {}, h("code", {}, d.serverAddress)),
        h("td", {}, d.zone),
        h("td", {}, `${d.tsigKeyName} (${d.tsigAlgorithm})`),
        h("td", { class: "secret" }, d.tsigSecret),
        h("td", {}, actionButton("Delete", out, async () => {
          await api("DELETE", `/dns-providers/${d.id}`);
          await load();
        }, { confirmText: `Delete the DNS provider ${d.name}?`, name: `Delete DNS provider ${d.name}` })))), "No DNS providers yet."));
    wildcards.replaceChildren(table("wildcard-rows", ["Names", "Status", "Expires", "Renews", "Latest attempt"], w.items.map((c: any) =>
      h("tr", { "data-wildcard": c.domainName, "data-status": c.status },
        h("td", {}, link(`/wildcard-certificates/${c.id}`, `*.${c.domainName}`)),
        h("td", {}, h("span", { class: `state state-${c.status}` }, c.status)),
        h("td", {}, when(c.expiresAt)),
        h("td", {}, when(c.renewsAt)),
        h("td", { class: "diagnosis" }, c.latestAttempt ? (diagnosis(c.latestAttempt) ?? c.latestAttempt.status) : "–"))), "No wildcard certificates yet."));
  }

  const element = h("div", {},
    h("section", { "aria-labelledby": "dns-providers-title" },
      h("h2", { id: "dns-providers-title" }, "DNS providers (RFC 2136)"),
      h("p", { class: "hint" }, "DNS servers Berth updates with a TSIG key to prove control of a domain (DNS-01)."),
      out,
      providers,
      actionForm("Add a DNS provider", [["Name", name], ["Server (host or host:port)", server], ["Zone", zone], ["TSIG key name", keyName], ["TSIG algorithm", algorithm], ["TSIG secret (base64)", secret]], "Add provider", async () => {
        try {
          await api("POST", "/dns-providers", { name: name.value, kind: "rfc2136", serverAddress: server.value, zone: zone.value, tsigKeyName: keyName.value, tsigAlgorithm: algorithm.value, tsigSecret: secret.value });
        } finally {
          secret.value = "";
        }
        name.value = "";
        await load();
        return "Added: the secret is sealed and never shown again.";
      })),
    h("section", { "aria-labelledby": "wildcards-title" },
      h("h2", { id: "wildcards-title" }, "Wildcard certificates (DNS-01)"),
      wildcards,
      actionForm("Request a wildcard certificate", [["Domain (covers *.domain and domain)", domain], ["DNS provider", provider]], "Request", async () => {
        const made = await api("POST", "/wildcard-certificates", { domainName: domain.value, dnsProviderId: provider.value });
        navigate(`/wildcard-certificates/${made.certificateId}`);
      })),
  );
  // A role without dns-providers:read still gets the rest of the certificates page: the 403 shows here.
  await load().catch((error) => out.replaceChildren(errorBox(error)));
  return element;
}

export async function show(root: HTMLElement, [certificateId]: string[], signal: AbortSignal): Promise<void> {
  const out = h("div", { role: "status", id: "wildcard-status" });
  const c = await api("GET", `/wildcard-certificates/${certificateId}`);
  const facts: [string, string][] = [
    ["Status", c.status],
    ["Names", c.subjectAlternativeNames.join(", ") || `*.${c.domainName}, ${c.domainName}`],
    ["Challenge", `${c.challengeType} at ${c.acmeDirectory}`],
    ["Issuer", c.issuer ?? "–"],
    ["Valid from", when(c.notBefore)],
    ["Expires", when(c.expiresAt)],
    ["Renews", when(c.renewsAt)],
    ["Key", c.keyAlgorithm ?? "–"],
    ["Fingerprint", c.fingerprint ?? "–"],
  ];
  root.append(
    h("p", { class: "crumbs" }, link("/certificates", "Certificates"), " / ", `*.${c.domainName}`),
    h("h1", {}, `Wildcard certificate for *.${c.domainName}`),
    h("dl", { class: "facts", id: "wildcard-facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("div", { class: "actions" },
      actionButton("Retry", out, async () => {
        await api("POST", `/wildcard-certificates/${c.id}/retries`, {});
        navigate(`/wildcard-certificates/${c.id}`, true);
      }),
      actionButton("Delete", out, async () => {
        await api("DELETE", `/wildcard-certificates/${c.id}`, { confirmation: { certificateId: c.id } });
        navigate("/certificates");
      }, { confirmText: `Delete the wildcard certificate for *.${c.domainName}? The servers stop serving it.` })),
    out,
    h("h2", {}, "Attempts"),
    table("attempt-rows", ["Requested", "Reason", "Status", "What happened"], c.attempts.map((a: any) =>
      h("tr", { "data-status": a.status },
        h("td", {}, when(a.requestedAt)),
        h("td", {}, a.reason),
        h("td", {}, h("span", { class: `state state-${a.status}` }, a.status)),
        h("td", { class: "diagnosis" }, diagnosis(a) ?? (a.issuedAt ? `Issued ${when(a.issuedAt)}, expires ${when(a.expiresAt)}` : ""),
          a.errorCode ? h("div", { class: "hint" }, "Code ", h("code", {}, a.errorCode)) : null))), "No attempts."),
  );
  // An order in flight settles within a minute: look again until it does.
  if (c.latestAttempt?.status === "requested") {
    const timer = setTimeout(() => navigate(`/wildcard-certificates/${c.id}`, true), 1500);
    signal.addEventListener("abort", () => clearTimeout(timer));
  }
}
