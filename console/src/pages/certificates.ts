// Certificates: the list (optionally of one domain binding), one certificate with its attempts
// and what went wrong in plain words, and the import form (PEM chain + private key).
import { api, query } from "../api";
import { h, link } from "../dom";
import { navigate } from "../nav";
import { actionButton, actionForm, select, table, when } from "../widgets";
import { dns01Sections } from "./wildcards";

// Where in issuance an attempt failed (shared/messages/certificates.py FailurePhase), in words.
const PHASES: Record<string, string> = {
  challenge: "proving control of the domain (the ACME challenge)",
  dns: "looking the domain up in DNS",
  order: "ordering the certificate",
  ca: "talking to the certificate authority",
  account: "using the ACME account",
};

// The failure of an attempt as a sentence a person can act on.
export function diagnosis(attempt: any): string | null {
  if (attempt.status !== "failed") return null;
  const phase = attempt.failurePhase;
  const where = phase ? ` while ${PHASES[phase] ?? phase}` : "";
  const what = attempt.failureMessage ?? attempt.errorCode ?? "an unknown error";
  const next = attempt.retriable
    ? attempt.retryAfter ? ` It is retried after ${when(attempt.retryAfter)}.` : " Retrying may work."
    : " Retrying will not help until the cause is fixed.";
  return `Failed${where}: ${what}.${next}`;
}

export async function list(root: HTMLElement): Promise<void> {
  const domainBindingId = new URLSearchParams(location.search).get("domainBindingId");
  const [answer, bindings] = await Promise.all([
    api("GET", "/certificates" + query({ domainBindingId })),
    api("GET", "/domain-bindings" + query({ limit: 500 })),
  ]);
  const chain = h("textarea", { name: "certificateChain", id: "cert-chain", required: true, rows: 6, spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE-----" });
  const key = h("textarea", { name: "privateKey", id: "cert-key", required: true, rows: 4, spellcheck: "false", autocomplete: "off", placeholder: "-----BEGIN PRIVATE KEY-----" });
  const binding = select("cert-binding", bindings.items.map((b: any): [string, string] => [b.id, b.domainName]));
  if (domainBindingId) binding.value = domainBindingId;
  root.append(
    h("h1", {}, "Certificates"),
    h("p", { class: "hint" }, domainBindingId ? ["Of one domain only. ", link("/certificates", "Show all")] : "Managed certificates come from the edge; imported ones from the form below."),
    table("certificate-rows", ["Domain", "Status", "Source", "Expires", "Latest attempt"], answer.items.map((c: any) =>
      h("tr", { "data-certificate-id": c.id },
        h("td", {}, link(`/certificates/${c.id}`, c.domainName)),
        h("td", {}, h("span", { class: `state state-${c.status}` }, c.status)),
        h("td", {}, c.source),
        h("td", {}, when(c.expiresAt)),
        h("td", {}, c.latestAttempt ? (diagnosis(c.latestAttempt) ?? c.latestAttempt.status) : "–"))), "No certificates yet."),
    bindings.items.length
      ? actionForm("Import a certificate", [["Domain", binding], ["Certificate chain (PEM)", chain], ["Private key (PEM)", key]], "Import", async () => {
          const imported = await api("POST", "/certificates/import", { domainBindingId: binding.value, certificateChain: chain.value, privateKey: key.value });
          key.value = "";
          navigate(`/certificates/${imported.certificateId}`);
        })
      : h("p", { class: "hint" }, "Bind a domain to a resource first to import a certificate for it."),
  );
  root.append(await dns01Sections());
}

export async function show(root: HTMLElement, [certificateId]: string[]): Promise<void> {
  const out = h("div", { role: "status", id: "certificate-status" });
  const c = await api("GET", `/certificates/${certificateId}`);
  const facts: [string, string][] = [
    ["Status", c.status],
    ["Source", `${c.source} (${c.providerKey})`],
    ["Issuer", c.issuer ?? "–"],
    ["Names", c.subjectAlternativeNames.join(", ") || c.domainName],
    ["Valid from", when(c.notBefore)],
    ["Expires", when(c.expiresAt)],
    ["Key", c.keyAlgorithm ?? "–"],
    ["Fingerprint", c.fingerprint ?? "–"],
  ];
  root.append(
    h("p", { class: "crumbs" }, link("/certificates", "Certificates"), " / ", c.domainName),
    h("h1", {}, `Certificate for ${c.domainName}`),
    h("dl", { class: "facts", id: "certificate-facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("div", { class: "actions" },
      c.source === "managed" && c.status === "failed"
        ? actionButton("Retry", out, async () => {
            await api("POST", `/certificates/${c.id}/retries`, {});
            navigate(`/certificates/${c.id}`, true);
          })
        : null,
      // A valid managed certificate is renewed early; an expired one is obtained again.
      c.source === "managed" && (c.status === "active" || c.status === "expired")
        ? actionButton("Renew now", out, async () => {
            await api("POST", "/certificates/issue-or-renew", { domainBindingId: c.domainBindingId });
            navigate(`/certificates/${c.id}`, true);
          }, { confirmText: `Renew the certificate for ${c.domainName} now? CAs limit how often the same names are issued.` })
        : null,
      c.status === "active"
        ? actionButton("Revoke", out, async () => {
            await api("POST", `/certificates/${c.id}/revoke`, {});
            navigate(`/certificates/${c.id}`, true);
          }, {
            confirmText: c.source === "managed"
              ? `Revoke the certificate for ${c.domainName} at its CA? The edge obtains a new one at once.`
              : `Stop serving the imported certificate for ${c.domainName}?`,
          })
        : null,
      actionButton("Delete", out, async () => {
        await api("DELETE", `/certificates/${c.id}`, { confirmation: { certificateId: c.id } });
        navigate("/certificates");
      }, { confirmText: `Delete the certificate for ${c.domainName}?` })),
    out,
    h("h2", {}, "Attempts"),
    table("attempt-rows", ["Requested", "Reason", "Status", "What happened"], c.attempts.map((a: any) =>
      h("tr", { "data-status": a.status },
        h("td", {}, when(a.requestedAt)),
        h("td", {}, a.reason),
        h("td", {}, h("span", { class: `state state-${a.status}` }, a.status)),
        h("td", { class: "diagnosis" }, diagnosis(a) ?? (a.issuedAt ? `Issued ${when(a.issuedAt)}, expires ${when(a.expiresAt)}` : ""),
          a.errorCode ? h("div", { class: "hint" }, "Code ", h("code", {}, a.errorCode)) : null,
          // The evidence behind the diagnosis: observed DNS targets, the address the CA dialed...
          a.failureDetails ? h("ul", { class: "hint" }, ...Object.entries(a.failureDetails).map(([k, v]) => h("li", {}, `${k.replace(/[A-Z]/g, (c) => " " + c.toLowerCase())}: ${Array.isArray(v) ? v.join(", ") || "none" : String(v)}`))) : null))), "No attempts."),
  );
}
