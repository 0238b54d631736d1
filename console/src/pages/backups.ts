// Backups of one database at a time (on the storage and databases page): the list with status,
// size, age, verification and the last restore; back up now; verify; restore into the same
// database or into another one (only with the overwrite acknowledgement); the backup policy.
import { api, query } from "../api";
import { ago, h } from "../dom";
import { actionButton, actionForm, select, table, when } from "../widgets";
import { targetPicker } from "./backuptargets";

// Kinds the coordinator backs up (others are refused by the API with the supported kinds).
const BACKED_UP = new Set(["postgres", "mysql"]);
const POLL_MS = 1500;

export function size(bytes: number | null): string {
  if (bytes === null) return "–";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function verification(v: any): string {
  if (!v) return "not verified";
  if (v.status === "passed") return `passed: ${v.tables} table(s), ${v.rows} row(s) (${ago(v.checkedAt)})`;
  return v.status + (v.message ? `: ${v.message}` : "");
}

export function restore(r: any): string {
  if (!r) return "never restored";
  const at = r.completedAt ?? r.failedAt ?? r.requestedAt;
  return `${r.status} ${ago(at)}` + (r.failureMessage ? `: ${r.failureMessage}` : "");
}

// Something is still moving while a backup, restore or verification is pending: keep looking.
function unsettled(b: any): boolean {
  return b.status === "pending" || b.latestRestoreAttempt?.status === "pending" || b.verification?.status === "pending";
}

export function backupSection(signal: AbortSignal): { element: HTMLElement; setDatabases: (items: any[]) => void } {
  const out = h("div", { role: "status", id: "backup-status" });
  const list = h("div", { id: "backups" });
  const pick = select("backup-database", [], { "aria-label": "Database to back up" });
  const restorePick = select("restore-backup", []);
  const into = select("restore-into", []);
  const acknowledge = h("input", { type: "checkbox", id: "restore-ack", name: "acknowledgeDataOverwrite" });
  const every = h("input", { type: "number", id: "policy-interval", min: 1, max: 8760, value: 24, required: true });
  const keepDays = h("input", { type: "number", id: "policy-retention", min: 1, max: 3650, value: 14, required: true });
  const keepCount = h("input", { type: "number", id: "policy-keep", min: 1, max: 1000, placeholder: "no limit" });
  const retry = h("input", { type: "checkbox", id: "policy-retry", checked: true });
  const enabled = h("input", { type: "checkbox", id: "policy-enabled", checked: true });
  const verify = h("input", { type: "checkbox", id: "policy-verify" });
  const policy = h("p", { class: "hint", id: "policy-summary" });
  const target = targetPicker("backup-target", "Keep the backup in");
  const policyTarget = targetPicker("policy-target", "Keep the policy's backups in");
  let databases: any[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  signal.addEventListener("abort", () => timer !== null && clearTimeout(timer));

  const element = h("section", { "aria-labelledby": "backups-title" },
    h("h2", { id: "backups-title" }, "Database backups"),
    h("p", { class: "hint" }, "PostgreSQL and MySQL databases run by Berth, encrypted on the coordinator."),
    h("div", { class: "toolbar" }, pick, target.element, actionButton("Back up now", out, async () => {
      if (!pick.value) throw new Error("No PostgreSQL or MySQL database run by Berth here to back up.");
      await api("POST", `/dependency-resources/${pick.value}/backups`, target.chosen() ? { backupTargetId: target.chosen() } : {});
      await load();
    })),
    out,
    list,
    actionForm("Restore a backup", [["Backup", restorePick], ["Into", into], ["Replace the target's tables with the backup's (acknowledgeDataOverwrite)", acknowledge]], "Restore", async () => {
      if (!restorePick.value) throw new Error("No ready backup to restore yet.");
      const body: Record<string, unknown> = { acknowledgeDataOverwrite: acknowledge.checked };
      if (into.value) body.targetDependencyResourceId = into.value;
      await api("POST", `/dependency-resources/backups/${restorePick.value}/restore`, body);
      acknowledge.checked = false;
      await load();
      return "Restore started: its outcome shows in the list.";
    }),
    actionForm("Backup policy", [["Every (hours)", every], ["Keep for (days)", keepDays], ["Keep at most (backups)", keepCount], ["Retry a failed scheduled backup", retry], ["Enabled", enabled], ["Keep backups in", policyTarget.element], ["Verify each scheduled backup once ready (verifyAfterBackup)", verify]], "Save policy", async () => {
      if (!pick.value) throw new Error("No database chosen.");
      await api("POST", "/dependency-resources/backup-policies", {
        dependencyResourceId: pick.value,
        scheduleIntervalHours: Number(every.value),
        retentionDays: Number(keepDays.value),
        keepCount: keepCount.value ? Number(keepCount.value) : null,
        retryOnFailure: retry.checked,
        enabled: enabled.checked,
        verifyAfterBackup: verify.checked,
        ...(policyTarget.chosen() ? { backupTargetId: policyTarget.chosen() } : {}),
      });
      await loadPolicy();
      return "Policy saved.";
    }, { id: "backup-policy" }),
    policy,
  );
  pick.addEventListener("change", () => void refresh());

  async function refresh(): Promise<void> {
    out.replaceChildren();
    const chosen = databases.find((d) => d.id === pick.value);
    into.replaceChildren(
      h("option", { value: "" }, "the same database"),
      ...databases.filter((d) => d.id !== pick.value && d.kind === chosen?.kind && d.providerManaged).map((d) => h("option", { value: d.id }, `${d.name} (another database)`)),
    );
    await Promise.all([target.load(), policyTarget.load()]);
    await Promise.all([load(), loadPolicy()]);
  }

  async function load(): Promise<void> {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (!pick.value) {
      list.replaceChildren(h("p", { class: "hint" }, "No database to back up here yet."));
      return;
    }
    const items: any[] = (await api("GET", `/dependency-resources/${pick.value}/backups`)).items;
    if (signal.aborted) return;
    restorePick.replaceChildren(...items.filter((b) => b.status === "ready").map((b) => h("option", { value: b.id }, `${when(b.completedAt)} (${size(b.sizeBytes)})`)));
    list.replaceChildren(table("backup-rows", ["Taken", "Status", "Size", "Verification", "Last restore", ""], items.map((b) =>
      h("tr", { "data-backup": b.id, "data-status": b.status },
        h("td", {}, ago(b.createdAt), h("div", { class: "hint" }, b.id), b.backupTargetId ? h("div", { class: "hint backup-where" }, `in ${b.providerArtifactHandle ?? b.backupTargetId}`) : null),
        h("td", { class: "backup-state" }, b.status, b.failureMessage ? h("div", { class: "error" }, b.failureMessage) : null),
        h("td", { class: "backup-size" }, size(b.sizeBytes)),
        h("td", { class: "backup-verification", "data-verification": b.verification?.status ?? "none" }, verification(b.verification)),
        h("td", { class: "backup-restore", "data-restore": b.latestRestoreAttempt?.status ?? "none" }, restore(b.latestRestoreAttempt)),
        h("td", {}, b.status === "ready"
          ? actionButton("Verify", out, async () => {
              await api("POST", `/dependency-resources/backups/${b.id}/verify`, {});
              await load();
            }, { name: `Verify the backup ${b.id}` })
          : null),
      )), "No backups of this database yet."));
    if (items.some(unsettled) && !signal.aborted) timer = setTimeout(() => void load().catch(() => undefined), POLL_MS);
  }

  async function loadPolicy(): Promise<void> {
    if (!pick.value) return policy.replaceChildren();
    const found = (await api("GET", "/dependency-resources/backup-policies" + query({ dependencyResourceId: pick.value }))).items[0];
    if (!found) return policy.replaceChildren("No backup policy: backups are taken only when asked.");
    every.value = String(found.scheduleIntervalHours);
    keepDays.value = String(found.retentionDays);
    keepCount.value = found.keepCount === null || found.keepCount === undefined ? "" : String(found.keepCount);
    retry.checked = found.retryOnFailure;
    enabled.checked = found.enabled;
    verify.checked = Boolean(found.verifyAfterBackup);
    policyTarget.element.value = found.backupTargetId ?? "";
    policy.replaceChildren(`Policy: ${found.enabled ? "enabled" : "disabled"}, every ${found.scheduleIntervalHours} h, kept ${found.retentionDays} days${found.keepCount ? `, at most ${found.keepCount}` : ""}; kept in ${found.backupTargetId ? policyTarget.element.selectedOptions[0]?.textContent ?? found.backupTargetId : "the coordinator's storage"}; ${found.verifyAfterBackup ? "each backup verified once ready" : "not verified automatically"}; next run ${when(found.nextRunAt)}, last ${when(found.lastRunAt)}.`);
  }

  function setDatabases(items: any[]): void {
    const before = pick.value;
    databases = items.filter((d) => BACKED_UP.has(d.kind) && d.providerManaged);
    pick.replaceChildren(...databases.map((d) => h("option", { value: d.id }, d.name)));
    if (databases.some((d) => d.id === before)) pick.value = before;
    void refresh().catch((error) => out.replaceChildren(h("p", { class: "error", role: "alert" }, String(error.message ?? error))));
  }

  return { element, setDatabases };
}
