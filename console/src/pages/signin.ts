// Sign-in: e-mail and password, then the TOTP code when the account has two-factor login
// (POST /auth/login sets the session cookies; see session.ts). Secondary: paste an API token,
// checked against the API before it is kept in this tab.
import { api, ApiError } from "../api";
import { errorBox, field, h } from "../dom";
import { navigate } from "../nav";
import { session } from "../session";

function browserName(): string {
  const agent = navigator.userAgent;
  const name = /Firefox\//.test(agent) ? "Firefox" : /Edg\//.test(agent) ? "Edge" : /Chrom(e|ium)\//.test(agent) ? "Chromium" : /Safari\//.test(agent) ? "Safari" : "a browser";
  return `Console in ${name}`;
}

export async function page(root: HTMLElement): Promise<void> {
  const params = new URLSearchParams(location.search);
  const goOn = () => {
    const next = params.get("next");
    navigate(next && next.startsWith("/") && !next.startsWith("//") && next !== "/sign-in" ? next : "/servers", true);
  };
  const email = h("input", { type: "email", name: "email", id: "email", autocomplete: "username", required: true, maxlength: 320 });
  const password = h("input", { type: "password", name: "password", id: "password", autocomplete: "current-password", required: true, maxlength: 1024 });
  const code = h("input", { type: "text", name: "totpCode", id: "totp-code", autocomplete: "one-time-code", inputmode: "numeric", maxlength: 32, spellcheck: "false" });
  const codeField = field("Two-factor code", code);
  codeField.hidden = true;
  const status = h("div", { id: "sign-in-status" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to Berth"),
    params.get("expired") ? h("p", { class: "notice", role: "status" }, "Your session ended; sign in again.") : null,
    field("E-mail", email),
    field("Password", password),
    codeField,
    h("button", { type: "submit" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    // A token kept from before would win over the new cookie session.
    session.forget();
    const body: Record<string, string> = { email: email.value.trim(), password: password.value, clientKind: "web", displayName: browserName() };
    const typed = code.value.replace(/\s/g, "");
    if (!codeField.hidden && typed) body[/^\d+$/.test(typed) ? "totpCode" : "recoveryCode"] = typed;
    const response = await fetch("/auth/login", {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    }).catch((error) => error as Error);
    if (response instanceof Error) {
      status.append(errorBox(response));
      return;
    }
    if (response.status === 201) {
      password.value = "";
      goOn();
      return;
    }
    let envelope: any = null;
    try {
      envelope = await response.json();
    } catch {
      // not an error envelope: keep the status line
    }
    if (response.status === 401 && envelope?.error?.details?.secondFactorRequired) {
      codeField.hidden = false;
      code.required = true;
      code.focus();
      status.append(h("p", { class: "notice", role: "status" }, "Enter the code from your authenticator app (or a recovery code)."));
      return;
    }
    const retry = response.headers.get("Retry-After");
    const message =
      response.status === 429 ? `Too many attempts; try again in ${retry ?? "a few"} seconds.` : envelope?.error?.message ?? response.statusText;
    status.append(errorBox(new Error(message)));
  });

  // Secondary: an API token (automation's credential; handy before the account has a password).
  const token = h("input", { type: "password", name: "token", id: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const tokenStatus = h("div", { id: "token-sign-in-status" });
  const tokenForm = h(
    "form",
    { class: "card", "aria-labelledby": "token-sign-in-title", hidden: true },
    h("h2", { id: "token-sign-in-title" }, "Token sign-in"),
    field("API token", token),
    h("p", { class: "hint" }, "The first admin's token from bootstrap, or one created under API tokens. It stays in this tab only."),
    h("button", { type: "submit" }, "Sign in with token"),
    tokenStatus,
  );
  const toggle = h("button", { type: "button", class: "link", "aria-expanded": "false" }, "Use an API token instead");
  toggle.addEventListener("click", () => {
    tokenForm.hidden = !tokenForm.hidden;
    toggle.setAttribute("aria-expanded", String(!tokenForm.hidden));
    if (!tokenForm.hidden) token.focus();
  });
  tokenForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    tokenStatus.replaceChildren();
    session.useToken(token.value.trim());
    try {
      await api("GET", "/servers/count");
      goOn();
    } catch (error) {
      session.forget();
      tokenStatus.append(errorBox(error instanceof ApiError && error.status === 401 ? new Error("That token is not valid.") : error));
    }
  });
  root.append(form, h("p", {}, toggle), tokenForm);
  email.focus();
}
