// The signed-in account: change the password (other sessions end), enrol two-factor login (the
// secret and otpauth URI shown once, confirmed with a code; the recovery codes shown once) and
// turn it off with a code or a recovery code. Sessions have their own page.
import { api } from "../api";
import { errorBox, field, h, link } from "../dom";

interface Profile {
  email: string;
  displayName: string | null;
  passwordConfigured: boolean;
  twoFactorEnabled: boolean;
}

function secretInput(id: string, autocomplete: string): HTMLInputElement {
  return h("input", { id, type: "password", autocomplete, required: true, maxlength: 1024 });
}

function passwordForm(profile: Profile, reload: () => Promise<void>): HTMLElement {
  const current = secretInput("current-password", "current-password");
  const fresh = secretInput("new-password", "new-password");
  const status = h("div", { id: "password-status", role: "status" });
  const form = h(
    "form",
    { class: "card", "aria-label": profile.passwordConfigured ? "Change password" : "Set a password" },
    h("h2", {}, profile.passwordConfigured ? "Change password" : "Set a password"),
    h("p", { class: "hint" }, "Your other sessions are signed out; this one stays."),
    profile.passwordConfigured ? field("Current password", current) : null,
    field("New password", fresh),
    h("button", { type: "submit" }, profile.passwordConfigured ? "Change password" : "Set password"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { currentPassword: profile.passwordConfigured ? current.value : undefined, newPassword: fresh.value };
    try {
      // A wrong current password answers 401: shown here, the session is still good.
      const answer = await api("POST", "/account/password", body, true);
      current.value = "";
      fresh.value = "";
      const others = answer.revokedSessionIds.length;
      await reload();
      document.getElementById("password-status")?.replaceChildren(`Password changed; ${others} other session${others === 1 ? "" : "s"} signed out.`);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

function enrolCard(profile: Profile, reload: () => Promise<void>): HTMLElement {
  const status = h("div", { id: "two-factor-status", role: "status" });
  const steps = h("div", {});
  const start = h("button", { type: "button", disabled: !profile.passwordConfigured }, "Set up two-factor login");
  start.addEventListener("click", async () => {
    try {
      const enrolment = await api("POST", "/account/two-factor/enable");
      start.remove();
      steps.replaceChildren(confirmForm(enrolment.secret, enrolment.otpauthUri, status, reload));
      steps.querySelector<HTMLInputElement>("#totp-code")?.focus();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return h(
    "section",
    { class: "card", "aria-label": "Two-factor login" },
    h("h2", {}, "Two-factor login"),
    h("p", {}, "State: ", h("strong", { id: "two-factor-state" }, "off")),
    profile.passwordConfigured ? h("p", { class: "hint" }, "Sign-in will ask for a code from an authenticator app.") : h("p", { class: "hint" }, "Set a password first."),
    start,
    steps,
    status,
  );
}

function confirmForm(secret: string, uri: string, status: HTMLElement, reload: () => Promise<void>): HTMLElement {
  const code = h("input", { id: "totp-code", inputmode: "numeric", autocomplete: "one-time-code", required: true, minlength: 6, maxlength: 8 });
  const form = h(
    "form",
    { "aria-label": "Confirm two-factor login" },
    h("p", {}, "Add this account to your authenticator app (shown only now), then type the code it shows."),
    h("p", {}, "Secret: ", h("code", { id: "totp-secret" }, secret)),
    h("p", {}, "Or the otpauth URI: ", h("code", { id: "totp-uri", class: "wrap" }, uri), " ", h("button", { type: "button", class: "small", onclick: () => void navigator.clipboard.writeText(uri) }, "Copy")),
    field("Code from the app", code),
    h("button", { type: "submit" }, "Turn on"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", "/account/two-factor/confirm", { code: code.value.trim() });
      await reload();
      // The recovery codes exist only in this answer: shown once, after the page is redrawn.
      document.getElementById("two-factor-status")?.replaceChildren(
        h("p", {}, "Two-factor login is on. Keep these recovery codes somewhere safe; each works once and they are not shown again."),
        h("ul", { id: "recovery-codes" }, ...answer.recoveryCodes.map((c: string) => h("li", {}, h("code", {}, c)))),
      );
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

function disableCard(reload: () => Promise<void>): HTMLElement {
  const status = h("div", { id: "two-factor-status", role: "status" });
  const code = h("input", { id: "disable-code", autocomplete: "one-time-code", required: true, minlength: 6, maxlength: 40 });
  const form = h(
    "form",
    { "aria-label": "Turn off two-factor login" },
    field("Code or recovery code", code),
    h("button", { type: "submit" }, "Turn off"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      // A wrong code answers 401: shown here, the session is still good.
      await api("POST", "/account/two-factor/disable", { code: code.value.trim() }, true);
      await reload();
      document.getElementById("two-factor-status")?.replaceChildren("Two-factor login is off: sign-in asks for the password alone.");
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return h(
    "section",
    { class: "card", "aria-label": "Two-factor login" },
    h("h2", {}, "Two-factor login"),
    h("p", {}, "State: ", h("strong", { id: "two-factor-state" }, "on")),
    form,
    status,
  );
}

export async function page(root: HTMLElement): Promise<void> {
  const body = h("div", {});
  const reload = async () => {
    const profile: Profile = await api("GET", "/account/profile");
    body.replaceChildren(
      h("dl", { class: "facts" },
        h("dt", {}, "E-mail"), h("dd", { id: "account-email" }, profile.email),
        h("dt", {}, "Name"), h("dd", {}, profile.displayName ?? "–"),
      ),
      h("p", {}, "Where this account is signed in: ", link("/sessions", "Sessions"), "."),
      passwordForm(profile, reload),
      profile.twoFactorEnabled ? disableCard(reload) : enrolCard(profile, reload),
    );
  };
  root.append(h("h1", {}, "Account"), body);
  await reload();
}
