// One server: agent state and facts, capacity, and a uPlot chart of CPU and memory from the
// monitoring rollups (minute / five-minute / hour buckets) with deployment markers.
import uPlot from "uplot";
import { api, ApiError, query } from "../api";
import { ago, bar, errorBox, field, h, link } from "../dom";
import { serverContainers } from "./servercontainers";

const WINDOWS: [string, string][] = [
  ["minute", "Last hour (minutes)"],
  ["five-minute", "Last day (5 minutes)"],
  ["hour", "Last week (hours)"],
];

const ratio = (used?: number | null, total?: number | null) => (used != null && total ? (100 * used) / total : null);

export function chartData(answer: any): { data: uPlot.AlignedData; network: uPlot.AlignedData; markers: number[] } {
  const signal = (name: string) => new Map<string, any>(
    (answer.series.find((s: any) => s.signal === name)?.points ?? []).map((p: any) => [p.from, p]),
  );
  const cpu = answer.series.find((s: any) => s.signal === "cpu")?.points ?? [];
  const [memory, disk, net] = [signal("memory"), signal("disk"), signal("network")];
  const times: number[] = [];
  const busy: (number | null)[] = [];
  const used: (number | null)[] = [];
  const diskUsed: (number | null)[] = [];
  const rx: (number | null)[] = [];
  const tx: (number | null)[] = [];
  for (const point of cpu) {
    times.push(Date.parse(point.from) / 1000);
    busy.push(point.totals.cpu?.busyPercent ?? null);
    const m = memory.get(point.from)?.totals.memory;
    used.push(ratio(m?.usedBytes, m?.totalBytes));
    const d = disk.get(point.from)?.totals.disk;
    diskUsed.push(ratio(d?.usedBytes, d?.totalBytes));
    // Bytes moved in the bucket, as a rate over its length.
    const n = net.get(point.from);
    const seconds = n ? (Date.parse(n.to) - Date.parse(n.from)) / 1000 : 0;
    rx.push(n?.totals.network && seconds ? n.totals.network.rxBytes / seconds : null);
    tx.push(n?.totals.network && seconds ? n.totals.network.txBytes / seconds : null);
  }
  const markers = (answer.deploymentMarkers ?? []).map((m: any) => Date.parse(m.observedAt) / 1000).filter((t: number) => !Number.isNaN(t));
  return { data: [times, busy, used, diskUsed], network: [times, rx, tx], markers };
}

function markerPlugin(markers: number[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (plot: uPlot) => {
        const ctx = plot.ctx;
        ctx.save();
        ctx.strokeStyle = "#b45309";
        ctx.setLineDash([4, 4]);
        for (const at of markers) {
          const x = plot.valToPos(at, "x", true);
          if (x < plot.bbox.left || x > plot.bbox.left + plot.bbox.width) continue;
          ctx.beginPath();
          ctx.moveTo(x, plot.bbox.top);
          ctx.lineTo(x, plot.bbox.top + plot.bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      },
    },
  };
}

export async function page(root: HTMLElement, [serverId]: string[], signal: AbortSignal): Promise<void> {
  const shown = await api("GET", `/servers/${serverId}`);
  const server = shown.server;
  const facts = server.agent.facts ?? {};
  root.append(
    h("p", { class: "crumbs" }, link("/servers", "Servers"), " / ", server.name),
    h("h1", {}, server.name),
    h("p", {}, link(`/default-access?serverId=${server.id}`, "Default access domain of this server")),
    h(
      "dl",
      { class: "facts" },
      ...[
        ["Agent", h("span", { class: `state state-${server.agent.status}`, "data-state": server.agent.status }, server.agent.status)],
        ["Version", server.agent.version ?? "–"],
        ["Last seen", ago(server.agent.lastSeenAt)],
        ["Host", facts.hostname ?? "–"],
        ["OS", facts.os ?? "–"],
        ["CPUs", facts.cpuCount ?? "–"],
        ["Docker", facts.dockerVersion ?? "–"],
      ].flatMap(([k, v]) => [h("dt", {}, k as string), h("dd", {}, v as any)]),
    ),
  );
  const picker = h("select", { id: "window", name: "window" }, ...WINDOWS.map(([value, label]) => h("option", { value }, label)));
  const chart = h("div", { id: "usage-chart", class: "chart", role: "img", "aria-label": "CPU busy %, memory used % and disk used % over time" });
  const netChart = h("div", { id: "network-chart", class: "chart", role: "img", "aria-label": "Network received and sent, bytes per second, over time" });
  const note = h("p", { class: "hint", role: "status" });
  root.append(h("h2", {}, "Usage"), h("label", { class: "field inline" }, h("span", {}, "Window"), picker), chart, h("h3", {}, "Network"), netChart, note);
  let plot: uPlot | null = null;
  let netPlot: uPlot | null = null;
  const draw = async () => {
    const answer = await api("GET", "/runtime-monitoring/rollup" + query({ "scope.kind": "server", "scope.serverId": serverId, bucket: picker.value }));
    if (signal.aborted) return;
    const { data, network, markers } = chartData(answer);
    const width = Math.max(280, Math.min(chart.clientWidth || 800, 1100));
    plot?.destroy();
    const started = performance.now();
    plot = new uPlot(
      {
        width,
        height: 260,
        scales: { y: { range: [0, 100] } },
        series: [
          {},
          { label: "CPU busy %", stroke: "#2563eb", width: 2 },
          { label: "Memory used %", stroke: "#16a34a", width: 2 },
          { label: "Disk used %", stroke: "#9333ea", width: 2 },
        ],
        axes: [{}, { label: "%" }],
        plugins: [markerPlugin(markers)],
        // uPlot draws after a microtask: the first draw ends what bench/console.py measures.
        hooks: { draw: [() => performance.measure("berth:chart-draw", { start: started, detail: data[0].length })] },
      },
      data,
      chart,
    );
    chart.dataset.points = String(data[0].length);
    netPlot?.destroy();
    netPlot = new uPlot(
      {
        width,
        height: 180,
        series: [{}, { label: "Received B/s", stroke: "#0891b2", width: 2 }, { label: "Sent B/s", stroke: "#db2777", width: 2 }],
        axes: [{}, { label: "B/s", size: 70 }],
        plugins: [markerPlugin(markers)],
      },
      network,
      netChart,
    );
    note.textContent = data[0].length ? `${data[0].length} points, ${answer.freshness}` : "No samples in this window yet.";
  };
  picker.addEventListener("change", () => void draw().catch((e) => note.replaceChildren(errorBox(e))));
  await draw().catch((e) => note.replaceChildren(errorBox(e)));
  const timer = setInterval(() => void draw().catch(() => {}), 15000);
  signal.addEventListener("abort", () => {
    clearInterval(timer);
    plot?.destroy();
    netPlot?.destroy();
  });

  await serverContainers(root, serverId, signal);
  await thresholds(root, serverId);

  const capacity = h("div", { id: "capacity" });
  root.append(h("h2", {}, "Capacity"), capacity);
  if (server.agent.status !== "online") {
    capacity.append(h("p", { class: "hint" }, "The agent is not connected: capacity is read live from it."));
    return;
  }
  const pruneOut = h("div", { id: "prune", role: "status" });
  const prune = async (dryRun: boolean) => {
    try {
      const answer = await api("POST", `/servers/${serverId}/capacity/prune`, { dryRun });
      const sum = answer.summary;
      const mib = (sum.reclaimedBytes / 2 ** 20).toFixed(1);
      pruneOut.replaceChildren(h("div", {},
        h("p", { "data-dry-run": String(dryRun) }, dryRun
          ? `Dry run: ${sum.matchedCount} of ${sum.inspectedCount} items would go, ${mib} MiB (${answer.protectedDeploymentCount} deployments kept for rollback).`
          : `Pruned ${sum.prunedCount} items, ${mib} MiB reclaimed.`),
        answer.candidates.length
          ? h("ul", {}, ...answer.candidates.slice(0, 50).map((c: any) => h("li", {}, `${c.action}: ${c.category} ${c.target} (${(c.size / 2 ** 20).toFixed(1)} MiB)${c.skippedReason ? ` – ${c.skippedReason}` : ""}`)))
          : null,
        dryRun && sum.matchedCount > 0
          ? h("button", { type: "button", id: "prune-confirm", onclick: () => void prune(false) }, `Prune these ${sum.matchedCount} items`)
          : null,
      ));
    } catch (error) {
      pruneOut.replaceChildren(errorBox(error));
    }
  };
  try {
    const cap = await api("GET", `/servers/${serverId}/capacity`);
    const root_disk = cap.disk?.[0];
    capacity.append(
      bar("Memory", cap.memory?.usePercent ?? null),
      bar("Disk /", root_disk?.usePercent ?? null),
      h("p", { class: "hint" }, `Load ${cap.cpu?.loadAverage1m ?? "–"} (1 min) on ${cap.cpu?.logicalCores ?? "?"} cores`),
      h("button", { type: "button", id: "prune-dry-run", onclick: () => void prune(true) }, "Prune leftovers (dry run first)"),
      pruneOut,
    );
  } catch (error) {
    capacity.append(errorBox(error));
  }
}

// Thresholds of this server: the policy's rules and their current state, and a form that sets
// CPU busy %, memory used % and disk used % rules (the API replaces the server's whole policy
// with what is sent, so rules on other metrics, the webhook and on/off are sent back as they are).
const MANAGED: [string, string, string, number, number][] = [
  ["cpu", "busyPercent", "CPU busy %", 80, 95],
  ["memory", "usedPercent", "Memory used %", 85, 95],
  ["disk", "usedPercent", "Disk used %", 80, 90],
];

async function thresholds(root: HTMLElement, serverId: string): Promise<void> {
  const box = h("div", { id: "thresholds" });
  root.append(h("h2", {}, "Thresholds"), box);
  const rows = MANAGED.map(([signal, metric, label, warn, crit]) => ({
    signal, metric, label,
    on: h("input", { type: "checkbox", id: `threshold-${signal}-on`, checked: signal === "cpu" }),
    warning: h("input", { type: "number", id: `threshold-${signal}-warning`, min: 0, max: 100, step: "any", value: warn }),
    critical: h("input", { type: "number", id: `threshold-${signal}-critical`, min: 0, max: 100, step: "any", value: crit }),
  }));
  const out = h("div", { role: "status" });
  const form = h("form", { class: "card", "aria-label": "Threshold rules" },
    ...rows.map((r) => h("div", { class: "filters" },
      h("label", { class: "field inline" }, h("span", {}, `${r.label} rule`), r.on),
      field(`${r.label} warning`, r.warning), field(`${r.label} critical`, r.critical))),
    h("button", { type: "submit" }, "Save thresholds"), out);
  let current: any = null;
  const show = async () => {
    try {
      const answer = await api("GET", "/runtime-monitoring/thresholds" + query({ "scope.kind": "server", "scope.serverId": serverId }));
      current = answer.policy;
      for (const r of rows) {
        const rule = current.rules.find((x: any) => x.signal === r.signal && x.metric === r.metric);
        r.on.checked = Boolean(rule);
        if (rule) {
          r.warning.value = String(rule.warning);
          r.critical.value = String(rule.critical);
        }
      }
      const crossed = new Map<string, any>(answer.evaluation.crossed.map((c: any) => [c.ruleId, c]));
      box.replaceChildren(
        h("p", {}, "State: ", h("strong", { id: "threshold-state", class: `state state-${answer.evaluation.state}` }, answer.evaluation.state),
          answer.evaluation.evaluatedAt ? ` (evaluated ${new Date(answer.evaluation.evaluatedAt).toLocaleTimeString()})` : " (no sample yet)"),
        h("ul", { id: "threshold-rules" }, ...answer.policy.rules.map((r: any) => {
          const c = crossed.get(r.ruleId);
          return h("li", { "data-rule": `${r.signal}.${r.metric}`, "data-severity": c ? c.severity : "ok" }, `${r.signal}.${r.metric}: warning ${r.warning}, critical ${r.critical}`, c ? h("strong", {}, ` – ${c.severity} (${c.observedValue})`) : "");
        })),
        form,
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) box.replaceChildren(h("p", { class: "hint" }, "No threshold policy for this server."), form);
      else box.replaceChildren(errorBox(error));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren();
    const managed = new Set(rows.map((r) => `${r.signal}.${r.metric}`));
    const kept = (current?.rules ?? []).filter((x: any) => !managed.has(`${x.signal}.${x.metric}`));
    const chosen = rows.filter((r) => r.on.checked).map((r) => {
      const before = current?.rules.find((x: any) => x.signal === r.signal && x.metric === r.metric);
      return { ...(before ? { ruleId: before.ruleId, comparator: before.comparator } : {}), signal: r.signal, metric: r.metric, warning: Number(r.warning.value), critical: Number(r.critical.value) };
    });
    try {
      await api("POST", "/runtime-monitoring/thresholds", {
        scope: { kind: "server", serverId },
        rules: [...kept, ...chosen],
        ...(current ? { enabled: current.enabled } : {}),
        ...(current?.webhookUrl ? { webhookUrl: current.webhookUrl } : {}),
      });
      await show();
      out.replaceChildren("Thresholds saved.");
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  });
  await show();
}
