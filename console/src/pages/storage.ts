// Storage volumes and dependency resources (databases) of an environment: create, rename,
// delete, provision through a plan that is accepted; on a resource's page also its volume
// attachments and database bindings (bind, rotate the password, unbind).
import { api, query } from "../api";
import { h, link } from "../dom";
import { actionButton, actionForm, select, table, when } from "../widgets";
import { backupSection } from "./backups";
import { volumeBackupSection } from "./volumebackups";
import { volumeCleanup } from "./volumecleanup";

const KINDS: [string, string][] = [["postgres", "PostgreSQL"], ["redis", "Redis"], ["mysql", "MySQL"]];

export async function environmentPage(root: HTMLElement, [environmentId]: string[], signal: AbortSignal): Promise<void> {
  const shown = await api("GET", `/environments/${environmentId}`);
  const env = shown.environment ?? shown;
  root.append(
    h("p", { class: "crumbs" }, link(`/environments/${environmentId}`, env.name), " / storage"),
    h("h1", {}, `Storage and databases of ${env.name}`),
  );
  await sections(root, env, null, signal);
}

export async function resourcePage(root: HTMLElement, [resourceId]: string[], signal: AbortSignal): Promise<void> {
  const resource = (await api("GET", `/resources/${resourceId}`)).resource;
  const shown = await api("GET", `/environments/${resource.environmentId}`);
  const env = shown.environment ?? shown;
  root.append(
    h("p", { class: "crumbs" }, link(`/resources/${resourceId}`, resource.name), " / storage and databases"),
    h("h1", {}, `Storage and databases of ${resource.name}`),
  );
  await sections(root, env, resource, signal);
}

async function sections(root: HTMLElement, env: any, resource: any | null, signal: AbortSignal): Promise<void> {
  const scope = { projectId: env.projectId, environmentId: env.id };
  const servers = (await api("GET", "/servers" + query({ limit: 200 }))).items.map((s: any): [string, string] => [s.id, s.name]);
  const out = h("div", { role: "status", id: "storage-status" });
  const volumes = h("div", { id: "volumes" });
  const attachments = h("div", { id: "attachments" });
  const databases = h("div", { id: "databases" });
  const bindings = h("div", { id: "bindings" });
  const plan = h("div", { id: "dependency-plan" });
  const backups = backupSection(signal);
  const volumeBackups = volumeBackupSection(signal);
  const cleanup = volumeCleanup();
  let volumeItems: any[] = [];
  let databaseItems: any[] = [];

  // Volumes
  const volumeName = h("input", { name: "name", id: "volume-name", required: true, maxlength: 100 });
  const volumeKind = select("volume-kind", [["named-volume", "named volume"], ["bind-mount", "bind mount (a host path)"]]);
  const sourcePath = h("input", { name: "sourcePath", id: "volume-source", placeholder: "/srv/data (bind mounts only)" });
  const volumeServer = select("volume-server", [["", "decided at first deployment"], ...servers]);
  const renamePick = select("volume-rename-pick", []);
  const renameTo = h("input", { name: "name", id: "volume-rename-name", required: true, maxlength: 100 });
  const attachPick = select("attach-volume", []);
  const destination = h("input", { name: "destinationPath", id: "attach-path", required: true, placeholder: "/data" });
  const mode = select("attach-mode", [["read-write", "read-write"], ["read-only", "read-only"]]);

  // Databases
  const dbKind = select("dependency-kind", KINDS);
  const dbName = h("input", { name: "name", id: "dependency-name", required: true, maxlength: 100 });
  const dbServer = select("dependency-server", [["", "the default server"], ...servers]);
  const dbRenamePick = select("dependency-rename-pick", []);
  const dbRenameTo = h("input", { name: "name", id: "dependency-rename-name", required: true, maxlength: 100 });
  const importKind = select("import-kind", KINDS);
  const importName = h("input", { name: "name", id: "import-name", required: true, maxlength: 100 });
  // The URL carries a password: typed like one, never shown back (the list shows it masked).
  const importUrl = h("input", { name: "connectionUrl", id: "import-url", type: "password", required: true, autocomplete: "off", placeholder: "postgres://user:password@host:5432/db" });
  const bindPick = select("binding-dependency", []);
  const target = h("input", { name: "targetName", id: "binding-target", required: true, value: "DATABASE_URL", pattern: "[A-Za-z_][A-Za-z0-9_]*" });

  root.append(
    out,
    h("section", { "aria-labelledby": "volumes-title" },
      h("h2", { id: "volumes-title" }, "Storage volumes"),
      volumes,
      cleanup.element,
      actionForm("New storage volume", [["Name", volumeName], ["Kind", volumeKind], ["Host path", sourcePath], ["Server", volumeServer]], "Create volume", async () => {
        await api("POST", "/storage-volumes", { ...scope, name: volumeName.value, kind: volumeKind.value, sourcePath: sourcePath.value || null, serverId: volumeServer.value || null });
        volumeName.value = "";
        sourcePath.value = "";
        await loadVolumes();
      }),
      actionForm("Rename a storage volume", [["Volume", renamePick], ["New name", renameTo]], "Rename volume", async () => {
        await api("POST", `/storage-volumes/${renamePick.value}/rename`, { name: renameTo.value });
        renameTo.value = "";
        await loadVolumes();
      }),
      resource
        ? [h("h2", {}, `Attached to ${resource.name}`), attachments,
           actionForm("Attach a volume", [["Volume", attachPick], ["Path in the container", destination], ["Mode", mode]], "Attach", async () => {
             await api("POST", `/resources/${resource.id}/storage-attachments`, { storageVolumeId: attachPick.value, destinationPath: destination.value, mountMode: mode.value });
             destination.value = "";
             await loadVolumes();
             return "Attached: mounted from the next deployment on.";
           })]
        : null),
    volumeBackups.element,
    h("section", { "aria-labelledby": "databases-title" },
      h("h2", { id: "databases-title" }, "Databases and caches"),
      databases,
      actionForm("Plan a new database", [["Kind", dbKind], ["Name", dbName], ["Server", dbServer]], "Plan", async () => {
        const planned = await api("POST", "/dependency-resources/provisioning/plan", { mode: "create", create: { ...scope, kind: dbKind.value, name: dbName.value, serverId: dbServer.value || null } });
        showPlan(planned.plan);
      }),
      plan,
      actionForm("Rename a database", [["Database", dbRenamePick], ["New name", dbRenameTo]], "Rename database", async () => {
        await api("POST", `/dependency-resources/${dbRenamePick.value}/rename`, { name: dbRenameTo.value });
        dbRenameTo.value = "";
        await Promise.all([loadDatabases(), loadBindings()]);
      }),
      actionForm("Import an external database", [["Kind", importKind], ["Name", importName], ["Connection URL", importUrl]], "Import", async () => {
        await api("POST", "/dependency-resources/import", { ...scope, kind: importKind.value, name: importName.value, connectionUrl: importUrl.value });
        importUrl.value = "";
        importName.value = "";
        await loadDatabases();
      }),
      resource
        ? [h("h2", {}, `Bound to ${resource.name}`), bindings,
           actionForm("Bind a database", [["Database", bindPick], ["Environment variable", target]], "Bind", async () => {
             await api("POST", `/resources/${resource.id}/dependency-bindings`, { dependencyResourceId: bindPick.value, targetName: target.value });
             await loadBindings();
             return `${target.value} is set from the next deployment on.`;
           })]
        : null),
    backups.element,
  );

  function options(pick: HTMLSelectElement, items: any[]): void {
    pick.replaceChildren(...items.map((item) => h("option", { value: item.id }, item.name)));
  }

  function showPlan(p: any): void {
    plan.replaceChildren(h("div", { class: "card", id: "plan-summary", "data-plan-status": p.status },
      h("h3", {}, `Plan: ${p.kind} "${p.name}" (${p.status})`),
      h("ul", {}, ...p.summary.map((line: string) => h("li", {}, line))),
      p.failureMessage ? h("p", { class: "error" }, p.failureMessage) : null,
      p.status === "planned"
        ? actionButton("Accept plan and provision", out, async () => {
            const accepted = await api("POST", `/dependency-resources/provisioning/${p.id}/accept`, { acknowledgeMutation: true });
            showPlan(accepted.plan);
            await loadDatabases();
          })
        : null));
  }

  async function loadVolumes(): Promise<void> {
    volumeItems = (await api("GET", "/storage-volumes" + query(scope))).items;
    options(renamePick, volumeItems);
    options(attachPick, volumeItems);
    volumeBackups.setVolumes(volumeItems);
    volumes.replaceChildren(table("volume-rows", ["Name", "Kind", "Server", "Attached to", "Backups", ""], volumeItems.map((v) =>
      h("tr", { "data-volume": v.name },
        h("td", {}, h("strong", {}, v.name), v.description ? h("div", { class: "hint" }, v.description) : null),
        h("td", {}, v.kind, v.sourcePath ? h("div", {}, h("code", {}, v.sourcePath)) : null),
        h("td", {}, v.serverId ?? "not yet placed"),
        h("td", {}, v.attachments.map((a: any) => h("div", {}, `${a.resourceName}: `, h("code", {}, a.destinationPath), ` (${a.mountMode})`))),
        h("td", {}, v.backupRelationship.retentionRequired ? "required" : "–"),
        h("td", {}, actionButton("Clean up", out, () => cleanup.run(v), { name: `Clean up volume ${v.name}` }), " ", actionButton("Delete", out, async () => {
          const check = await api("GET", `/storage-volumes/${v.id}/delete-check`);
          if (!check.safeToDelete) throw new Error(`${v.name} cannot be deleted: ${check.blockers.map((b: any) => b.message).join("; ")}`);
          if (!confirm(`Delete the volume ${v.name}? Its data stays on the server until a runtime cleanup.`)) return;
          await api("DELETE", `/storage-volumes/${v.id}`);
          await loadVolumes();
        }, { name: `Delete volume ${v.name}` })),
      )), "No storage volumes yet."));
    if (resource) {
      const mine = volumeItems.flatMap((v) => v.attachments.filter((a: any) => a.resourceId === resource.id).map((a: any) => ({ ...a, volume: v.name })));
      attachments.replaceChildren(table("attachment-rows", ["Volume", "Path", "Mode", "Since", ""], mine.map((a) =>
        h("tr", { "data-attachment-id": a.attachmentId },
          h("td", {}, a.volume), h("td", {}, h("code", {}, a.destinationPath)), h("td", {}, a.mountMode), h("td", {}, when(a.attachedAt)),
          h("td", {}, actionButton("Detach", out, async () => {
            await api("DELETE", `/resources/${resource.id}/storage-attachments/${a.attachmentId}`);
            await loadVolumes();
          }, { confirmText: `Detach ${a.volume} from ${resource.name}? The data stays.`, name: `Detach ${a.volume}` })))), "Nothing attached."));
    }
  }

  async function loadDatabases(): Promise<void> {
    databaseItems = (await api("GET", "/dependency-resources" + query(scope))).items;
    options(bindPick, databaseItems);
    options(dbRenamePick, databaseItems);
    backups.setDatabases(databaseItems);
    databases.replaceChildren(table("dependency-rows", ["Name", "Kind", "State", "Connection", "Readiness", ""], databaseItems.map((d) =>
      h("tr", { "data-dependency": d.name },
        h("td", {}, h("strong", {}, link(`/databases/${d.id}`, d.name)), h("div", { class: "hint" }, d.sourceMode)),
        h("td", {}, d.kind, d.image ? h("div", { class: "hint" }, d.image) : null),
        h("td", { class: "lifecycle" }, d.lifecycleStatus, d.providerRealization.failureMessage ? h("div", { class: "error" }, d.providerRealization.failureMessage) : null),
        h("td", {}, h("code", {}, d.connection.maskedConnection)),
        h("td", {}, d.bindingReadiness.status, d.bindingReadiness.reason ? h("div", { class: "hint" }, d.bindingReadiness.reason) : null),
        h("td", {}, actionButton("Delete", out, async () => {
          await api("DELETE", `/dependency-resources/${d.id}`);
          await loadDatabases();
        }, { confirmText: `Delete ${d.name}?${d.providerManaged ? " Its data is removed." : ""}`, name: `Delete database ${d.name}` })),
      )), "No databases yet."));
  }

  async function loadBindings(): Promise<void> {
    if (!resource) return;
    const answer = await api("GET", `/resources/${resource.id}/dependency-bindings`);
    bindings.replaceChildren(table("binding-rows", ["Database", "Variable", "Secret version", "Readiness", ""], answer.items.filter((b: any) => b.status === "active").map((b: any) =>
      h("tr", { "data-binding": b.target.targetName },
        h("td", {}, b.dependencyResourceName),
        h("td", {}, h("code", {}, b.target.targetName)),
        h("td", { class: "secret-version" }, b.secretRotation.secretVersion, b.secretRotation.rotatedAt ? h("div", { class: "hint" }, `rotated ${when(b.secretRotation.rotatedAt)}`) : null),
        h("td", {}, b.bindingReadiness.status, b.bindingReadiness.reason ? h("div", { class: "hint" }, b.bindingReadiness.reason) : null),
        h("td", { class: "actions" },
          actionButton("Rotate password", out, async () => {
            await api("POST", `/resources/${resource.id}/dependency-bindings/${b.id}/secret-rotations`, { confirmHistoricalSnapshotsRemainUnchanged: true });
            await loadBindings();
          }, { confirmText: `Set a new password for ${b.dependencyResourceName}? Earlier deployments keep the old URL.`, name: `Rotate the password of ${b.target.targetName}` }),
          actionButton("Unbind", out, async () => {
            await api("DELETE", `/resources/${resource.id}/dependency-bindings/${b.id}`);
            await loadBindings();
          }, { confirmText: `Unbind ${b.dependencyResourceName}?`, name: `Unbind ${b.target.targetName}` })),
      )), "No databases bound."));
  }

  await Promise.all([loadVolumes(), loadDatabases(), loadBindings()]);
}
