// The signed-in account's own sessions (GET /account/sessions) with revoke: revoking one ends its
// streams and terminals at once; revoking the one in use signs this tab out.
import { api, query } from "../api";
import { ago, errorBox, h } from "../dom";
import { navigate } from "../nav";
import { session } from "../session";

export async function page(root: HTMLElement): Promise<void> {
  const rows = h("tbody", { id: "session-rows" });
  const status = h("div", { id: "sessions-status", role: "status" });
  root.append(
    h("h1", {}, "Sessions"),
    h("p", { class: "hint" }, "Where this account is signed in. Revoke a session you do not recognise; its open log streams and terminals end at once."),
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...["Client", "Address", "Signed in", "Last active", "Expires", ""].map((t) => h("th", { scope: "col" }, t)))), rows)),
    status,
  );
  const load = async () => {
    const answer = await api("GET", "/account/sessions" + query({ limit: 250 }));
    rows.replaceChildren(
      ...answer.items.map((s: any) =>
        h("tr", { "data-session-id": s.sessionId, "data-current": s.current ? "true" : "false" },
          h("td", {}, s.displayName || s.clientKind, " ", h("span", { class: "hint" }, `(${s.clientKind})`), s.current ? h("strong", {}, " · this session") : null),
          h("td", {}, s.ipAddress ?? "–"),
          h("td", {}, new Date(s.createdAt).toLocaleString()),
          h("td", {}, ago(s.lastActiveAt)),
          h("td", {}, new Date(s.expiresAt).toLocaleString()),
          h("td", {}, h("button", { type: "button", class: "small", "aria-label": s.current ? "Revoke this session" : `Revoke session ${s.sessionId}`, onclick: async () => {
            if (!confirm(s.current ? "Revoke the session you are using? You will be signed out." : "Revoke this session? It is signed out at once.")) return;
            try {
              await api("POST", `/account/sessions/${s.sessionId}/revoke`);
            } catch (error) {
              status.replaceChildren(errorBox(error));
              return;
            }
            if (s.current) {
              session.forget();
              navigate("/sign-in", true);
              return;
            }
            status.replaceChildren(`Session ${s.sessionId} revoked.`);
            await load();
          } }, "Revoke")),
        ),
      ),
    );
    if (answer.items.length === 0) rows.append(h("tr", {}, h("td", { colspan: 6 }, "No sessions: signed in with an API token, which is not a session.")));
  };
  await load();
}
