// A project's or an environment's settings: rename, archive (restore a project), clone an
// environment. The API has no environment restore and no resource rename.
import { api } from "../api";
import { h, link } from "../dom";
import { navigate } from "../nav";
import { actionButton, actionForm } from "../widgets";

const here = () => location.pathname.replace(/^\/console/, "");

function manage(kind: "project" | "environment", path: string, item: any, extra: HTMLElement[] = []): HTMLElement[] {
  const out = h("div", { role: "status", id: "manage-status" });
  const newName = h("input", { name: "name", id: "rename-name", required: true, maxlength: 100, value: item.name });
  const archived = item.lifecycleStatus === "archived";
  return [
    h("p", {}, "Status: ", h("strong", { id: "lifecycle-status" }, item.lifecycleStatus ?? "active")),
    actionForm(`Rename ${kind}`, [["New name", newName]], "Rename", async () => {
      await api("POST", `${path}/rename`, { name: newName.value });
      navigate(here(), true);
    }),
    ...extra,
    h("div", { class: "actions" },
      archived && kind === "project"
        ? actionButton("Restore project", out, async () => {
            await api("POST", `${path}/restore`, {});
            navigate(here(), true);
          })
        : archived
          ? null
          : actionButton(`Archive ${kind}`, out, async () => {
              await api("POST", `${path}/archive`, {});
              navigate(here(), true);
            }, { confirmText: `Archive ${item.name}? Nothing new can be deployed into it.` })),
    out,
  ];
}

export async function projectSettings(root: HTMLElement, [projectId]: string[]): Promise<void> {
  const shown = await api("GET", `/projects/${projectId}`);
  const project = shown.project ?? shown;
  root.append(
    h("p", { class: "crumbs" }, link("/projects", "Projects"), " / ", link(`/projects/${projectId}`, project.name), " / settings"),
    h("h1", {}, project.name),
    h("h2", {}, "Settings"),
    ...manage("project", `/projects/${projectId}`, project),
  );
}

export async function environmentSettings(root: HTMLElement, [environmentId]: string[]): Promise<void> {
  const shown = await api("GET", `/environments/${environmentId}`);
  const env = shown.environment ?? shown;
  const cloneName = h("input", { name: "targetName", id: "clone-name", required: true, maxlength: 100 });
  root.append(
    h("p", { class: "crumbs" }, link(`/projects/${env.projectId}`, "Project"), " / ", link(`/environments/${environmentId}`, env.name), " / settings"),
    h("h1", {}, env.name),
    h("h2", {}, "Settings"),
    ...manage("environment", `/environments/${environmentId}`, env, [
      actionForm("Clone environment", [["New environment name", cloneName]], "Clone", async () => {
        const cloned = await api("POST", `/environments/${environmentId}/clone`, { targetName: cloneName.value });
        navigate(`/environments/${cloned.id}/settings`);
      }),
    ]),
  );
}
