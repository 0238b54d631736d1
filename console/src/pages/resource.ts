// One resource: plan preview, deploy with a live event timeline, recent deployments (rollback),
// a one-off command followed to its exit code, runtime logs follow (and from a chosen time), the
// way to its terminal and to its domains, storage and scheduled tasks; archive.
import { api, query, stream } from "../api";
import { followTimeline, TERMINAL } from "../deployments";
import { errorBox, h, link } from "../dom";
import { LogView } from "../logview";
import { oneOffSection } from "../oneoff";
import { actionButton } from "../widgets";

export async function page(root: HTMLElement, [resourceId]: string[], signal: AbortSignal): Promise<void> {
  const resource = (await api("GET", `/resources/${resourceId}`)).resource;
  const [env, servers] = await Promise.all([
    api("GET", `/environments/${resource.environmentId}`),
    api("GET", "/servers" + query({ limit: 200 })),
  ]);
  const serverPicker = h(
    "select",
    { id: "deploy-server", name: "server" },
    ...servers.items.map((s: any) => h("option", { value: s.id }, `${s.name} (${s.agent.status})`)),
  );
  const planBox = h("div", { id: "plan" });
  const timeline = h("ol", { id: "timeline", class: "timeline", "aria-live": "polite" });
  const status = h("p", { id: "deployment-status", role: "status" });
  const deployButton = h("button", { type: "button", id: "deploy", disabled: true }, "Deploy");
  const redeployButton = h("button", { type: "button", id: "redeploy", disabled: true }, "Redeploy");
  const history = h("div", { id: "deployments" });
  const archiveOut = h("span", { role: "status" });
  root.append(
    h("p", { class: "crumbs" }, link("/projects", "Projects"), " / ", link(`/projects/${resource.projectId}`, "project"), " / ", link(`/environments/${env.id}`, env.name), " / ", resource.name),
    h("div", { class: "title-row" }, h("h1", {}, resource.name), link(`/resources/${resourceId}/terminal`, "Open terminal", { class: "button", id: "open-terminal" })),
    h("div", { role: "navigation", "aria-label": "Resource", class: "actions" },
      link(`/resources/${resourceId}/domains`, "Domains"),
      link(`/resources/${resourceId}/storage`, "Storage and databases"),
      link(`/resources/${resourceId}/tasks`, "Scheduled tasks"),
      link(`/resources/${resourceId}/profiles`, "Runtime, network, access and health"),
      link(`/resources/${resourceId}/source`, "Source"),
      resource.lifecycleStatus === "archived"
        ? h("span", { class: "tag", id: "lifecycle-status" }, "archived")
        : actionButton("Archive resource", archiveOut, async () => {
            await api("POST", `/resources/${resourceId}/archive`, {});
            archiveOut.replaceChildren(h("span", { class: "tag", id: "lifecycle-status" }, "archived"));
          }, { confirmText: `Archive ${resource.name}? It can no longer be deployed.` }),
      archiveOut),
    h("section", { "aria-labelledby": "deploy-title" },
      h("h2", { id: "deploy-title" }, "Deploy"),
      h("label", { class: "field inline" }, h("span", {}, "Server"), serverPicker),
      h("div", { class: "actions" }, h("button", { type: "button", id: "preview-plan", onclick: () => void preview() }, "Preview plan"), deployButton, redeployButton),
      planBox, status, timeline),
    h("section", { "aria-labelledby": "history-title" }, h("h2", { id: "history-title" }, "Deployments"), history),
  );

  const context = () => ({ projectId: resource.projectId, environmentId: resource.environmentId, resourceId, serverId: serverPicker.value });

  async function preview(): Promise<void> {
    planBox.replaceChildren();
    deployButton.disabled = true;
    try {
      const plan = await api("GET", "/deployments/plan" + query(context()));
      const items = (xs: any[], f: (x: any) => string) => (xs.length ? h("ul", {}, ...xs.map((x) => h("li", {}, f(x)))) : h("p", { class: "hint" }, "none"));
      planBox.append(
        h("div", { class: "card", id: "plan-card" },
          h("p", {}, "Readiness: ", h("strong", { id: "plan-readiness", "data-ready": String(plan.readiness.ready) }, plan.readiness.status),
            plan.readiness.reasonCodes.length ? ` (${plan.readiness.reasonCodes.join(", ")})` : ""),
          h("p", {}, `Image ${plan.artifact?.image ?? plan.source.imageName ?? plan.source.locator ?? "?"} · ${plan.planner.buildStrategy} on ${plan.context.serverName}`),
          h("h3", {}, "Will run"), items(plan.commands, (c) => `${c.kind}: ${c.command}`),
          h("h3", {}, "Warnings"), items(plan.warnings, (w) => w.message ?? w.code ?? JSON.stringify(w)),
          plan.unsupportedReasons.length ? [h("h3", {}, "Unsupported"), items(plan.unsupportedReasons, (r) => r.message ?? r.code ?? JSON.stringify(r))] : null,
        ),
      );
      deployButton.disabled = !plan.readiness.ready;
    } catch (error) {
      planBox.append(errorBox(error));
    }
  }

  deployButton.addEventListener("click", async () => {
    deployButton.disabled = true;
    timeline.replaceChildren();
    try {
      const created = await api("POST", "/deployments", context());
      await follow(created.id);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });

  redeployButton.addEventListener("click", async () => {
    redeployButton.disabled = true;
    timeline.replaceChildren();
    try {
      const answer = await api("POST", `/resources/${resourceId}/redeploy`, { serverId: serverPicker.value });
      await follow(answer.id);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });

  // One command button of a deployment row; the answer's deployment (if new) is followed.
  const command = (label: string, path: string, body: unknown, followNew: boolean) =>
    h("button", { type: "button", class: "small", onclick: async () => {
      try {
        const answer = await api("POST", path, body);
        timeline.replaceChildren();
        if (followNew) await follow(answer.id);
        else await loadHistory();
      } catch (error) {
        status.replaceChildren(errorBox(error));
      }
    } }, label);

  async function follow(deploymentId: string): Promise<void> {
    await followTimeline(deploymentId, timeline, status, signal);
    void loadHistory();
  }

  async function loadHistory(): Promise<void> {
    const list = await api("GET", "/deployments" + query({ resourceId, limit: 20 }));
    redeployButton.disabled = list.items.length === 0;
    history.replaceChildren(
      list.items.length
        ? h("table", {},
            h("thead", {}, h("tr", {}, ...["Deployment", "Status", "Started", ""].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, ...list.items.map((d: any, index: number) => h("tr", {},
              h("td", {}, h("a", { href: `/console/deployments/${d.id}`, "data-nav": "", "aria-label": `Deployment ${d.id}` }, h("code", {}, d.id))),
              h("td", {}, h("span", { class: `state state-${d.status}` }, d.status)),
              h("td", {}, d.startedAt ? new Date(d.startedAt).toLocaleString() : "–"),
              h("td", { class: "actions" },
                TERMINAL.has(d.status) ? null : command("Cancel", `/deployments/${d.id}/cancel`, { confirm: d.id }, false),
                d.status === "failed" || d.status === "canceled" ? command("Retry", `/deployments/${d.id}/retry`, {}, true) : null,
                index > 0 && d.status === "succeeded"
                  ? command("Roll back to this", `/deployments/${list.items[0].id}/rollback`, { rollbackCandidateDeploymentId: d.id }, true)
                  : null),
            ))))
        : h("p", { class: "hint" }, "Not deployed yet."),
    );
  }
  await loadHistory();
  root.append(oneOffSection(resourceId, signal));

  // Variables and secrets: values of secrets are never shown, only replaced.
  const entries = h("tbody", { id: "config-rows" });
  const key = h("input", { name: "key", id: "config-key", required: true, pattern: "[A-Za-z_][A-Za-z0-9_]*", autocomplete: "off" });
  const value = h("input", { name: "value", id: "config-value", type: "password", autocomplete: "off" });
  const secret = h("input", { name: "secret", id: "config-secret", type: "checkbox", checked: true });
  const configOut = h("div", { role: "status" });
  const configForm = h("form", { class: "filters", "aria-label": "Set a variable or secret" },
    h("label", { class: "field" }, h("span", {}, "Key"), key),
    h("label", { class: "field" }, h("span", {}, "Value"), value),
    h("label", { class: "field inline" }, h("span", {}, "Secret"), secret),
    h("button", { type: "submit" }, "Set"));
  root.append(
    h("section", { "aria-labelledby": "config-title" },
      h("h2", { id: "config-title" }, "Variables and secrets"),
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...["Key", "Value", "Scope", "Kind", ""].map((t) => h("th", { scope: "col" }, t)))), entries)),
      configForm, configOut),
  );
  const known = new Map<string, any>();
  const loadConfig = async () => {
    const config = await api("GET", `/resources/${resourceId}/effective-config`);
    known.clear();
    for (const entry of config.effectiveEntries) known.set(entry.key, entry);
    entries.replaceChildren(...config.effectiveEntries.map((e: any) =>
      h("tr", { "data-key": e.key }, h("td", {}, h("code", {}, e.key)), h("td", {}, h("code", {}, e.value)), h("td", {}, e.scope), h("td", {}, e.kind),
        // Only the resource's own entries are deleted here; an inherited one belongs to the environment.
        h("td", {}, e.scope === "resource"
          ? h("button", { type: "button", class: "small", "aria-label": `Delete ${e.key}`, onclick: () => void removeEntry(e) }, "Delete")
          : link(`/environments/${config.environmentId}`, "on the environment")))));
  };
  const removeEntry = async (e: any) => {
    if (!confirm(`Delete ${e.isSecret ? "secret" : "variable"} ${e.key}? The next deployment runs without it.`)) return;
    const path = encodeURIComponent(e.key);
    try {
      if (e.isSecret) await api("DELETE", `/resources/${resourceId}/secrets/${path}` + query({ exposure: e.exposure }));
      else await api("DELETE", `/resources/${resourceId}/variables/${path}`, { exposure: e.exposure });
      configOut.replaceChildren(h("p", { class: "hint" }, `${e.key} deleted; the next deployment runs without it.`));
    } catch (error) {
      configOut.replaceChildren(errorBox(error));
    }
    await loadConfig();
  };
  configForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const existing = known.get(key.value);
      const rotate = secret.checked && existing?.isSecret && existing.scope === "resource";
      if (rotate) {
        // An existing secret is replaced (rotated), never shown.
        await api("POST", `/resources/${resourceId}/secrets/${encodeURIComponent(key.value)}`, { value: value.value });
      } else if (secret.checked) await api("POST", `/resources/${resourceId}/secrets`, { key: key.value, value: value.value });
      else await api("POST", `/resources/${resourceId}/variables`, { key: key.value, value: value.value, exposure: "runtime" });
      const done = rotate ? "replaced" : "set";
      configOut.replaceChildren(h("p", { class: "hint" }, `${key.value} ${done}; it applies from the next deployment.`));
      key.value = "";
      value.value = "";
      await loadConfig();
    } catch (error) {
      configOut.replaceChildren(errorBox(error));
    }
  });
  await loadConfig();

  // Runtime logs
  const view = new LogView();
  const follow_ = h("button", { type: "button", id: "follow-logs", "aria-pressed": "false" }, "Follow logs");
  const pause = h("button", { type: "button", id: "pause-logs", "aria-pressed": "false", disabled: true }, "Pause");
  const filter = h("input", { type: "search", id: "log-filter", name: "filter", placeholder: "text" });
  const streamPick = h("select", { id: "log-stream", name: "stream" }, h("option", { value: "" }, "all streams"), h("option", { value: "stdout" }, "stdout"), h("option", { value: "stderr" }, "stderr"));
  const state = h("span", { id: "log-state", class: "hint", role: "status" });
  const jumpAt = h("input", { type: "datetime-local", step: 1, id: "log-since", name: "since" });
  const jumpForm = h("form", { class: "actions", "aria-label": "Jump to a time" },
    h("label", { class: "field inline" }, h("span", {}, "From"), jumpAt),
    h("button", { type: "submit", id: "jump-logs" }, "Jump to time"));
  root.append(
    h("section", { "aria-labelledby": "logs-title" },
      h("h2", { id: "logs-title" }, "Runtime logs"),
      h("div", { class: "actions" }, follow_, pause,
        h("label", { class: "field inline" }, h("span", {}, "Filter"), filter),
        h("label", { class: "field inline" }, h("span", {}, "Stream"), streamPick), state),
      jumpForm,
      view.element),
  );
  let following: AbortController | null = null;
  const stopFollowing = () => {
    following?.abort();
    following = null;
    follow_.textContent = "Follow logs";
    follow_.setAttribute("aria-pressed", "false");
    pause.disabled = true;
    state.textContent = "stopped";
  };
  // Follow from now (the last 200 lines first) or, after a jump, from ``since`` on: at most the
  // last 1,000 lines after it (the API's tailLines bound), then new ones as they come.
  const startFollowing = (since: string | null) => {
    following = new AbortController();
    const mine = following;
    signal.addEventListener("abort", () => mine.abort());
    follow_.textContent = "Stop following";
    follow_.setAttribute("aria-pressed", "true");
    pause.disabled = false;
    const from = since ? ` from ${new Date(since).toLocaleString()}` : "";
    const params = since ? { since, tailLines: 1000 } : { tailLines: 200 };
    void stream(`/resources/${resourceId}/runtime-logs/stream` + query(params), ({ event, data }) => {
      if (event === "runtime-logs") view.add(data.logs);
      else if (event === "gap" || data.gap) view.gap(data);
    }, mine.signal, (s) => (state.textContent = s === "open" ? `following${from}` : s),
      // "error": the agent's link (or the coordinator) went away; resume from the last line.
      (end) => end?.reason === "error").catch((error) => state.replaceChildren(errorBox(error)));
  };
  follow_.addEventListener("click", () => (following ? stopFollowing() : startFollowing(null)));
  jumpForm.addEventListener("submit", (event) => {
    event.preventDefault();
    // The input holds the browser's local time; the API takes an absolute one.
    const at = new Date(jumpAt.value);
    if (!jumpAt.value || Number.isNaN(at.getTime())) {
      state.replaceChildren(errorBox(new Error("Pick a date and time to jump to.")));
      return;
    }
    stopFollowing();
    view.clear();
    startFollowing(at.toISOString());
  });
  pause.addEventListener("click", () => {
    view.paused = !view.paused;
    pause.textContent = view.paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(view.paused));
    if (!view.paused) view.render();
  });
  filter.addEventListener("input", () => view.setFilter(filter.value, streamPick.value));
  streamPick.addEventListener("change", () => view.setFilter(filter.value, streamPick.value));
}
