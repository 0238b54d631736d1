// Operator work: the ledger of background work (GET /operator-work) filtered by kind and status,
// with each item's phase, error and exactly the actions its nextActions offer (what `berth work` does).
import { api, query } from "../api";
import { errorBox, field, h, link } from "../dom";
import { actionButton, select, table, when } from "../widgets";

// The API's WorkKind and WorkStatus enums (coordinator/operator_work/kinds.py), for the filters.
const KINDS = ["deployment", "proxy-bootstrap", "certificate", "remote-state", "route-realization", "runtime-maintenance", "system", "scheduled-task-run", "backup", "restore", "backup-verification"];
const STATUSES = ["pending", "running", "retry-scheduled", "succeeded", "failed", "canceled", "dead-lettered", "unknown"];
// Action name in nextActions -> button label; "diagnostic" has no route of its own and is not a button.
const ACTIONS: [string, string][] = [["retry", "Retry"], ["cancel", "Cancel"], ["dead-letter", "Dead-letter"], ["mark-recovered", "Mark recovered"]];

export async function page(root: HTMLElement): Promise<void> {
  const params = new URLSearchParams(location.search);
  const kind = select("work-kind", [["", "any kind"], ...KINDS.map((k): [string, string] => [k, k])]);
  const status = select("work-status", [["", "any status"], ...STATUSES.map((s): [string, string] => [s, s])]);
  kind.value = params.get("kind") ?? "";
  status.value = params.get("status") ?? "";
  const workId = h("input", { id: "work-id", name: "workId", placeholder: "a work id" });
  const out = h("div", { id: "work-status-line", role: "status" });
  const list = h("div", { id: "work-list" });
  const shown = h("div", { id: "work-shown" });
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter work" }, field("Kind", kind), field("Status", status), h("button", { type: "submit" }, "Filter"));
  const lookup = h("form", { class: "filters", "aria-label": "Show work" }, field("Work id", workId), h("button", { type: "submit" }, "Show"));
  root.append(
    h("h1", {}, "Operator work"),
    h("p", { class: "hint" }, "Berth's background work, most recently updated first. ", link("/retention", "Retention defaults")),
    filters,
    lookup,
    shown,
    out,
    list,
  );

  const actions = (item: any): HTMLElement => {
    const buttons = ACTIONS.filter(([action]) => item.nextActions.includes(action)).map(([action, label]) =>
      actionButton(label, out, async () => {
        let body: Record<string, string> = {};
        if (action === "dead-letter") {
          const reason = prompt("Why give up on this work?");
          if (!reason) return;
          body = { reason };
        }
        const answer: any = await api("POST", `/operator-work/${encodeURIComponent(item.id)}/${action}`, body);
        await load();
        out.replaceChildren(h("p", { class: "hint" }, action === "retry" ? `Retried as ${answer.workId}.` : `${item.id}: ${answer.status}.`));
      }, { name: `${label} ${item.id}`, confirmText: action === "cancel" ? "Cancel this work?" : undefined }),
    );
    return h("td", {}, ...buttons);
  };

  const row = (item: any): HTMLElement =>
    h("tr", { "data-work-id": item.id, "data-status": item.status },
      h("td", {}, h("code", {}, item.id)),
      h("td", {}, item.kind, h("br"), h("small", {}, item.operationKey)),
      h("td", { class: "work-status" }, item.status),
      h("td", {}, [item.phase, item.step].filter(Boolean).join(" / ") || "–"),
      h("td", {}, item.errorCode ? `${item.errorCode}${item.errorCategory ? ` (${item.errorCategory})` : ""}` : "–",
        item.safeDetails?.failureSummary ? h("br") : "", item.safeDetails?.failureSummary ? h("small", {}, item.safeDetails.failureSummary) : ""),
      h("td", {}, item.retriable ? "yes" : "no"),
      h("td", {}, when(item.updatedAt)),
      actions(item));
  const headers = ["Id", "Kind", "Status", "Phase", "Error", "Retriable", "Updated", "Actions"];

  const load = async (): Promise<void> => {
    const answer: any = await api("GET", "/operator-work" + query({ kind: kind.value || null, status: status.value || null }));
    list.replaceChildren(table("work-rows", headers, answer.items.map(row), "No work matches."));
  };
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const search = query({ kind: kind.value || null, status: status.value || null });
    history.replaceState(null, "", location.pathname + search);
    out.replaceChildren();
    load().catch((error) => out.replaceChildren(errorBox(error)));
  });
  lookup.addEventListener("submit", (event) => {
    event.preventDefault();
    shown.replaceChildren();
    api("GET", `/operator-work/${encodeURIComponent(workId.value.trim())}`)
      .then((answer: any) => shown.replaceChildren(table("work-shown-row", headers, [row(answer.item)], "")))
      .catch((error) => shown.replaceChildren(errorBox(error)));
  });
  try {
    await load();
  } catch (error) {
    out.replaceChildren(errorBox(error));
  }
}
