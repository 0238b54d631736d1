// Servers: live agent state (polled), version, last seen, and CPU/memory/disk bars from each
// online server's newest stored sample.
import { api, query } from "../api";
import { ago, errorBox, h, link } from "../dom";

const REFRESH_MS = 5000;
// Usage bars cost a call per server: they are re-read every sixth refresh (30 s).
const BARS_EVERY = 6;
// Bars need one samples call per server: only the first rows get them (the rest say so).
const MAX_SAMPLED = 50;

interface Usage {
  cpu: number | null;
  memory: number | null;
  disk: number | null;
}

export async function latestUsage(serverId: string, signal?: AbortSignal): Promise<Usage | null> {
  const answer = await api(
    "GET",
    "/runtime-monitoring/samples" + query({ "scope.kind": "server", "scope.serverId": serverId, limit: 1 }),
  );
  if (signal?.aborted) return null;
  const totals = answer.samples?.at(-1)?.totals;
  if (!totals) return null;
  const ratio = (used?: number | null, total?: number | null) => (used != null && total ? (100 * used) / total : null);
  return {
    cpu: totals.cpu?.busyPercent ?? null,
    memory: ratio(totals.memory?.usedBytes, totals.memory?.totalBytes),
    disk: ratio(totals.disk?.usedBytes, totals.disk?.totalBytes),
  };
}

// Rows are written as one HTML string (escaped) and parsed once: with 1,000 servers that is
// several times cheaper than building each element (bench/console.py, "rows ms"). Links are
// ordinary <a data-nav> elements that the shell's one click listener handles.
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escape = (value: unknown) => String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);

function barHtml(label: string, percent: number | null): string {
  const value = percent === null ? null : Math.max(0, Math.min(100, percent));
  const title = value === null ? `${label}: no sample yet` : `${label} ${value.toFixed(1)} %`;
  return `<div class="bar" title="${escape(title)}"><span class="bar-label">${label}</span>`
    + `<meter min="0" max="100" value="${value ?? 0}" aria-label="${label}"></meter>`
    + `<span class="bar-value">${value === null ? "–" : `${value.toFixed(0)} %`}</span></div>`;
}

function rowHtml(server: any, usage: Usage | null | undefined): string {
  const state = escape(server.agent.status);
  const bars = usage === undefined
    ? `<span class="hint">${server.agent.status === "online" ? "…" : ""}</span>`
    : barHtml("CPU", usage?.cpu ?? null) + barHtml("Mem", usage?.memory ?? null) + barHtml("Disk", usage?.disk ?? null);
  return `<tr data-server-id="${escape(server.id)}">`
    + `<td><a href="/console/servers/${encodeURIComponent(server.id)}" data-nav>${escape(server.name)}</a></td>`
    + `<td><span class="state state-${state}" data-state="${state}">${state}</span></td>`
    + `<td>${escape(server.agent.version ?? "–")}</td>`
    + `<td><time datetime="${escape(server.agent.lastSeenAt ?? "")}">${escape(ago(server.agent.lastSeenAt))}</time></td>`
    + `<td class="bars">${bars}</td></tr>`;
}

function row(server: any, usage: Usage | null | undefined): HTMLTableRowElement {
  const template = document.createElement("template");
  template.innerHTML = `<table><tbody>${rowHtml(server, usage)}</tbody></table>`;
  return template.content.querySelector("tr")!;
}

export async function page(root: HTMLElement, _params: string[], signal: AbortSignal): Promise<void> {
  const body = h("tbody", { id: "server-rows" });
  const summary = h("p", { class: "hint", id: "server-summary", role: "status" });
  const problem = h("div");
  root.append(
    h("div", { class: "title-row" }, h("h1", {}, "Servers"), h("button", { type: "button", id: "add-server", onclick: () => addServer(root) }, "Add server")),
    summary,
    h("p", {}, link("/default-access", "Default access domains")),
    problem,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-describedby": "server-summary", class: "servers-table" },
        h("thead", {}, h("tr", {}, ...["Name", "Agent", "Version", "Last seen", "Usage"].map((t) => h("th", { scope: "col" }, t)))),
        body,
      ),
    ),
  );
  const usage = new Map<string, Usage | null>();
  let round = 0;
  const refresh = async () => {
    const readBars = round++ % BARS_EVERY === 0;
    const servers: any[] = [];
    let cursor: string | null = null;
    do {
      const answer: any = await api("GET", "/servers" + query({ limit: 500, cursor }));
      servers.push(...answer.items);
      cursor = answer.nextCursor;
    } while (cursor && !signal.aborted);
    if (signal.aborted) return;
    const online = servers.filter((s) => s.agent.status === "online").length;
    summary.textContent = `${servers.length} servers, ${online} online`;
    const started = performance.now();
    body.innerHTML = servers.map((server) => rowHtml(server, usage.get(server.id))).join("");
    void body.offsetHeight; // style and layout of the new rows belong to the render
    performance.measure("berth:servers-render", { start: started, detail: servers.length });
    problem.replaceChildren();
    const sampled = servers.filter((s) => s.agent.status === "online" && (readBars || !usage.has(s.id))).slice(0, MAX_SAMPLED);
    await Promise.all(
      sampled.map(async (server) => {
        const figures = await latestUsage(server.id, signal).catch(() => null);
        usage.set(server.id, figures);
        const old = body.querySelector(`tr[data-server-id="${server.id}"]`);
        old?.replaceWith(row(server, figures));
      }),
    );
  };
  await refresh().catch((error) => problem.replaceChildren(errorBox(error)));
  const timer = setInterval(() => void refresh().catch((error) => problem.replaceChildren(errorBox(error))), REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}

function addServer(root: HTMLElement): void {
  if (root.querySelector("#add-server-form")) return;
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const out = h("div", { role: "status" });
  const form = h("form", { id: "add-server-form", class: "card" }, h("h2", {}, "Add a server"), h("label", { class: "field" }, h("span", {}, "Name"), name), h("button", { type: "submit" }, "Create"), out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("POST", "/servers", { name: name.value });
      const command = h("code", { id: "install-command" }, created.installCommand ?? "");
      out.replaceChildren(
        h("p", {}, "Run this once on the server (shown only now: it carries the join token):"),
        h("pre", {}, command),
        h("button", { type: "button", onclick: () => void navigator.clipboard.writeText(command.textContent ?? "") }, "Copy"),
      );
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  });
  root.querySelector(".title-row")!.after(form);
  name.focus();
}
