// One volume backup (``GET /storage-volumes/backups/{id}``): where and how it was taken, its
// archive's size and SHA-256 checksum, its manifest (what the archive held), its failure if any,
// its latest verification (with a Verify button) and its latest restore attempt; refreshed while
// the backup, a verification or a restore is still pending.
import { api } from "../api";
import { h, link } from "../dom";
import { when } from "../widgets";
import { readOnlyRole, restore, size, verifyButton, verified } from "./volumebackups";

const POLL_MS = 1500;

export async function page(root: HTMLElement, [backupId]: string[], signal: AbortSignal): Promise<void> {
  // Draws the page again into ``root`` (after a Verify, and every POLL_MS while something is
  // pending); the router's signal stops it when the page is left.
  const redraw = async (): Promise<void> => {
    if (signal.aborted) return;
    const fresh = h("div", {});
    const pending = await draw(fresh, backupId, redraw);
    if (signal.aborted) return;
    root.replaceChildren(...fresh.childNodes);
    if (pending) setTimeout(() => void redraw().catch(() => undefined), POLL_MS);
  };
  if (await draw(root, backupId, redraw)) setTimeout(() => void redraw().catch(() => undefined), POLL_MS);
}

// Draws the backup into ``root``; true while the backup, a verification or a restore is pending.
async function draw(root: HTMLElement, backupId: string, redraw: () => Promise<void>): Promise<boolean> {
  const [b, locked] = await Promise.all([api("GET", `/storage-volumes/backups/${backupId}`).then((answer) => answer.backup), readOnlyRole()]);
  const volume = (await api("GET", `/storage-volumes/${b.storageVolumeId}`)).storageVolume;
  const r = b.latestRestoreAttempt;
  const m = b.manifest;
  const v = b.verification;
  const out = h("div", { role: "status", id: "verify-status" });
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
    h("dl", { class: "facts wrap", id: "backup-facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("h2", {}, "Contents (manifest)"),
    m
      ? h("dl", { class: "facts wrap", id: "manifest-facts" },
          h("dt", {}, "Entries"), h("dd", { id: "manifest-entries" }, String(m.entries)),
          h("dt", {}, "Regular files"), h("dd", { id: "manifest-files" }, String(m.files)),
          h("dt", {}, "File bytes"), h("dd", { id: "manifest-bytes", "data-bytes": m.fileBytes }, size(m.fileBytes)),
          h("dt", {}, "Paths SHA-256"), h("dd", {}, h("code", { id: "manifest-paths-sha256" }, m.pathsSha256)))
      : h("p", { class: "hint", id: "manifest-facts" }, "No manifest: taken by an agent that did not count the archive, or not finished."),
    h("h2", {}, "Verification"),
    h("p", { class: "hint" }, "Verifying restores the backup into a throwaway volume on its server and compares what it holds with the manifest; no volume in use is touched."),
    v
      ? h("dl", { class: "facts wrap", id: "verification-facts", "data-verification": v.status },
          h("dt", {}, "Result"), h("dd", { id: "verification-result" }, verified(v, false)),
          h("dt", {}, "Requested"), h("dd", {}, when(v.requestedAt)),
          h("dt", {}, "Checked"), h("dd", {}, when(v.checkedAt)),
          v.message ? [h("dt", {}, v.status === "failed" ? "Reason" : "Note"), h("dd", { class: v.status === "failed" ? "error" : "" }, v.message)] : [])
      : h("p", { class: "hint", id: "verification-facts", "data-verification": "none" }, "Not verified yet."),
    h("p", {}, b.status === "ready" ? verifyButton(backupId, out, locked, v?.status === "pending", redraw) : null),
    out,
    h("h2", {}, "Latest restore"),
    r
      ? h("dl", { class: "facts wrap", id: "restore-facts", "data-status": r.status },
          h("dt", {}, "Status"), h("dd", {}, restore(r)),
          h("dt", {}, "Into"), h("dd", { id: "restore-target" }, r.targetStorageVolumeId ?? b.storageVolumeId),
          h("dt", {}, "Attempt"), h("dd", {}, h("code", {}, r.attemptId)),
          h("dt", {}, "Requested"), h("dd", {}, when(r.requestedAt)),
          r.failureCode ? [h("dt", {}, "Failure"), h("dd", { class: "error" }, `${r.failureCode} ${r.failureMessage ?? ""}`)] : [])
      : h("p", { class: "hint", id: "restore-facts" }, "Never restored."),
    h("p", { class: "hint" }, "Restore it from the volume's storage page."),
  );
  return b.status === "pending" || r?.status === "pending" || v?.status === "pending";
}
