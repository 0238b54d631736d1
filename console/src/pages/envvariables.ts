// The environment's own variables and secrets (`maskedVariables` of GET /environments/{id}): set
// one (a secret's value is never shown again, only replaced), delete one after a confirmation.
// Resources inherit them unless they set the same key themselves.
import { api } from "../api";
import { errorBox, h } from "../dom";

export function environmentVariables(environmentId: string, initial: any[]): HTMLElement {
  const rows = h("tbody", { id: "env-config-rows" });
  const status = h("div", { id: "env-config-status", role: "status" });
  const key = h("input", { name: "key", id: "env-config-key", required: true, pattern: "[A-Za-z_][A-Za-z0-9_]*", autocomplete: "off" });
  const value = h("input", { name: "value", id: "env-config-value", type: "password", autocomplete: "off" });
  const secret = h("input", { name: "secret", id: "env-config-secret", type: "checkbox", checked: true });
  const exposure = h("select", { name: "exposure", id: "env-config-exposure" },
    h("option", { value: "runtime" }, "runtime"), h("option", { value: "build-time" }, "build-time"));
  const form = h("form", { class: "filters", "aria-label": "Set an environment variable" },
    h("label", { class: "field" }, h("span", {}, "Key"), key),
    h("label", { class: "field" }, h("span", {}, "Value"), value),
    h("label", { class: "field" }, h("span", {}, "Exposure"), exposure),
    h("label", { class: "field inline" }, h("span", {}, "Secret"), secret),
    h("button", { type: "submit" }, "Set"));

  const draw = (entries: any[]) => {
    rows.replaceChildren(...entries.map((e) =>
      h("tr", { "data-key": e.key, "data-exposure": e.exposure },
        h("td", {}, h("code", {}, e.key)), h("td", {}, h("code", {}, e.value)), h("td", {}, e.exposure), h("td", {}, e.kind),
        h("td", {}, h("button", { type: "button", class: "small", "aria-label": `Delete ${e.key} (${e.exposure})`, onclick: () => void remove(e) }, "Delete")))));
    if (entries.length === 0) rows.append(h("tr", {}, h("td", { colspan: 5 }, "No variables on this environment.")));
  };
  const reload = async () => {
    const shown = await api("GET", `/environments/${environmentId}`);
    draw((shown.environment ?? shown).maskedVariables);
  };
  const remove = async (e: any) => {
    if (!confirm(`Delete ${e.key} (${e.exposure}) from the environment? Resources that inherit it lose it at their next deployment.`)) return;
    try {
      await api("DELETE", `/environments/${environmentId}/variables/${encodeURIComponent(e.key)}`, { exposure: e.exposure });
      status.replaceChildren(h("p", { class: "hint" }, `${e.key} deleted from the environment.`));
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
    await reload();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/environments/${environmentId}/variables`, { key: key.value, value: value.value, exposure: exposure.value, kind: secret.checked ? "secret" : "plain-config", isSecret: secret.checked });
      status.replaceChildren(h("p", { class: "hint" }, `${key.value} set on the environment.`));
      key.value = "";
      value.value = "";
      await reload();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  draw(initial);
  return h("section", { "aria-labelledby": "env-config-title" },
    h("h2", { id: "env-config-title" }, "Environment variables and secrets"),
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...["Key", "Value", "Exposure", "Kind", ""].map((t) => h("th", { scope: "col" }, t)))), rows)),
    form, status);
}
