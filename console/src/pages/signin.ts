// Sign-in: paste an API token (the first admin's, or one created under API tokens). It is
// checked against the API before it is kept; see session.ts for where it lives.
import { api, ApiError } from "../api";
import { errorBox, field, h } from "../dom";
import { navigate } from "../nav";
import { session } from "../session";

export async function page(root: HTMLElement): Promise<void> {
  const params = new URLSearchParams(location.search);
  const input = h("input", { type: "password", name: "token", id: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const status = h("div", { id: "sign-in-status" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to Berth"),
    params.get("expired") ? h("p", { class: "notice", role: "status" }, "Your session ended; sign in again.") : null,
    field("API token", input),
    h("p", { class: "hint" }, "The first admin's token from bootstrap, or one created under API tokens. It stays in this tab only."),
    h("button", { type: "submit" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    session.signIn(input.value.trim());
    try {
      await api("GET", "/servers/count");
      const next = params.get("next");
      navigate(next && next.startsWith("/") && next !== "/sign-in" ? next : "/servers", true);
    } catch (error) {
      session.signOut();
      status.append(errorBox(error instanceof ApiError && error.status === 401 ? new Error("That token is not valid.") : error));
    }
  });
  root.append(form);
  input.focus();
}
