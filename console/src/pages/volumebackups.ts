// Backups of one storage volume at a time (on the storage page): back up now (optionally with
// the app stopped for the copy), the list with status, size and age; restore into the same
// volume or into another named volume, sent only with the overwrite acknowledgement ticked.
import { api } from "../api";
import { ago, h, link } from "../dom";
import { actionButton, actionForm, select, table, when } from "../widgets";
import { targetPicker } from "./backuptargets";

const POLL_MS = 1500;

export function size(bytes: number | null): string {
  if (bytes === null) return "–";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function restore(r: any): string {
  if (!r) return "never restored";
  const at = r.completedAt ?? r.failedAt ?? r.requestedAt;
  return `${r.status} ${ago(at)}` + (r.failureMessage ? `: ${r.failureMessage}` : "");
}

// A backup or restore still pending: keep looking until it settles.
function unsettled(b: any): boolean {
  return b.status === "pending" || b.latestRestoreAttempt?.status === "pending";
}

export function volumeBackupSection(signal: AbortSignal): { element: HTMLElement; setVolumes: (items: any[]) => void } {
  const out = h("div", { role: "status", id: "volume-backup-status" });
  const list = h("div", { id: "volume-backups" });
  const pick = select("volume-backup-pick", [], { "aria-label": "Volume to back up" });
  const target = targetPicker("volume-backup-target", "Keep the volume backup in");
  const stop = h("input", { type: "checkbox", id: "volume-backup-stop", name: "stopResource" });
  const restorePick = select("volume-restore-backup", []);
  const into = select("volume-restore-into", []);
  const acknowledge = h("input", { type: "checkbox", id: "volume-restore-ack", name: "acknowledgeDataOverwrite" });
  let volumes: any[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  signal.addEventListener("abort", () => timer !== null && clearTimeout(timer));

  const element = h("section", { "aria-labelledby": "volume-backups-title" },
    h("h2", { id: "volume-backups-title" }, "Volume backups"),
    h("p", { class: "hint" }, "Named volumes a deployment placed on a server, archived and encrypted on the coordinator."),
    h("div", { class: "toolbar" }, pick, target.element,
      h("label", { class: "check" }, stop, " Stop the app during the copy (stopResource)"),
      actionButton("Back up volume now", out, async () => {
        if (!pick.value) throw new Error("No named volume here to back up.");
        await api("POST", `/storage-volumes/${pick.value}/backups`, { stopResource: stop.checked, ...(target.chosen() ? { backupTargetId: target.chosen() } : {}) });
        await load();
      })),
    out,
    list,
    actionForm("Restore a volume backup", [["Backup", restorePick], ["Into", into], ["Replace the volume's files with the backup's (acknowledgeDataOverwrite)", acknowledge]], "Restore volume", async () => {
      if (!restorePick.value) throw new Error("No ready backup to restore yet.");
      const body: Record<string, unknown> = { acknowledgeDataOverwrite: acknowledge.checked };
      if (into.value) body.targetStorageVolumeId = into.value;
      await api("POST", `/storage-volumes/backups/${restorePick.value}/restore`, body);
      acknowledge.checked = false;
      await load();
      return "Restore started: its outcome shows in the list.";
    }),
  );
  pick.addEventListener("change", () => void refresh().catch(show));

  function show(error: any): void {
    out.replaceChildren(h("p", { class: "error", role: "alert" }, String(error.message ?? error)));
  }

  async function refresh(): Promise<void> {
    out.replaceChildren();
    into.replaceChildren(
      h("option", { value: "" }, "the same volume"),
      ...volumes.filter((v) => v.id !== pick.value).map((v) => h("option", { value: v.id }, `${v.name} (another volume)`)),
    );
    await Promise.all([target.load(), load()]);
  }

  async function load(): Promise<void> {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (!pick.value) {
      list.replaceChildren(h("p", { class: "hint" }, "No named volume to back up here yet."));
      return;
    }
    const items: any[] = (await api("GET", `/storage-volumes/${pick.value}/backups`)).items;
    if (signal.aborted) return;
    restorePick.replaceChildren(...items.filter((b) => b.status === "ready").map((b) => h("option", { value: b.id }, `${when(b.completedAt)} (${size(b.sizeBytes)})`)));
    list.replaceChildren(table("volume-backup-rows", ["Taken", "Status", "Size", "App stopped", "Last restore"], items.map((b) =>
      h("tr", { "data-backup": b.id, "data-status": b.status },
        h("td", {}, ago(b.createdAt), h("div", { class: "hint" }, link(`/volume-backups/${b.id}`, b.id, { "aria-label": `Backup ${b.id}` })), b.backupTargetId ? h("div", { class: "hint backup-where" }, `in ${b.providerArtifactHandle ?? b.backupTargetId}`) : null),
        h("td", { class: "backup-state" }, b.status, b.failureMessage ? h("div", { class: "error" }, b.failureMessage) : null),
        h("td", { class: "backup-size" }, size(b.sizeBytes)),
        h("td", {}, b.stopResource ? "yes" : "no (live copy)"),
        h("td", { class: "backup-restore", "data-restore": b.latestRestoreAttempt?.status ?? "none" }, restore(b.latestRestoreAttempt)),
      )), "No backups of this volume yet."));
    if (items.some(unsettled) && !signal.aborted) timer = setTimeout(() => void load().catch(() => undefined), POLL_MS);
  }

  function setVolumes(items: any[]): void {
    const before = pick.value;
    volumes = items.filter((v) => v.kind === "named-volume");
    pick.replaceChildren(...volumes.map((v) => h("option", { value: v.id }, v.name)));
    if (volumes.some((v) => v.id === before)) pick.value = before;
    void refresh().catch(show);
  }

  return { element, setVolumes };
}
