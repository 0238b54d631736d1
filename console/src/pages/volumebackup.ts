// One volume backup (``GET /storage-volumes/backups/{id}``): where and how it was taken, its
// archive's size and SHA-256 checksum, its failure if any, and its latest restore attempt;
// refreshed while the backup or a restore is still pending.
import { api } from "../api";
import { h, link } from "../dom";
import { when } from "../widgets";
import { restore, size } from "./volumebackups";

const POLL_MS = 1500;

export async function page(root: HTMLElement, [backupId]: string[], signal: AbortSignal): Promise<void> {
  const b = (await api("GET", `/storage-volumes/backups/${backupId}`)).backup;
  const volume = (await api("GET", `/storage-volumes/${b.storageVolumeId}`)).storageVolume;
  const r = b.latestRestoreAttempt;
  const facts: [string, string | HTMLElement][] = [
    ["Status", h("span", { class: `state state-${b.status}`, id: "backup-status" }, b.status)],
    ["Volume", volume?.name ?? b.storageVolumeId],
    ["Server", link(`/servers/${b.serverId}`, b.serverId)],
    ["Requested", when(b.requestedAt)],
    ["Completed", b.completedAt ? when(b.completedAt) : b.failedAt ? `failed ${when(b.failedAt)}` : "–"],
    ["App stopped for the copy", b.stopResource ? "yes" : "no (live copy)"],
    ["Stored on", b.target === "s3" ? `S3 target ${b.backupTargetId ?? ""}` : "the coordinator"],
    ["Format", `${b.format}, ${b.encryption}`],
    ["Volume data", h("span", { id: "backup-size", "data-bytes": b.sizeBytes ?? "" }, size(b.sizeBytes))],
    ["Archive", h("span", { id: "backup-archive-size", "data-bytes": b.archiveBytes ?? "" }, size(b.archiveBytes))],
    ["SHA-256", h("code", { id: "backup-sha256" }, b.sha256 ?? "–")],
    ["Artifact", h("code", {}, b.providerArtifactHandle ?? "–")],
    ["Attempt", h("code", {}, b.attemptId)],
  ];
  if (b.failureCode || b.failureMessage) facts.push(["Failure", h("span", { class: "error" }, `${b.failureCode ?? ""} ${b.failureMessage ?? ""}`.trim())]);
  root.append(
    h("p", { class: "crumbs" }, link(`/environments/${b.environmentId}/storage`, "Storage and databases"), " / volume backup"),
    h("h1", {}, `Backup of ${volume?.name ?? b.storageVolumeId}`),
    h("dl", { class: "facts", id: "backup-facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("h2", {}, "Latest restore"),
    r
      ? h("dl", { class: "facts", id: "restore-facts", "data-status": r.status },
          h("dt", {}, "Status"), h("dd", {}, restore(r)),
          h("dt", {}, "Into"), h("dd", { id: "restore-target" }, r.targetStorageVolumeId ?? b.storageVolumeId),
          h("dt", {}, "Attempt"), h("dd", {}, h("code", {}, r.attemptId)),
          h("dt", {}, "Requested"), h("dd", {}, when(r.requestedAt)),
          r.failureCode ? [h("dt", {}, "Failure"), h("dd", { class: "error" }, `${r.failureCode} ${r.failureMessage ?? ""}`)] : [])
      : h("p", { class: "hint", id: "restore-facts" }, "Never restored."),
    h("p", { class: "hint" }, "Restore it from the volume's storage page."),
  );
  // Pending: draw the page again shortly (the router's signal stops it when the page is left).
  if (b.status === "pending" || r?.status === "pending") {
    setTimeout(() => {
      if (signal.aborted) return;
      const fresh = h("div", {});
      void page(fresh, [backupId], signal).then(() => !signal.aborted && root.replaceChildren(...fresh.childNodes)).catch(() => undefined);
    }, POLL_MS);
  }
}
