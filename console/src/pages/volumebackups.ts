// Backups of one storage volume at a time (on the storage page): back up now (optionally with
// the app stopped for the copy), the list with status, size, contents, verification and age;
// verify one; restore into the same volume or into another named volume, sent only with the
// overwrite acknowledgement ticked; the volume's backup policy (pages/volumepolicy.ts).
import { api } from "../api";
import { ago, h, link } from "../dom";
import { currentContext } from "../org";
import { actionButton, actionForm, select, table, when } from "../widgets";
import { targetPicker } from "./backuptargets";
import { volumePolicySection } from "./volumepolicy";

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

// What the archive held when it was taken (counted by the agent as it streamed).
export function contents(m: any): string {
  if (!m) return "no manifest";
  return `${m.files} file(s), ${size(m.fileBytes)} (${m.entries} entries)`;
}

// The latest verification: the backup restored into a throwaway volume and counted there.
// ``withMessage``: append its message (the backup's own page shows it on a line of its own).
export function verified(v: any, withMessage = true): string {
  if (!v) return "not verified";
  if (v.status === "pending") return `verifying (asked ${ago(v.requestedAt)})`;
  const counted = v.files === null || v.files === undefined ? "" : `: ${v.files} file(s), ${size(v.fileBytes)}`;
  return `${v.status}${counted} (${ago(v.checkedAt)})` + (withMessage && v.message ? `: ${v.message}` : "");
}

// A backup, restore or verification still pending: keep looking until it settles.
function unsettled(b: any): boolean {
  return b.status === "pending" || b.latestRestoreAttempt?.status === "pending" || b.verification?.status === "pending";
}

// Viewers may read volumes and their backups but not write them (verify, set a policy).
export function readOnlyRole(): Promise<boolean> {
  return currentContext().then((context) => context.currentOrganization.role === "viewer", () => false);
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
  const policy = volumePolicySection();
  const readOnly = readOnlyRole();
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
    policy.element,
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
    await Promise.all([target.load(), load(), policy.load(pick.value || null, await readOnly)]);
  }

  async function load(): Promise<void> {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (!pick.value) {
      list.replaceChildren(h("p", { class: "hint" }, "No named volume to back up here yet."));
      return;
    }
    const [items, locked]: [any[], boolean] = await Promise.all([
      api("GET", `/storage-volumes/${pick.value}/backups`).then((answer) => answer.items),
      readOnly,
    ]);
    if (signal.aborted) return;
    restorePick.replaceChildren(...items.filter((b) => b.status === "ready").map((b) => h("option", { value: b.id }, `${when(b.completedAt)} (${size(b.sizeBytes)})`)));
    list.replaceChildren(table("volume-backup-rows", ["Taken", "Status", "Size", "Contents", "Verification", "App stopped", "Last restore", ""], items.map((b) =>
      h("tr", { "data-backup": b.id, "data-status": b.status },
        h("td", {}, ago(b.createdAt), h("div", { class: "hint" }, link(`/volume-backups/${b.id}`, b.id, { "aria-label": `Backup ${b.id}` })), b.backupTargetId ? h("div", { class: "hint backup-where" }, `in ${b.providerArtifactHandle ?? b.backupTargetId}`) : null),
        h("td", { class: "backup-state" }, b.status, b.failureMessage ? h("div", { class: "error" }, b.failureMessage) : null),
        h("td", { class: "backup-size" }, size(b.sizeBytes)),
        h("td", { class: "backup-contents" }, contents(b.manifest)),
        h("td", { class: "backup-verification", "data-verification": b.verification?.status ?? "none" }, verified(b.verification)),
        h("td", {}, b.stopResource ? "yes" : "no (live copy)"),
        h("td", { class: "backup-restore", "data-restore": b.latestRestoreAttempt?.status ?? "none" }, restore(b.latestRestoreAttempt)),
        h("td", {}, b.status === "ready" ? verifyButton(b.id, out, locked, b.verification?.status === "pending", load) : null),
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

// Starts a verification (202); ``then`` draws the backup again, which keeps polling while it is
// pending. Disabled for a role that may not write volumes (``locked``), and while one already
// runs (``running``).
export function verifyButton(backupId: string, out: HTMLElement, locked: boolean, running: boolean, then: () => Promise<void>): HTMLButtonElement {
  const button = actionButton("Verify", out, async () => {
    button.disabled = true;
    try {
      await api("POST", `/storage-volumes/backups/${backupId}/verify`, {});
    } finally {
      button.disabled = false;
    }
    await then();
  }, { name: `Verify the volume backup ${backupId}` });
  button.disabled = locked || running;
  if (locked) button.title = "Your role may not verify backups.";
  return button;
}
