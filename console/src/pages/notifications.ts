// Notifications (what `berth notify add|list|deliveries|test` does): the organization's
// subscriptions with their masked target and secret, a form adding a signed webhook, a Slack or
// Discord preset or an e-mail relay (POST /notification-subscriptions), and per subscription a
// test send, enable/disable, delete and its delivery log (response codes, attempts).
import { api, query } from "../api";
import { h } from "../dom";
import { actionButton, actionForm, select, table, when } from "../widgets";

export async function page(root: HTMLElement): Promise<void> {
  const status = h("div", { id: "notifications-status", role: "status" });
  const list = h("div", { id: "subscriptions" });
  const log = h("section", { id: "deliveries", "aria-label": "Delivery log" });
  root.append(h("h1", {}, "Notifications"), status, list, log);

  const showDeliveries = async (sub: any): Promise<void> => {
    const answer = await api("GET", `/notification-subscriptions/${sub.id}/deliveries` + query({ limit: 50 }));
    log.replaceChildren(
      h("h2", {}, `Deliveries of ${sub.name}`),
      h("button", { type: "button", class: "small", onclick: () => void showDeliveries(sub).catch(() => undefined) }, "Refresh"),
      table("delivery-rows", ["Event", "Status", "Attempts", "Last response", "Last error", "Queued", "Finished"],
        answer.items.map((d: any) =>
          h("tr", { "data-delivery": d.id, "data-status": d.status },
            h("td", {}, d.eventType),
            h("td", { class: "delivery-status" }, d.status),
            h("td", { class: "delivery-attempts" }, String(d.attemptCount)),
            h("td", { class: "delivery-code" }, d.lastStatusCode === null ? "–" : String(d.lastStatusCode)),
            h("td", {}, d.lastError ?? (d.errorCode ?? "–")),
            h("td", {}, when(d.createdAt)),
            h("td", {}, when(d.finishedAt)))),
        "No deliveries yet."),
    );
  };

  let eventTypes: Record<string, string> = {};
  const load = async (): Promise<void> => {
    const answer = await api("GET", "/notification-subscriptions");
    eventTypes = answer.eventTypes;
    list.replaceChildren(table("subscription-rows", ["Name", "Channel", "Events", "Target", "Secret", "Enabled", ""],
      answer.items.map((s: any) => {
        const target = s.channel === "email" ? `${s.email.to.join(", ")} via ${s.email.smtp.host}:${s.email.smtp.port}` : s.url;
        const secret = s.channel === "email" ? s.email.smtp.password : s.signingSecret;
        const run = (what: () => Promise<void>) => async () => { await what(); await load(); };
        return h("tr", { "data-subscription": s.id },
          h("td", {}, s.name),
          h("td", {}, s.channel),
          h("td", {}, s.events.join(", ")),
          h("td", {}, h("code", {}, target ?? "–")),
          h("td", {}, secret ?? "–"),
          h("td", { class: "subscription-enabled" }, s.enabled ? "yes" : "no"),
          h("td", {},
            actionButton("Send test", status, run(async () => {
              await api("POST", `/notification-subscriptions/${s.id}/test`);
              status.replaceChildren(h("p", { class: "hint" }, `Test notification queued for ${s.name}.`));
              await showDeliveries(s);
            }), { name: `Send test to ${s.name}` }),
            actionButton("Deliveries", status, () => showDeliveries(s), { name: `Deliveries of ${s.name}` }),
            actionButton(s.enabled ? "Disable" : "Enable", status,
              run(async () => void (await api("POST", `/notification-subscriptions/${s.id}`, { enabled: !s.enabled }))),
              { name: `${s.enabled ? "Disable" : "Enable"} ${s.name}` }),
            actionButton("Delete", status, run(async () => {
              await api("DELETE", `/notification-subscriptions/${s.id}`);
              log.replaceChildren();
            }), { name: `Delete ${s.name}`, confirmText: `Delete ${s.name}? Queued deliveries are canceled.` })));
      }),
      "No subscriptions yet."));
  };
  await load().catch((error) => { status.replaceChildren(h("p", { class: "error", role: "alert" }, error.message)); });

  // The add form: which fields show follows the channel (a URL for webhook/Slack/Discord, a
  // signing secret for webhook only, recipients and a relay for e-mail).
  const name = h("input", { id: "sub-name", required: true, maxlength: 120 });
  const channel = select("sub-channel", [["webhook", "Signed webhook"], ["slack", "Slack"], ["discord", "Discord"], ["email", "E-mail"]]);
  const events = h("fieldset", { id: "sub-events" }, h("legend", {}, "Events"),
    ...Object.entries(eventTypes).map(([type, text]) =>
      h("label", { class: "field inline", title: text }, h("input", { type: "checkbox", value: type, name: "events" }), type)));
  const url = h("input", { id: "sub-url", type: "url", placeholder: "https://hooks.example.com/berth" });
  const secret = h("input", { id: "sub-secret", type: "password", minlength: 16, autocomplete: "new-password" });
  const to = h("input", { id: "sub-to", placeholder: "ops@example.com, oncall@example.com" });
  const from = h("input", { id: "sub-from", placeholder: "berth@example.com" });
  const smtpHost = h("input", { id: "sub-smtp-host" });
  const smtpPort = h("input", { id: "sub-smtp-port", type: "number", min: 1, max: 65535, value: 587 });
  const security = select("sub-smtp-security", [["starttls", "STARTTLS"], ["tls", "TLS"], ["none", "None"]]);
  const smtpUser = h("input", { id: "sub-smtp-user", autocomplete: "off" });
  const smtpPassword = h("input", { id: "sub-smtp-password", type: "password", autocomplete: "new-password" });
  const form = actionForm("New subscription", [
    ["Name", name], ["Channel", channel], ["URL", url], ["Signing secret (16+ characters)", secret],
    ["To (comma-separated)", to], ["From", from], ["SMTP host", smtpHost], ["SMTP port", smtpPort],
    ["SMTP security", security], ["SMTP username", smtpUser], ["SMTP password", smtpPassword],
  ], "Add subscription", async () => {
    const kind = channel.value;
    const body: Record<string, unknown> = {
      name: name.value,
      channel: kind,
      events: [...events.querySelectorAll<HTMLInputElement>("input:checked")].map((e) => e.value),
    };
    if (kind === "email") {
      body.email = {
        to: to.value.split(",").map((a) => a.trim()).filter(Boolean),
        fromAddress: from.value,
        smtp: { host: smtpHost.value, port: Number(smtpPort.value), security: security.value, username: smtpUser.value || null, password: smtpPassword.value || null },
      };
    } else {
      body.url = url.value || null;
      if (kind === "webhook") body.signingSecret = secret.value || null;
    }
    await api("POST", "/notification-subscriptions", body);
    form.reset();
    sync();
    await load();
    return `Subscribed ${body.name}.`;
  }, { id: "new-subscription" });
  channel.closest("label")!.after(events);
  const sync = (): void => {
    const kind = channel.value;
    const shown = (input: HTMLElement, on: boolean) => { (input.closest("label") as HTMLElement).hidden = !on; };
    shown(url, kind !== "email");
    shown(secret, kind === "webhook");
    for (const input of [to, from, smtpHost, smtpPort, security, smtpUser, smtpPassword]) shown(input, kind === "email");
  };
  channel.addEventListener("change", sync);
  sync();
  root.append(form);
}
