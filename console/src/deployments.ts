// A deployment's live timeline, shared by the resource page and the deployment's own page: its
// events stream (GET /deployments/{id}/events/stream, from the first event) drawn as a list
// until a final status.
import { stream } from "./api";
import { errorBox, h } from "./dom";

export const TERMINAL = new Set(["succeeded", "failed", "canceled", "rolled-back"]);

// Follows until a final status (or ``signal`` aborts); answers the last status seen. ``onEvent``
// runs after each event is drawn (the deployment page re-reads its log then).
export async function followTimeline(deploymentId: string, timeline: HTMLElement, status: HTMLElement, signal: AbortSignal, onEvent: () => void = () => {}): Promise<string | null> {
  status.textContent = `Deployment ${deploymentId}: starting`;
  status.dataset.status = "created";
  let last: string | null = null;
  const ended = new AbortController();
  signal.addEventListener("abort", () => ended.abort());
  await stream(`/deployments/${deploymentId}/events/stream`, ({ data }) => {
    const event = data.event;
    if (!event) return;
    timeline.append(h("li", { "data-status": event.status, "data-phase": event.phase }, h("time", { datetime: event.emittedAt }, new Date(event.emittedAt).toLocaleTimeString()), ` ${event.phase} · ${event.status} · ${event.summary ?? event.eventType}`));
    status.textContent = `Deployment ${deploymentId}: ${event.status}`;
    status.dataset.status = event.status;
    last = event.status;
    onEvent();
    if (TERMINAL.has(event.status)) ended.abort();
  }, ended.signal).catch((error) => status.append(errorBox(error)));
  return last;
}
