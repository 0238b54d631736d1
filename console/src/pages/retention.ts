// Retention defaults: each history category's policy (days, enabled, dry-run and destructive
// scheduling) with its last scheduled run's report; saving is POST /retention-defaults.
import { api } from "../api";
import { errorBox, h } from "../dom";
import { actionForm, when } from "../widgets";

// The API's retention categories (coordinator/api/retention.py Category), in its order.
const CATEGORIES = [
  "audit-rows",
  "deployment-logs",
  "domain-event-streams",
  "process-attempts",
  "provider-job-logs",
  "resource-runtime-log-archives",
  "runtime-monitoring-samples",
  "scheduled-task-run-logs",
];

function lastRun(run: Record<string, any> | null | undefined): HTMLElement {
  if (!run) return h("p", { class: "hint", "data-last-run": "none" }, "Not run yet.");
  const facts = Object.entries(run).map(([key, value]) => h("li", {}, h("strong", {}, key), `: ${typeof value === "object" ? JSON.stringify(value) : String(value)}`));
  return h("div", { "data-last-run": "report" }, h("h3", {}, "Last run"), h("ul", {}, ...facts));
}

export async function page(root: HTMLElement): Promise<void> {
  root.append(h("h1", {}, "Retention"), h("p", { class: "hint" }, "How long each kind of history is kept, and whether the scheduled prune only reports (dry run) or removes."));
  let policies: Record<string, any> = {};
  try {
    const answer: any = await api("GET", "/retention-defaults");
    policies = Object.fromEntries(answer.items.map((p: any) => [p.category, p]));
  } catch (error) {
    root.append(errorBox(error));
    return;
  }
  for (const category of CATEGORIES) {
    const policy = policies[category];
    const days = h("input", { type: "number", min: "1", max: "36500", name: "retentionDays", id: `${category}-days`, value: String(policy?.retentionDays ?? 30), required: true });
    const enabled = h("input", { type: "checkbox", name: "enabled", id: `${category}-enabled`, checked: policy ? policy.enabled : true });
    const dryRun = h("input", { type: "checkbox", name: "dryRunSchedulingEnabled", id: `${category}-dry-run`, checked: policy ? policy.dryRunSchedulingEnabled : true });
    const destructive = h("input", { type: "checkbox", name: "destructiveSchedulingEnabled", id: `${category}-destructive`, checked: policy ? policy.destructiveSchedulingEnabled : false });
    const state = h("p", { class: "hint", "data-configured": policy ? "true" : "false" }, policy ? `Saved ${when(policy.updatedAt)}.` : "Not configured: nothing of this kind is pruned by schedule.");
    const form = actionForm(
      category,
      [["Keep days", days], ["Enabled", enabled], ["Scheduled dry run", dryRun], ["Scheduled removal", destructive]],
      "Save",
      async () => {
        await api("POST", "/retention-defaults", {
          category,
          retentionDays: Number(days.value),
          enabled: enabled.checked,
          dryRunSchedulingEnabled: dryRun.checked,
          destructiveSchedulingEnabled: destructive.checked,
        });
        state.dataset.configured = "true";
        state.textContent = `Saved ${when(new Date().toISOString())}.`;
        return "Saved.";
      },
      { "data-category": category },
    );
    form.append(state, lastRun(policy?.lastRun));
    root.append(form);
  }
}
