// A resource's one-off command (what ``berth run RES -- CMD`` does): a form that starts it in a
// fresh container from the deployed image (or, exec mode, in the running container) and follows
// its output live to the exit code with the same follow view as a scheduled task's run.
import { api } from "./api";
import { h } from "./dom";
import { followRun, runView } from "./runfollow";
import { actionForm, select } from "./widgets";

export function oneOffSection(resourceId: string, signal: AbortSignal): HTMLElement {
  const command = h("input", { name: "commandIntent", id: "oneoff-command", required: true, placeholder: "sh -c '…'", autocomplete: "off" });
  const timeout = h("input", { name: "timeoutSeconds", id: "oneoff-timeout", type: "number", min: 1, max: 86400, value: 3600 });
  const mode = select("oneoff-mode", [["fresh-container", "a fresh container from the deployed image"], ["exec", "the running container (exec)"]]);
  const view = runView("oneoff");
  let following: AbortController | null = null;
  const form = actionForm("Run a command", [["Command", command], ["Timeout (seconds)", timeout], ["Run in", mode]], "Run", async () => {
    const accepted = await api("POST", `/resources/${resourceId}/one-off-runs`, {
      commandIntent: command.value,
      timeoutSeconds: Number(timeout.value),
      executionMode: mode.value,
    });
    // A newer run replaces the one being followed; leaving the page stops following.
    following?.abort();
    const mine = new AbortController();
    following = mine;
    signal.addEventListener("abort", () => mine.abort());
    void followRun(view, resourceId, accepted.run.runId, mine.signal);
    return `Run ${accepted.run.runId} started.`;
  }, { id: "oneoff-form" });
  return h("section", { "aria-labelledby": "oneoff-title" },
    h("h2", { id: "oneoff-title" }, "One-off command"),
    h("p", { class: "hint" }, "Runs once with the resource's variables and secrets; its output is kept with the scheduled task runs."),
    form, ...view.section);
}
