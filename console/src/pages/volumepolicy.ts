// A named volume's backup policy (on the storage page, for the volume the backup section has
// picked): what is in force (schedule, retention, keep count, retry, enabled, stopResource,
// target, verifyAfterBackup, last and next run) and a form that sets or replaces it
// (``POST /storage-volumes/backup-policies``; one policy per volume, again replaces it).
import { api, query } from "../api";
import { h } from "../dom";
import { actionForm, when } from "../widgets";
import { OWN_STORAGE, targetPicker } from "./backuptargets";

export interface VolumePolicy {
  element: HTMLElement;
  // Draws the policy of ``volumeId`` (null: no volume to set one for); ``readOnly``: the
  // signed-in role may not write storage volumes, so the form is disabled.
  load: (volumeId: string | null, readOnly: boolean) => Promise<void>;
}

// One line saying what the policy does; ``where`` names its target as the picker shows it.
export function policySummary(p: any, where: string): string {
  return `Policy: ${p.enabled ? "enabled" : "disabled"}, every ${p.scheduleIntervalHours} h, kept ${p.retentionDays} days`
    + `${p.keepCount ? `, at most ${p.keepCount}` : ""}; ${p.retryOnFailure ? "retried on failure" : "not retried"}; `
    + `${p.stopResource ? "the app is stopped for each copy" : "live copies"}; kept in ${where}; `
    + `${p.verifyAfterBackup ? "each backup verified once ready" : "not verified automatically"}; `
    + `next run ${when(p.nextRunAt)}, last ${when(p.lastRunAt)}.`;
}

export function volumePolicySection(): VolumePolicy {
  const every = h("input", { type: "number", id: "volume-policy-interval", min: 1, max: 8760, value: 24, required: true });
  const keepDays = h("input", { type: "number", id: "volume-policy-retention", min: 1, max: 3650, value: 14, required: true });
  const keepCount = h("input", { type: "number", id: "volume-policy-keep", min: 1, max: 1000, placeholder: "no limit" });
  const retry = h("input", { type: "checkbox", id: "volume-policy-retry", checked: true });
  const enabled = h("input", { type: "checkbox", id: "volume-policy-enabled", checked: true });
  const stop = h("input", { type: "checkbox", id: "volume-policy-stop" });
  const target = targetPicker("volume-policy-target", "Keep the volume policy's backups in");
  const verify = h("input", { type: "checkbox", id: "volume-policy-verify" });
  const summary = h("p", { class: "hint", id: "volume-policy-summary" });
  let volumeId: string | null = null;

  const form = actionForm("Scheduled backups of this volume (policy)", [
    ["Every (hours)", every],
    ["Keep for (days)", keepDays],
    ["Keep at most (backups)", keepCount],
    ["Retry a failed scheduled backup", retry],
    ["Enabled", enabled],
    ["Stop the app during each copy (stopResource)", stop],
    ["Keep backups in", target.element],
    ["Verify each scheduled backup once ready (verifyAfterBackup)", verify],
  ], "Save volume policy", async () => {
    if (!volumeId) throw new Error("No named volume chosen.");
    await api("POST", "/storage-volumes/backup-policies", {
      storageVolumeId: volumeId,
      scheduleIntervalHours: Number(every.value),
      retentionDays: Number(keepDays.value),
      keepCount: keepCount.value ? Number(keepCount.value) : null,
      retryOnFailure: retry.checked,
      enabled: enabled.checked,
      stopResource: stop.checked,
      verifyAfterBackup: verify.checked,
      ...(target.chosen() ? { backupTargetId: target.chosen() } : {}),
    });
    await show();
    return "Volume policy saved.";
  }, { id: "volume-backup-policy" });
  const readOnlyHint = h("p", { class: "hint", id: "volume-policy-read-only", hidden: true }, "Read-only: your role may see the policy but not change it.");
  form.append(readOnlyHint);

  function lock(readOnly: boolean): void {
    for (const control of form.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>("input, select, button")) control.disabled = readOnly;
    readOnlyHint.hidden = !readOnly;
  }

  async function show(): Promise<void> {
    if (!volumeId) {
      summary.replaceChildren();
      return;
    }
    const found = (await api("GET", "/storage-volumes/backup-policies" + query({ storageVolumeId: volumeId }))).items[0];
    if (!found) {
      summary.replaceChildren("No volume backup policy: this volume is backed up only when asked.");
      return;
    }
    every.value = String(found.scheduleIntervalHours);
    keepDays.value = String(found.retentionDays);
    keepCount.value = found.keepCount === null || found.keepCount === undefined ? "" : String(found.keepCount);
    retry.checked = found.retryOnFailure;
    enabled.checked = found.enabled;
    stop.checked = found.stopResource;
    verify.checked = Boolean(found.verifyAfterBackup);
    target.element.value = found.backupTargetId ?? "";
    const where = found.backupTargetId ? target.element.selectedOptions[0]?.textContent ?? found.backupTargetId : OWN_STORAGE;
    summary.replaceChildren(h("span", { "data-policy": found.id, "data-enabled": String(found.enabled) }, policySummary(found, where)));
  }

  async function load(id: string | null, readOnly: boolean): Promise<void> {
    volumeId = id;
    lock(readOnly);
    await target.load();
    await show();
  }

  return { element: h("div", { class: "volume-policy" }, form, summary), load };
}
