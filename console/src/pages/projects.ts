// Projects -> environments -> resources: list and create at each level (rename, archive and
// clone are on each one's settings page, pages/settings.ts).
import { api, query } from "../api";
import { errorBox, field, h, link } from "../dom";
import { navigate } from "../nav";
import { environmentVariables } from "./envvariables";

function listing(items: any[], href: (item: any) => string, empty: string, id: string): HTMLElement {
  if (!items.length) return h("p", { class: "hint", id }, empty);
  return h("ul", { class: "list", id }, ...items.map((item) => h("li", {}, link(href(item), item.name), item.lifecycleStatus && item.lifecycleStatus !== "active" ? h("span", { class: "tag" }, item.lifecycleStatus) : null)));
}

function createForm(title: string, fields: [string, HTMLElement][], submit: () => Promise<void>): HTMLFormElement {
  const out = h("div", { role: "status" });
  const form = h("form", { class: "card", "aria-label": title }, h("h2", {}, title), ...fields.map(([label, input]) => field(label, input)), h("button", { type: "submit" }, "Create"), out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren();
    try {
      await submit();
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  });
  return form;
}

export async function projects(root: HTMLElement): Promise<void> {
  const answer = await api("GET", "/projects" + query({ limit: 100 }));
  const name = h("input", { name: "name", id: "project-name", required: true, maxlength: 200 });
  root.append(
    h("h1", {}, "Projects"),
    listing(answer.items, (p) => `/projects/${p.id}`, "No projects yet.", "projects"),
    createForm("New project", [["Name", name]], async () => {
      const created = await api("POST", "/projects", { name: name.value });
      navigate(`/projects/${created.id}`);
    }),
  );
}

export async function project(root: HTMLElement, [projectId]: string[]): Promise<void> {
  const [shown, envs] = await Promise.all([
    api("GET", `/projects/${projectId}`),
    api("GET", "/environments" + query({ projectId, limit: 100 })),
  ]);
  const projectItem = shown.project ?? shown;
  const name = h("input", { name: "name", id: "environment-name", required: true, maxlength: 200 });
  root.append(
    h("p", { class: "crumbs" }, link("/projects", "Projects"), " / ", projectItem.name),
    h("h1", {}, projectItem.name),
    h("h2", {}, "Environments"),
    listing(envs.items, (e) => `/environments/${e.id}`, "No environments yet.", "environments"),
    createForm("New environment", [["Name", name]], async () => {
      const created = await api("POST", "/environments", { projectId, name: name.value });
      navigate(`/environments/${created.id}`);
    }),
    h("p", {}, link(`/projects/${projectId}/settings`, "Settings: rename, archive", { id: "project-settings" })),
  );
}

export async function environment(root: HTMLElement, [environmentId]: string[]): Promise<void> {
  const shown = await api("GET", `/environments/${environmentId}`);
  const env = shown.environment ?? shown;
  const [proj, resources] = await Promise.all([
    api("GET", `/projects/${env.projectId}`),
    api("GET", "/resources" + query({ environmentId, limit: 100 })),
  ]);
  const projectItem = proj.project ?? proj;
  const name = h("input", { name: "name", id: "resource-name", required: true, maxlength: 200 });
  const image = h("input", { name: "image", id: "resource-image", required: true, placeholder: "nginx" });
  const tag = h("input", { name: "tag", id: "resource-tag", value: "latest" });
  const command = h("input", { name: "command", id: "resource-command", placeholder: "(the image's own)" });
  const port = h("input", { name: "port", id: "resource-port", type: "number", min: 1, max: 65535, value: 8080 });
  const health = h("input", { name: "health", id: "resource-health", type: "checkbox", checked: true });
  root.append(
    h("p", { class: "crumbs" }, link("/projects", "Projects"), " / ", link(`/projects/${projectItem.id}`, projectItem.name), " / ", env.name),
    h("h1", {}, env.name),
    h("h2", {}, "Resources"),
    listing(resources.items, (r) => `/resources/${r.id}`, "No resources yet.", "resources"),
    createForm(
      "New resource (container image)",
      [["Name", name], ["Image", image], ["Tag", tag], ["Start command", command], ["Internal port", port], ["HTTP health check", health]],
      async () => {
        const created = await api("POST", "/resources", { projectId: env.projectId, environmentId, name: name.value });
        const configure = (path: string, body: unknown) => api("POST", `/resources/${created.id}/${path}`, body);
        await configure("source", { source: { kind: "docker-image", imageName: image.value, imageTag: tag.value || "latest" } });
        await configure("network-profile", { networkProfile: { internalPort: Number(port.value), exposureMode: "none" } });
        if (command.value.trim()) await configure("runtime-profile", { runtimeProfile: { startCommand: command.value } });
        if (!health.checked) await configure("health-policy", { healthCheck: { enabled: false } });
        navigate(`/resources/${created.id}`);
      },
    ),
    environmentVariables(environmentId, env.maskedVariables),
    h("p", {}, link(`/environments/${environmentId}/storage`, "Storage volumes and databases", { id: "environment-storage" })),
    h("p", {}, link(`/environments/${environmentId}/settings`, "Settings: rename, clone, archive", { id: "environment-settings" })),
  );
}
