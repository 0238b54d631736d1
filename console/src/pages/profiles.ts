// A resource's runtime, network, access and health profiles: shown with their defaults filled in, changed
// through the API's configure routes (each replaces its profile, so every field is sent); a field
// the API refuses shows its problem beside it. A viewer sees them read-only; a control used anyway
// (the role shrank after the page was drawn) shows the API's 403.
import { api, ApiError } from "../api";
import { errorBox, h, link } from "../dom";
import { currentContext } from "../org";

type Control = HTMLInputElement | HTMLSelectElement;

// One field: its dotted name in the profile's body (``http.path``), its control and its reading
// (``undefined`` leaves it out, so the API's default applies).
interface Field {
  name: string;
  label: string;
  control: Control;
  read: () => unknown;
}

const MIB = 1024 * 1024;

function text(name: string, label: string, value: string | null | undefined): Field {
  const control = h("input", { name, value: value ?? "", autocomplete: "off" });
  return { name, label, control, read: () => control.value.trim() || undefined };
}

// Numbers are checked by the API only (one set of rules); text that is no number is sent as it
// is, so the API's problem names the field.
function number(name: string, label: string, value: number | null | undefined, scale = 1): Field {
  const shown = value === null || value === undefined ? "" : String(value / scale);
  const control = h("input", { name, type: "number", step: "any", inputmode: "decimal", value: shown });
  return {
    name,
    label,
    control,
    read: () => {
      const raw = control.value.trim();
      if (raw === "") return undefined;
      const parsed = Number(raw);
      return Number.isNaN(parsed) ? raw : Math.round(parsed * scale * 1000) / 1000;
    },
  };
}

function choice(name: string, label: string, options: string[], value: string | null | undefined): Field {
  const control = h("select", { name }, ...options.map((o) => h("option", { value: o, selected: o === value }, o)));
  return { name, label, control, read: () => control.value };
}

function check(name: string, label: string, value: boolean | null | undefined): Field {
  const control = h("input", { name, type: "checkbox", checked: value !== false });
  return { name, label, control, read: () => control.checked };
}

// The fields' readings as the body's nested object (``http.path`` -> {http: {path}}).
function nest(fields: Field[]): Record<string, unknown> {
  const body: Record<string, any> = {};
  for (const field of fields) {
    const value = field.read();
    if (value === undefined) continue;
    const parts = field.name.split(".");
    let at = body;
    for (const part of parts.slice(0, -1)) at = at[part] ??= {};
    at[parts[parts.length - 1]] = value;
  }
  return body;
}

// A form of one profile. ``save`` gets the nested readings; a refused field's problem (the
// API names it ``<bodyKey>.<field>``) goes beside that field, the rest into the form's status.
function profileForm(
  title: string,
  fields: Field[],
  readOnly: boolean,
  save: (values: Record<string, unknown>) => Promise<string>,
  extra: HTMLElement[] = [],
): HTMLFormElement {
  const out = h("div", { role: "status", class: "form-status" });
  const slots = new Map<string, HTMLElement>();
  const rows = fields.map((field) => {
    const slot = h("span", { class: "error field-problem", id: `${title.replace(/\W+/g, "-")}-${field.name}-problem`.toLowerCase() });
    slots.set(field.name, slot);
    field.control.setAttribute("aria-describedby", slot.id);
    const inline = field.control instanceof HTMLInputElement && field.control.type === "checkbox";
    return h("label", { class: inline ? "field inline" : "field", "data-field": field.name }, h("span", {}, field.label), field.control, slot);
  });
  const fieldset = h("fieldset", { disabled: readOnly }, ...rows, h("div", { class: "actions" }, h("button", { type: "submit" }, "Save"), ...extra));
  const form = h("form", { class: "card", "aria-label": title }, h("h2", {}, title), fieldset, out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren();
    for (const [name, slot] of slots) {
      slot.replaceChildren();
      fields.find((f) => f.name === name)!.control.removeAttribute("aria-invalid");
    }
    try {
      out.replaceChildren(h("p", { class: "hint" }, await save(nest(fields))));
    } catch (error) {
      out.replaceChildren(errorBox(error));
      if (!(error instanceof ApiError)) return;
      for (const problem of error.problems) {
        const name = (problem.field ?? "").split(".").slice(1).join(".");
        const slot = slots.get(name);
        if (!slot) continue;
        slot.textContent = problem.message;
        fields.find((f) => f.name === name)!.control.setAttribute("aria-invalid", "true");
      }
    }
  });
  return form;
}

export async function page(root: HTMLElement, [resourceId]: string[]): Promise<void> {
  const [shown, context] = await Promise.all([
    api("GET", `/resources/${resourceId}`),
    currentContext().catch(() => null),
  ]);
  const role = context?.currentOrganization.role ?? null;
  const readOnly = role === "viewer";
  const path = `/resources/${resourceId}`;
  const applies = "saved; it applies from the next deployment.";
  const runtime = shown.runtimeProfile;
  const network = shown.networkProfile;
  const health = shown.healthPolicy;
  const http = health.http ?? {};

  const runtimeForm = profileForm("Runtime profile", [
    choice("strategy", "Build strategy", ["auto", "dockerfile", "prebuilt-image"], runtime.strategy),
    text("startCommand", "Start command", runtime.startCommand),
    text("dockerfilePath", "Dockerfile path", runtime.dockerfilePath),
    text("buildTarget", "Build target", runtime.buildTarget),
    number("cpus", "CPUs", runtime.cpus),
    number("memoryBytes", "Memory limit (MiB)", runtime.memoryBytes, MIB),
    number("replicas", "Replicas", runtime.replicas),
    choice("rolloutStrategy", "Rollout", ["blue-green", "recreate"], runtime.rolloutStrategy),
  ], readOnly, async (values) => {
    await api("POST", `${path}/runtime-profile`, { runtimeProfile: values });
    return `Runtime profile ${applies}`;
  });

  const networkForm = profileForm("Network profile", [
    number("internalPort", "Container port", network.internalPort),
    choice("exposureMode", "Exposure", ["reverse-proxy", "none"], network.exposureMode),
    number("hostPort", "Host port", network.hostPort),
    text("targetServiceName", "Target service", network.targetServiceName),
  ], readOnly, async (values) => {
    await api("POST", `${path}/network-profile`, { networkProfile: values });
    return `Network profile ${applies}`;
  });

  const access = shown.accessProfile;
  const accessForm = profileForm("Access profile", [
    choice("generatedAccessMode", "Generated access route", ["inherit", "disabled"], access.generatedAccessMode),
    text("pathPrefix", "Path prefix", access.pathPrefix),
  ], readOnly, async (values) => {
    await api("POST", `${path}/access-profile`, { accessProfile: values });
    return `Access profile ${applies}`;
  });

  const reset = h("button", { type: "button", class: "small" }, "Reset to defaults");
  const healthForm = profileForm("Health check", [
    check("enabled", "Enabled", health.enabled),
    choice("http.method", "Method", ["GET", "HEAD"], http.method),
    choice("http.scheme", "Scheme", ["http", "https"], http.scheme),
    text("http.path", "Path", http.path),
    number("http.port", "Port (empty: the container port)", http.port),
    text("http.host", "Host header", http.host),
    number("http.expectedStatusCode", "Expected status (empty: any 2xx/3xx)", http.expectedStatusCode),
    text("http.expectedResponseText", "Expected text in the response", http.expectedResponseText),
    number("intervalSeconds", "Interval (s)", health.intervalSeconds),
    number("timeoutSeconds", "Timeout (s)", health.timeoutSeconds),
    number("retries", "Retries", health.retries),
    number("startPeriodSeconds", "Start period (s)", health.startPeriodSeconds),
  ], readOnly, async (values) => {
    await api("POST", `${path}/health-policy`, { healthCheck: { type: "http", ...values } });
    return `Health check ${applies}`;
  }, [reset]);
  reset.addEventListener("click", async () => {
    if (!confirm("Reset the health check to its defaults?")) return;
    try {
      await api("POST", `${path}/health-policy/reset`, {});
      // Draw the page again: the form shows the defaults now in force.
      root.replaceChildren();
      await page(root, [resourceId]);
    } catch (error) {
      healthForm.querySelector(".form-status")!.replaceChildren(errorBox(error));
    }
  });

  root.append(
    h("p", { class: "crumbs" }, link(`/resources/${resourceId}`, shown.resource.name), " / profiles"),
    h("h1", {}, `${shown.resource.name}: runtime, network, access and health`),
    readOnly
      ? h("p", { class: "hint", id: "profiles-read-only" }, `Read-only: your role (${role}) may see these profiles but not change them.`)
      : h("p", { class: "hint" }, "Each profile is replaced as a whole; empty fields take their defaults. Changes apply from the next deployment."),
    runtimeForm,
    networkForm,
    accessForm,
    healthForm,
  );
}
