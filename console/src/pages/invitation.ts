// Accepting an invitation: paste the secret, then either create the account (name and password;
// the console signs in with them right away) or, signed in already, join with this account.
import { api } from "../api";
import { errorBox, field, h, link } from "../dom";
import { navigate } from "../nav";
import { forgetContext } from "../org";
import { session } from "../session";

export async function page(root: HTMLElement): Promise<void> {
  const signedIn = session.signedIn();
  const secret = h("input", { name: "token", id: "invitation-token", type: "password", required: true, autocomplete: "off", placeholder: "berth_inv_…" });
  // An invitation link carries the secret in its fragment (a browser never sends that to a
  // server): it goes into the form and out of the address bar at once.
  const fromLink = decodeURIComponent(location.hash.slice(1));
  if (fromLink.startsWith("berth_inv_")) {
    secret.value = fromLink;
    history.replaceState(null, "", location.pathname + location.search);
  }
  const displayName = h("input", { name: "displayName", id: "invitation-name", maxlength: 200, autocomplete: "name" });
  const password = h("input", { name: "password", id: "invitation-password", type: "password", autocomplete: "new-password", maxlength: 256 });
  const status = h("div", { role: "status", id: "accept-status" });
  const newAccount = h("button", { type: "submit", name: "new" }, "Create account and join");
  const withSession = h("button", { type: "button", id: "accept-with-session" }, "Join with this account");
  const form = h(
    "form",
    { class: "card", "aria-label": "Accept an invitation" },
    h("h1", {}, "Accept an invitation"),
    h("p", { class: "hint" }, "Opened from an invitation link, the secret is filled in; otherwise paste the one you were given (it starts with berth_inv_)."),
    field("Invitation secret", secret),
    h("fieldset", {},
      h("legend", {}, "A new account"),
      field("Your name", displayName),
      field("Password", password),
      newAccount),
    signedIn
      ? h("fieldset", {}, h("legend", {}, "Already have an account?"), h("p", { class: "hint" }, "You are signed in: join with this account instead."), withSession)
      : h("p", { class: "hint" }, "Already have an account? ", link("/sign-in?next=%2Faccept-invitation", "Sign in"), " first, then come back here."),
    status,
  );
  root.append(form);

  const done = (organizationId: string) => {
    forgetContext();
    status.replaceChildren(h("p", { class: "hint" }, `You joined ${organizationId}.`));
    navigate("/organization");
  };

  // A new account: sent without this tab's credentials (with them, the coordinator would accept
  // for the signed-in account instead), then signed in with the new e-mail and password.
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    newAccount.disabled = true;
    try {
      const response = await fetch("/organization-invitations/accept", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ token: secret.value.trim(), displayName: displayName.value, password: password.value }),
        credentials: "omit",
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error(body?.error?.message ?? response.statusText);
      session.forget();
      const login = await fetch("/auth/login", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ email: body.member.email, password: password.value, clientKind: "web", displayName: "console" }),
        credentials: "same-origin",
      });
      password.value = "";
      secret.value = "";
      if (login.status !== 201) {
        status.replaceChildren(h("p", {}, "Your account was created. "), link("/sign-in", "Sign in"));
        return;
      }
      done(body.organizationId);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      newAccount.disabled = false;
    }
  });

  withSession.addEventListener("click", async () => {
    status.replaceChildren();
    try {
      const answer = await api("POST", "/organization-invitations/accept", { token: secret.value.trim() });
      secret.value = "";
      // Act in the organization just joined (a token cannot switch: it stays where it is).
      await api("POST", "/organizations/current-context/switch", { organizationId: answer.organizationId }).catch(() => undefined);
      done(answer.organizationId);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
}
