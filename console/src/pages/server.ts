// One server: agent state and facts, capacity, and a uPlot chart of CPU and memory from the
// monitoring rollups (minute / five-minute / hour buckets) with deployment markers.
import uPlot from "uplot";
import { api, query } from "../api";
import { ago, bar, errorBox, h, link } from "../dom";

const WINDOWS: [string, string][] = [
  ["minute", "Last hour (minutes)"],
  ["five-minute", "Last day (5 minutes)"],
  ["hour", "Last week (hours)"],
];

export function chartData(answer: any): { data: uPlot.AlignedData; markers: number[] } {
  const cpu = answer.series.find((s: any) => s.signal === "cpu")?.points ?? [];
  const memory = new Map<string, any>(
    (answer.series.find((s: any) => s.signal === "memory")?.points ?? []).map((p: any) => [p.from, p.totals.memory]),
  );
  const times: number[] = [];
  const busy: (number | null)[] = [];
  const used: (number | null)[] = [];
  for (const point of cpu) {
    times.push(Date.parse(point.from) / 1000);
    busy.push(point.totals.cpu?.busyPercent ?? null);
    const m = memory.get(point.from);
    used.push(m && m.totalBytes ? (100 * m.usedBytes) / m.totalBytes : null);
  }
  const markers = (answer.deploymentMarkers ?? []).map((m: any) => Date.parse(m.observedAt) / 1000).filter((t: number) => !Number.isNaN(t));
  return { data: [times, busy, used], markers };
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
  const chart = h("div", { id: "usage-chart", class: "chart", role: "img", "aria-label": "CPU busy % and memory used % over time" });
  const note = h("p", { class: "hint", role: "status" });
  root.append(h("h2", {}, "Usage"), h("label", { class: "field inline" }, h("span", {}, "Window"), picker), chart, note);
  let plot: uPlot | null = null;
  const draw = async () => {
    const answer = await api("GET", "/runtime-monitoring/rollup" + query({ "scope.kind": "server", "scope.serverId": serverId, bucket: picker.value }));
    if (signal.aborted) return;
    const { data, markers } = chartData(answer);
    const width = Math.max(280, Math.min(chart.clientWidth || 800, 1100));
    plot?.destroy();
    const started = performance.now();
    plot = new uPlot(
      {
        width,
        height: 260,
        scales: { y: { range: [0, 100] } },
        series: [{}, { label: "CPU busy %", stroke: "#2563eb", width: 2 }, { label: "Memory used %", stroke: "#16a34a", width: 2 }],
        axes: [{}, { label: "%" }],
        plugins: [markerPlugin(markers)],
        // uPlot draws after a microtask: the first draw ends what bench/console.py measures.
        hooks: { draw: [() => performance.measure("berth:chart-draw", { start: started, detail: data[0].length })] },
      },
      data,
      chart,
    );
    chart.dataset.points = String(data[0].length);
    note.textContent = data[0].length ? `${data[0].length} points, ${answer.freshness}` : "No samples in this window yet.";
  };
  picker.addEventListener("change", () => void draw().catch((e) => note.replaceChildren(errorBox(e))));
  await draw().catch((e) => note.replaceChildren(errorBox(e)));
  const timer = setInterval(() => void draw().catch(() => {}), 15000);
  signal.addEventListener("abort", () => {
    clearInterval(timer);
    plot?.destroy();
  });

  const capacity = h("div", { id: "capacity" });
  root.append(h("h2", {}, "Capacity"), capacity);
  if (server.agent.status !== "online") {
    capacity.append(h("p", { class: "hint" }, "The agent is not connected: capacity is read live from it."));
    return;
  }
  try {
    const cap = await api("GET", `/servers/${serverId}/capacity`);
    const root_disk = cap.disk?.[0];
    capacity.append(
      bar("Memory", cap.memory?.usePercent ?? null),
      bar("Disk /", root_disk?.usePercent ?? null),
      h("p", { class: "hint" }, `Load ${cap.cpu?.loadAverage1m ?? "–"} (1 min) on ${cap.cpu?.logicalCores ?? "?"} cores`),
    );
  } catch (error) {
    capacity.append(errorBox(error));
  }
}
