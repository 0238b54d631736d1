// A storage volume's runtime cleanup (on the storage page, like `berth volumes cleanup`): a
// dry run first listing the Docker volumes holding its data on its server, then the removal
// behind a confirmation (POST /storage-volumes/{id}/runtime-cleanup). Attached or in use: the
// API marks them blocked and removes nothing.
import { api } from "../api";
import { errorBox, h } from "../dom";

export function volumeCleanup(): { element: HTMLElement; run: (volume: any) => Promise<void> } {
  const element = h("div", { id: "volume-cleanup", role: "status" });
  const run = async (volume: any, dryRun = true): Promise<void> => {
    try {
      const answer = await api("POST", `/storage-volumes/${volume.id}/runtime-cleanup`, { dryRun });
      const sum = answer.summary;
      const where = `on ${answer.server.name}`;
      element.replaceChildren(h("div", { "data-volume": volume.name },
        h("p", { "data-dry-run": String(answer.dryRun) }, answer.dryRun
          ? `Dry run for ${volume.name} ${where}: ${sum.matchedCount} Docker volume(s) would be removed, ${sum.blockedCount} blocked; nothing removed.`
          : `Cleaned ${volume.name} ${where}: ${sum.cleanedCount} Docker volume(s) removed.`),
        answer.candidates.length
          ? h("ul", { id: "cleanup-candidates" }, ...answer.candidates.map((c: any) =>
              h("li", { "data-target": c.target, "data-action": c.action }, `${c.action}: ${c.target}${c.blockedReason ? ` (${c.blockedReason})` : ""}`)))
          : h("p", { class: "hint" }, "No Docker volume of it on this server."),
        ...answer.warnings.map((w: any) => h("p", { class: "hint" }, `Warning: ${w.message}`)),
        answer.dryRun && sum.matchedCount > 0
          ? h("button", {
              type: "button",
              id: "cleanup-confirm",
              onclick: () => {
                if (confirm(`Remove ${sum.matchedCount} Docker volume(s) of ${volume.name} ${where}? Their data is lost.`)) void run(volume, false);
              },
            }, `Remove these ${sum.matchedCount} Docker volume(s)`)
          : null,
      ));
    } catch (error) {
      element.replaceChildren(errorBox(error));
    }
  };
  return { element, run: (volume) => run(volume, true) };
}
