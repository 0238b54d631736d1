// A resource's scheduled tasks: list, create, edit, pause/resume, run now, delete; its runs with
// their status (refreshed while one is going) and each run's output, followed live while it runs
// (the run log stream) and ended by its exit code and failure code.
import { api, query } from "../api";
import { h, link } from "../dom";
import { followRun, runView } from "../runfollow";
import { actionButton, actionForm, select, table, when } from "../widgets";

const GOING = new Set(["accepted", "running"]);

export async function page(root: HTMLElement, [resourceId]: string[], signal: AbortSignal): Promise<void> {
  const resource = (await api("GET", `/resources/${resourceId}`)).resource;
  const out = h("div", { role: "status", id: "task-status" });
  const tasks = h("div", { id: "tasks" });
  const runs = h("div", { id: "runs" });
  const view = runView("run");

  const schedule = h("input", { name: "schedule", id: "task-schedule", required: true, placeholder: "*/5 * * * * or @hourly" });
  const timezone = h("input", { name: "timezone", id: "task-timezone", value: "UTC" });
  const command = h("input", { name: "commandIntent", id: "task-command", required: true, placeholder: "sh -c '…'" });
  const timeout = h("input", { name: "timeoutSeconds", id: "task-timeout", type: "number", min: 1, max: 86400, value: 3600 });
  const retries = h("input", { name: "retryLimit", id: "task-retries", type: "number", min: 0, max: 10, value: 0 });
  const concurrency = select("task-concurrency", [["forbid", "forbid (skip while one runs)"], ["allow", "allow"], ["replace", "replace"]]);
  let editing: string | null = null;
  const formTitle = "Scheduled task";
  const form = actionForm(formTitle, [["Schedule", schedule], ["Time zone", timezone], ["Command", command], ["Timeout (seconds)", timeout], ["Retries", retries], ["Concurrency", concurrency]], "Save task", async () => {
    const fields = {
      schedule: schedule.value,
      timezone: timezone.value || "UTC",
      commandIntent: command.value,
      timeoutSeconds: Number(timeout.value),
      retryLimit: Number(retries.value),
      concurrencyPolicy: concurrency.value,
    };
    if (editing) await api("POST", `/scheduled-tasks/${editing}`, { resourceId, ...fields });
    else await api("POST", "/scheduled-tasks", { resourceId, ...fields });
    const done = editing ? "Task saved." : "Task created.";
    editing = null;
    form.reset();
    await loadTasks();
    return done;
  });

  root.append(
    h("p", { class: "crumbs" }, link(`/resources/${resourceId}`, resource.name), " / scheduled tasks"),
    h("h1", {}, `Scheduled tasks of ${resource.name}`),
    tasks,
    out,
    form,
    h("section", { "aria-labelledby": "runs-title" }, h("h2", { id: "runs-title" }, "Runs"), runs, ...view.section),
  );

  async function loadTasks(): Promise<void> {
    const answer = await api("GET", "/scheduled-tasks" + query({ resourceId }));
    tasks.replaceChildren(table("task-rows", ["Schedule", "Command", "Status", "Next run", "Latest run", ""], answer.items.map((t: any) =>
      h("tr", { "data-task-id": t.taskId },
        h("td", {}, h("code", {}, t.schedule), ` ${t.timezone}`),
        h("td", {}, h("code", {}, t.commandIntent)),
        h("td", { class: "task-state" }, t.status),
        h("td", {}, when(t.nextRunAt)),
        h("td", {}, t.latestRun ? t.latestRun.status : "–"),
        h("td", { class: "actions" },
          actionButton("Run now", out, async () => {
            const started = await api("POST", `/scheduled-tasks/${t.taskId}/runs`, { resourceId });
            await loadRuns();
            void showLogs(started.run);
          }, { name: `Run ${t.commandIntent} now` }),
          actionButton(t.status === "enabled" ? "Pause" : "Resume", out, async () => {
            await api("POST", `/scheduled-tasks/${t.taskId}`, { resourceId, status: t.status === "enabled" ? "disabled" : "enabled" });
            await loadTasks();
          }),
          actionButton("Edit", out, async () => {
            editing = t.taskId;
            schedule.value = t.schedule;
            timezone.value = t.timezone;
            command.value = t.commandIntent;
            timeout.value = String(t.timeoutSeconds);
            retries.value = String(t.retryLimit);
            concurrency.value = t.concurrencyPolicy;
            schedule.focus();
          }),
          actionButton("Delete", out, async () => {
            await api("DELETE", `/scheduled-tasks/${t.taskId}`, { resourceId });
            await loadTasks();
          }, { confirmText: `Delete the task "${t.commandIntent}"? A run still going is stopped.` })),
      )), "No scheduled tasks yet."));
  }

  // One run's output at a time (a newer one replaces the one being followed).
  let following: AbortController | null = null;
  async function showLogs(run: any): Promise<void> {
    following?.abort();
    const mine = new AbortController();
    following = mine;
    signal.addEventListener("abort", () => mine.abort());
    if (await followRun(view, resourceId, run.runId, mine.signal)) await loadRuns();
  }

  let polling = false;
  async function loadRuns(): Promise<void> {
    const answer = await api("GET", "/scheduled-task-runs" + query({ resourceId, limit: 50 }));
    runs.replaceChildren(table("run-rows", ["Run", "Trigger", "Status", "Started", "Exit code", "Failure", ""], answer.items.map((r: any) =>
      h("tr", { "data-run-id": r.runId, "data-status": r.status },
        h("td", {}, h("code", {}, r.runId)),
        h("td", {}, r.triggerKind),
        h("td", {}, h("span", { class: `state state-${r.status}` }, r.status)),
        h("td", {}, when(r.startedAt)),
        h("td", {}, r.exitCode ?? "–"),
        h("td", {}, r.failureSummary ?? r.skippedReason ?? ""),
        h("td", {}, actionButton("Logs", out, () => showLogs(r), { name: `Logs of run ${r.runId}` })),
      )), "No runs yet."));
    // A run still going: look again shortly, until every run has ended or the page is left.
    if (!polling && answer.items.some((r: any) => GOING.has(r.status))) {
      polling = true;
      setTimeout(() => {
        polling = false;
        if (!signal.aborted) void loadRuns().catch((error) => out.replaceChildren(String(error.message ?? error)));
      }, 1000);
    }
  }
  await Promise.all([loadTasks(), loadRuns()]);
}
