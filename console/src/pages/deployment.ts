// One deployment (GET /deployments/{id}): status and context, its failure, its live timeline of
// events, its build/deploy log, and the commands the API offers for it (`nextActions`): cancel,
// retry, redeploy, roll back to a chosen earlier successful deployment. A command that starts a
// new deployment opens that deployment's page.
import { api, query } from "../api";
import { followTimeline, TERMINAL } from "../deployments";
import { errorBox, h, link } from "../dom";
import { navigate } from "../nav";

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : "–");

export async function page(root: HTMLElement, [deploymentId]: string[], signal: AbortSignal): Promise<void> {
  const facts = h("div", {});
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Deployment commands" });
  const out = h("div", { id: "deployment-command-status", role: "status" });
  const timeline = h("ol", { id: "timeline", class: "timeline", "aria-live": "polite" });
  const status = h("p", { id: "deployment-status", role: "status" });
  const logs = h("ol", { id: "deployment-logs", class: "log-lines" });
  const title = h("h1", { class: "wrap" }, "Deployment ", h("code", {}, deploymentId));
  root.append(
    h("p", { class: "crumbs", id: "deployment-crumbs" }),
    title, facts, actions, out,
    h("section", { "aria-labelledby": "timeline-title" }, h("h2", { id: "timeline-title" }, "Timeline"), status, timeline),
    h("section", { "aria-labelledby": "logs-title" }, h("h2", { id: "logs-title" }, "Build and deploy log"), logs),
  );

  // A command answers the deployment it started (if any): that one's page is opened.
  const command = (label: string, run: () => Promise<any>, confirmText: string | null = null) =>
    h("button", { type: "button", onclick: async () => {
      if (confirmText && !confirm(confirmText)) return;
      try {
        const answer = await run();
        if (answer?.id && answer.id !== deploymentId) navigate(`/deployments/${answer.id}`);
        else await load();
      } catch (error) {
        out.replaceChildren(errorBox(error));
      }
    } }, label);

  const loadLogs = async () => {
    const answer = await api("GET", `/deployments/${deploymentId}/logs`);
    logs.replaceChildren(...answer.logs.map((line: any) =>
      h("li", { "data-stream": line.stream, "data-level": line.level, class: line.stream === "stderr" || line.level === "error" ? "log-stderr" : null },
        h("time", { datetime: line.timestamp }, new Date(line.timestamp).toLocaleTimeString()), ` [${line.phase}] ${line.message}`)));
    if (answer.logs.length === 0) logs.append(h("li", { class: "hint" }, "No log lines yet."));
  };

  async function load(): Promise<void> {
    const shown = await api("GET", `/deployments/${deploymentId}`);
    const d = shown.deployment;
    const ctx = shown.relatedContext;
    document.getElementById("deployment-crumbs")?.replaceChildren(
      link("/projects", "Projects"), " / ", link(`/environments/${ctx.environment.id}`, ctx.environment.name ?? ctx.environment.id),
      " / ", link(`/resources/${ctx.resource.id}`, ctx.resource.name ?? ctx.resource.id), " / deployment");
    const failure = shown.latestFailure;
    facts.replaceChildren(h("div", {},
      h("dl", { class: "facts wrap" },
        h("dt", {}, "Status"), h("dd", {}, h("span", { id: "deployment-current", class: `state state-${d.status}`, "data-status": d.status }, d.status)),
        h("dt", {}, "Resource"), h("dd", {}, link(`/resources/${ctx.resource.id}`, ctx.resource.name ?? ctx.resource.id)),
        h("dt", {}, "Server"), h("dd", {}, ctx.server.name ?? ctx.server.id),
        h("dt", {}, "Trigger"), h("dd", {}, d.triggerKind),
        h("dt", {}, "Created"), h("dd", {}, when(shown.status.createdAt)),
        h("dt", {}, "Started"), h("dd", {}, when(shown.status.startedAt)),
        h("dt", {}, "Finished"), h("dd", {}, when(shown.status.finishedAt)),
        d.rollbackOfDeploymentId ? [h("dt", {}, "Rolls back"), h("dd", {}, link(`/deployments/${d.rollbackOfDeploymentId}`, d.rollbackOfDeploymentId))] : null,
        d.sourceDeploymentId ? [h("dt", {}, "From"), h("dd", {}, link(`/deployments/${d.sourceDeploymentId}`, d.sourceDeploymentId))] : null,
      ),
      failure ? h("p", { class: "error", id: "deployment-failure" }, `Failed in ${failure.phase}: ${failure.message}`, failure.code ? ` (${failure.code})` : "") : null,
    ));
    const next = new Set<string>(shown.nextActions);
    const recovery = shown.recoverySummary;
    const buttons: HTMLElement[] = [];
    if (next.has("cancel")) buttons.push(command("Cancel", () => api("POST", `/deployments/${deploymentId}/cancel`, { confirm: deploymentId }), `Cancel deployment ${deploymentId}?`));
    if (next.has("retry")) buttons.push(command("Retry", () => api("POST", `/deployments/${deploymentId}/retry`, {})));
    if (recovery.redeployable && TERMINAL.has(d.status)) buttons.push(command("Redeploy", () => api("POST", `/resources/${d.resourceId}/redeploy`, { serverId: d.serverId })));
    if (next.has("rollback")) {
      // The earlier successful deployments of the resource, newest first, are the candidates.
      const list = await api("GET", "/deployments" + query({ resourceId: d.resourceId, limit: 50 }));
      const candidates = list.items.filter((c: any) => c.status === "succeeded" && c.id !== deploymentId);
      if (candidates.length) {
        const pick = h("select", { id: "rollback-candidate", class: "shrink", "aria-label": "Deployment to roll back to" },
          ...candidates.map((c: any) => h("option", { value: c.id }, `${c.id} (${when(c.finishedAt ?? c.createdAt)})`)));
        buttons.push(pick, command("Roll back", () => api("POST", `/deployments/${deploymentId}/rollback`, { rollbackCandidateDeploymentId: pick.value }), "Roll back to the chosen deployment?"));
      }
    }
    actions.replaceChildren(...buttons);
  }

  await load();
  await loadLogs();
  // The timeline is replayed from the first event and followed live; once it reaches a final
  // status the facts, commands and log are read again.
  // While it runs, each event re-reads the log (one read at a time; a missed one is made up).
  let reading: Promise<void> | null = null;
  let again = false;
  const refreshLogs = () => {
    if (reading) {
      again = true;
      return;
    }
    reading = loadLogs().catch(() => {}).finally(() => {
      reading = null;
      if (again && !signal.aborted) {
        again = false;
        refreshLogs();
      }
    });
  };
  void followTimeline(deploymentId, timeline, status, signal, refreshLogs).then(async (last) => {
    if (signal.aborted || last === null) return;
    await Promise.all([load(), loadLogs()]);
  }).catch(() => {});
}
