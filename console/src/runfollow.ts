// One task run's output followed live (scheduled *Run now* and one-off commands alike): its log
// stream from the first line until the stream's ``end`` frame, whose exit code and failure code
// are shown; a dropped link is resumed.
import { query, stream } from "./api";
import { errorBox, h } from "./dom";

export interface RunView {
  prefix: string;
  title: HTMLElement;
  followState: HTMLElement;
  logs: HTMLElement;
  result: HTMLElement;
}

// The elements a run's output is shown in; ``prefix`` keeps the ids of two views on one page apart.
export function runView(prefix: string): RunView & { section: HTMLElement[] } {
  const view = {
    prefix,
    title: h("h3", { id: `${prefix}-logs-title` }, "Output"),
    followState: h("p", { id: `${prefix}-follow-state`, role: "status" }),
    logs: h("pre", { id: `${prefix}-logs`, class: "run-logs", tabindex: 0, "aria-label": "Run output" }),
    result: h("p", { id: `${prefix}-result` }),
  };
  return { ...view, section: [view.title, view.followState, view.logs, view.result] };
}

// Follows one run; answers its end frame, or null when the follow was aborted or failed.
export async function followRun(view: RunView, resourceId: string, runId: string, signal: AbortSignal): Promise<any> {
  const { title, followState, logs, result } = view;
  title.textContent = `Output of run ${runId}`;
  logs.replaceChildren();
  result.replaceChildren();
  delete result.dataset.exitCode;
  delete result.dataset.status;
  followState.textContent = "Following…";
  followState.dataset.state = "open";
  let end: any = null;
  const path = `/scheduled-task-runs/${runId}/logs/stream` + query({ resourceId });
  try {
    await stream(path, ({ data }) => {
      logs.append(h("span", { class: `log-${data.stream}`, "data-sequence": data.sequence }, data.message + "\n"));
      logs.scrollTop = logs.scrollHeight;
    }, signal, (state) => {
      if (state === "reconnecting") followState.textContent = "Connection lost; resuming…";
      else if (state === "open") followState.textContent = "Following…";
    }, (frame) => {
      end = frame; // the run is over: keep its result, do not resume
      return false;
    });
  } catch (error) {
    if (!signal.aborted) result.replaceChildren(errorBox(error));
    followState.textContent = "";
    return null;
  }
  if (signal.aborted || end === null) return null;
  followState.textContent = "Run ended.";
  followState.dataset.state = "ended";
  if (!logs.childNodes.length) logs.append("(no output)");
  result.dataset.status = end.status;
  const hasCode = end.exitCode !== null && end.exitCode !== undefined;
  if (hasCode) result.dataset.exitCode = String(end.exitCode);
  result.replaceChildren(h("span", {},
    h("span", { class: `state state-${end.status}` }, end.status),
    hasCode ? ` · exit code ${end.exitCode}` : "",
    end.failureCode ? [" · ", h("code", { id: `${view.prefix}-failure-code` }, end.failureCode)] : "",
    end.failureSummary ? ` · ${end.failureSummary}` : "",
  ));
  return end;
}
