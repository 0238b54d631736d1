// One database or cache (``GET /dependency-resources/{id}``): how it is realized and reached (the
// connection masked), its extension readbacks, the resources bound to it (each binding's variable,
// secret version and readiness) and its backups with their verification and latest restore.
import { api } from "../api";
import { ago, h, link } from "../dom";
import { table, when } from "../widgets";
import { restore, size, verification } from "./backups";

export async function page(root: HTMLElement, [databaseId]: string[]): Promise<void> {
  const [shown, backups] = await Promise.all([
    api("GET", `/dependency-resources/${databaseId}`),
    api("GET", `/dependency-resources/${databaseId}/backups`),
  ]);
  const d = shown.dependencyResource;
  // The delete check names every bound resource; each one's bindings say how.
  const boundIds: string[] = [...new Set<string>(d.deleteSafety.blockers.filter((b: any) => b.relatedEntityType === "resource").map((b: any) => b.relatedEntityId))];
  const bindings = (await Promise.all(boundIds.map(async (id) =>
    (await api("GET", `/resources/${id}/dependency-bindings`)).items.filter((b: any) => b.dependencyResourceId === d.id && b.status === "active")))).flat();
  const realization = d.providerRealization;
  const facts: [string, string | HTMLElement][] = [
    ["Kind", `${d.kind}${d.image ? ` (${d.image})` : ""}`],
    ["Source", `${d.sourceMode}${d.providerManaged ? ", managed by Berth" : ""} · ${d.providerKey}`],
    ["State", h("span", { id: "database-state" }, d.lifecycleStatus)],
    ["Realization", `${realization.status}${realization.realizedAt ? ` ${when(realization.realizedAt)}` : ""}`],
    ["Server", d.serverId ? link(`/servers/${d.serverId}`, d.serverId) : "–"],
    ["Connection", h("code", { id: "database-connection" }, d.connection.maskedConnection)],
    ["Host", `${d.connection.host}:${d.connection.port}${d.connection.databaseName ? ` / ${d.connection.databaseName}` : ""}`],
    ["Binding readiness", `${d.bindingReadiness.status}${d.bindingReadiness.reason ? `: ${d.bindingReadiness.reason}` : ""}`],
    ["Backups", d.backupRelationship.retentionRequired ? `required${d.backupRelationship.reason ? `: ${d.backupRelationship.reason}` : ""}` : "not required"],
    ["Created", when(d.createdAt)],
  ];
  if (realization.failureMessage) facts.push(["Failure", h("span", { class: "error" }, `${realization.failureCode ?? ""} ${realization.failureMessage}`.trim())]);
  const extensions = h("div", {}, d.capabilityReadbacks.length
    ? [h("h2", {}, "Extensions"), table("capability-rows", ["Name", "Required", "Status", "Version"], d.capabilityReadbacks.map((c: any) =>
        h("tr", { "data-status": c.status }, h("td", {}, c.name), h("td", {}, c.required ? "yes" : "no"), h("td", {}, c.status), h("td", {}, c.version ?? "–"))), "")]
    : []);
  root.append(
    h("p", { class: "crumbs" }, link(`/environments/${d.environmentId}/storage`, "Storage and databases"), " / ", d.name),
    h("h1", {}, d.name),
    h("dl", { class: "facts", id: "database-facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    extensions,
    h("h2", {}, "Bound to"),
    table("database-binding-rows", ["Resource", "Variable", "Secret version", "Readiness"], bindings.map((b: any) =>
      h("tr", { "data-resource": b.resourceId },
        h("td", {}, link(`/resources/${b.resourceId}/storage`, b.resourceId)),
        h("td", {}, h("code", {}, b.target.targetName)),
        h("td", {}, b.secretRotation.secretVersion),
        h("td", {}, b.bindingReadiness.status))), "Not bound to any resource."),
    h("h2", {}, "Backups"),
    table("database-backup-rows", ["Taken", "Status", "Stored on", "Verification", "Last restore"], backups.items.slice().reverse().map((b: any) =>
      h("tr", { "data-backup": b.id, "data-status": b.status },
        h("td", {}, ago(b.createdAt), h("div", { class: "hint" }, h("code", {}, b.id))),
        h("td", {}, b.status, b.failureMessage ? h("div", { class: "error" }, b.failureMessage) : null),
        h("td", {}, b.target === "s3" ? `S3 ${b.backupTargetId ?? ""}` : "coordinator", h("div", { class: "hint" }, size(b.sizeBytes))),
        h("td", { class: "backup-verification", "data-verification": b.verification?.status ?? "none" },
          verification(b.verification)),
        h("td", { "data-restore": b.latestRestoreAttempt?.status ?? "none" }, restore(b.latestRestoreAttempt)))), "No backups yet."),
    h("p", { class: "hint" }, "Back up, verify and restore on the ", link(`/environments/${d.environmentId}/storage`, "storage page"), "."),
  );
}
