// The audit log: oldest first (as the API pages it), filtered by event type / aggregate, paged with the cursor.
import { api, query } from "../api";
import { errorBox, field, h } from "../dom";

export async function page(root: HTMLElement): Promise<void> {
  const eventType = h("input", { name: "eventType", id: "audit-event-type", placeholder: "e.g. deployment.created" });
  const aggregateId = h("input", { name: "aggregateId", id: "audit-aggregate", placeholder: "an id" });
  const rows = h("tbody", { id: "audit-rows" });
  const more = h("button", { type: "button", id: "audit-more", hidden: true }, "Older events");
  const out = h("div");
  const form = h("form", { class: "filters", role: "search" }, field("Event type", eventType), field("Aggregate id", aggregateId), h("button", { type: "submit" }, "Filter"));
  root.append(
    h("h1", {}, "Audit log"),
    form,
    out,
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...["When", "Event", "Aggregate", "Actor", "Request"].map((t) => h("th", { scope: "col" }, t)))), rows)),
    more,
  );
  let cursor: string | null = null;
  const load = async (reset: boolean) => {
    if (reset) {
      cursor = null;
      rows.replaceChildren();
    }
    try {
      const answer: any = await api("GET", "/audit-events" + query({ limit: 50, cursor, eventType: eventType.value, aggregateId: aggregateId.value }));
      for (const item of answer.items) {
        rows.append(h("tr", {},
          h("td", {}, h("time", { datetime: item.occurredAt }, new Date(item.occurredAt).toLocaleString())),
          h("td", {}, item.eventType),
          h("td", {}, `${item.aggregateType} ${item.aggregateId}`),
          h("td", {}, `${item.actorKind} ${item.actorId ?? ""}`),
          h("td", {}, h("code", {}, item.requestId ?? ""))));
      }
      cursor = answer.nextCursor ?? null;
      more.hidden = !cursor;
      out.replaceChildren();
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void load(true);
  });
  more.addEventListener("click", () => void load(false));
  await load(true);
}
