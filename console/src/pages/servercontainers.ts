// The server's running containers and their usage (GET /runtime-usage/inspect with the server as
// scope and its artifacts: the newest stored sample, never a live call to the agent): name, the
// resource and deployment it belongs to, CPU %, memory and writable-layer size; refreshed with the
// charts' rhythm.
import { api, query } from "../api";
import { errorBox, h, link } from "../dom";

const mib = (bytes: number | null) => (bytes === null || bytes === undefined ? "–" : `${(bytes / 1048576).toFixed(1)} MiB`);

export async function serverContainers(root: HTMLElement, serverId: string, signal: AbortSignal): Promise<void> {
  const box = h("div", { id: "containers" });
  const note = h("p", { class: "hint", id: "containers-note" });
  root.append(h("h2", {}, "Containers"), note, box);
  const draw = async () => {
    const usage = await api("GET", "/runtime-usage/inspect" + query({ scopeKind: "server", serverId, includeArtifacts: true }));
    const names = new Map<string, string>(usage.byResource.map((g: any) => [g.scope.resourceId, g.name ?? g.scope.resourceId]));
    const observed = usage.observedAt ? `sampled ${new Date(usage.observedAt).toLocaleTimeString()}` : "no sample yet";
    note.textContent = `${usage.artifacts.length} running, ${observed} (${usage.freshness}).`;
    const rows = usage.artifacts.map((a: any) =>
      h("tr", { "data-container": a.name, "data-resource-id": a.resourceId ?? "" },
        h("td", {}, h("code", {}, a.name)),
        h("td", {}, a.resourceId ? link(`/resources/${a.resourceId}`, names.get(a.resourceId) ?? a.resourceId) : h("span", { class: "hint" }, "not Berth's")),
        h("td", {}, a.deploymentId ? h("a", { href: `/console/deployments/${a.deploymentId}`, "data-nav": "" }, h("code", {}, a.deploymentId)) : "–"),
        h("td", { class: "num", "data-metric": "cpu" }, `${a.cpuPercent.toFixed(1)} %`),
        h("td", { class: "num", "data-metric": "memory" }, mib(a.memoryBytes)),
        h("td", { class: "num", "data-metric": "disk" }, mib(a.bytes)),
      ));
    box.replaceChildren(
      rows.length
        ? h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...["Container", "Resource", "Deployment", "CPU", "Memory", "Writable layer"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", { id: "container-rows" }, ...rows)))
        : h("p", { class: "hint" }, "No running containers in the newest sample."),
    );
  };
  await draw().catch((error) => box.replaceChildren(errorBox(error)));
  const timer = setInterval(() => void draw().catch(() => {}), 15000);
  signal.addEventListener("abort", () => clearInterval(timer));
}
