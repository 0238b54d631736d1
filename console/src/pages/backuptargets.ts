// Backup targets (S3-compatible buckets and directories on a server, for database and volume
// backups): the list with the secret key masked as the API answers it, add one, remove one (the
// API's 409 shown while a backup or a policy uses it); and the target picker the backup forms share.
import { api, query } from "../api";
import { h } from "../dom";
import { actionButton, actionForm, select, table, when } from "../widgets";

// The coordinator's own storage needs no target: the picker's first choice sends none.
export const OWN_STORAGE = "the coordinator's storage";

// Where a target keeps its files, as its kind names it.
function where(t: any, servers: Map<string, string>): string {
  if (t.kind === "server-directory") return `${servers.get(t.serverId) ?? t.serverId}:${t.path}`;
  return `s3://${t.bucket}${t.prefix ? "/" + t.prefix : ""}`;
}

// Read once per page visit (a picker or the targets page is built anew on each visit): a list
// refresh reuses it instead of loading ``/servers`` again.
function serverNamesOnce(): () => Promise<Map<string, string>> {
  let names: Promise<Map<string, string>> | null = null;
  return () => (names ??= serverNames());
}

async function serverNames(): Promise<Map<string, string>> {
  try {
    const items: any[] = (await api("GET", "/servers" + query({ limit: 200 }))).items;
    return new Map(items.map((s) => [s.id, s.name]));
  } catch {
    return new Map();
  }
}

// A picker of the organization's targets; a token that may not list them keeps only the
// coordinator's storage (backing up there needs no target permission).
export function targetPicker(id: string, label: string): { element: HTMLSelectElement; load: () => Promise<void>; chosen: () => string | null } {
  const element = select(id, [["", OWN_STORAGE]], { "aria-label": label });
  const names = serverNamesOnce();
  async function load(): Promise<void> {
    let items: any[] = [];
    try {
      items = (await api("GET", "/backup-targets")).items;
    } catch {
      items = [];
    }
    const servers = items.some((t) => t.kind === "server-directory") ? await names() : new Map<string, string>();
    // Read the choice after the answer: one made while the list was loading is kept.
    const before = element.value;
    element.replaceChildren(h("option", { value: "" }, OWN_STORAGE), ...items.map((t) => h("option", { value: t.id }, `${t.name} (${where(t, servers)})`)));
    if (items.some((t) => t.id === before)) element.value = before;
  }
  return { element, load, chosen: () => element.value || null };
}

export async function page(root: HTMLElement, _params: string[], signal: AbortSignal): Promise<void> {
  const out = h("div", { role: "status", id: "backup-target-status" });
  const list = h("div", { id: "backup-targets" });
  const name = h("input", { id: "target-name", required: true, maxlength: 100 });
  const endpoint = h("input", { id: "target-endpoint", type: "url", required: true, placeholder: "https://s3.eu-central-1.amazonaws.com" });
  const region = h("input", { id: "target-region", placeholder: "us-east-1" });
  const bucket = h("input", { id: "target-bucket", required: true });
  const prefix = h("input", { id: "target-prefix", placeholder: "berth/prod" });
  const keyId = h("input", { id: "target-access-key-id", required: true, autocomplete: "off" });
  const secret = h("input", { id: "target-secret", type: "password", required: true, autocomplete: "new-password" });
  const dirName = h("input", { id: "dir-target-name", required: true, maxlength: 100 });
  const dirServer = select("dir-target-server", []);
  const dirPath = h("input", { id: "dir-target-path", required: true, placeholder: "/srv/berth-backups/prod" });
  const names = serverNamesOnce();

  async function load(): Promise<void> {
    const [items, servers]: [any[], Map<string, string>] = await Promise.all([
      api("GET", "/backup-targets").then((answer) => answer.items),
      names(),
    ]);
    if (signal.aborted) return;
    const chosen = dirServer.value;
    dirServer.replaceChildren(...[...servers].map(([id, label]) => h("option", { value: id }, label)));
    if (servers.has(chosen)) dirServer.value = chosen;
    const dash = h("span", { class: "hint" }, "—");
    list.replaceChildren(table("backup-target-rows", ["Name", "Where", "Endpoint", "Access key", "Secret key", "Added", ""], items.map((t) =>
      h("tr", { "data-target": t.id },
        h("td", {}, t.name, h("div", { class: "hint" }, t.id)),
        h("td", { class: "target-where" }, h("code", {}, where(t, servers)), t.region ? h("div", { class: "hint" }, t.region) : null),
        h("td", {}, t.endpointUrl ? h("code", {}, t.endpointUrl) : dash.cloneNode(true)),
        h("td", {}, t.accessKeyId ? h("code", {}, t.accessKeyId) : dash.cloneNode(true)),
        h("td", { class: "target-secret" }, t.secretAccessKey ? h("code", {}, t.secretAccessKey) : dash.cloneNode(true)),
        h("td", {}, when(t.createdAt)),
        h("td", {}, actionButton("Remove", out, async () => {
          await api("DELETE", `/backup-targets/${t.id}`);
          await load();
          out.replaceChildren(h("p", { class: "hint" }, `Removed ${t.name}.`));
        }, { name: `Remove the target ${t.name}`, confirmText: `Remove the backup target ${t.name}? Backups already taken there stay where they are.` })),
      )), "No backup targets yet: backups are kept on the coordinator."));
  }

  root.append(
    h("h1", {}, "Backup targets"),
    h("p", { class: "hint" }, "S3-compatible buckets, or directories on a server, a database or volume backup can be kept in instead of the coordinator's storage. Backups are encrypted on the coordinator before any byte is sent; a bucket must already exist, and a directory must lie under one the server's agent allows (BERTH_AGENT_BACKUP_DIRS)."),
    out,
    list,
    actionForm("Add an S3-compatible target", [["Name", name], ["Endpoint URL", endpoint], ["Region", region], ["Bucket", bucket], ["Prefix", prefix], ["Access key id", keyId], ["Secret access key", secret]], "Add target", async () => {
      const body: Record<string, unknown> = { name: name.value, endpointUrl: endpoint.value, bucket: bucket.value, accessKeyId: keyId.value, secretAccessKey: secret.value };
      if (region.value) body.region = region.value;
      if (prefix.value) body.prefix = prefix.value;
      const created = await api("POST", "/backup-targets", body);
      secret.value = "";
      await load();
      return `Added ${name.value} (${created.id}).`;
    }, { id: "add-backup-target" }),
    actionForm("Add a directory on a server", [["Name", dirName], ["Server", dirServer], ["Directory", dirPath]], "Add directory", async () => {
      const created = await api("POST", "/backup-targets", { kind: "server-directory", name: dirName.value, serverId: dirServer.value, path: dirPath.value });
      await load();
      return `Added ${dirName.value} (${created.id}).`;
    }, { id: "add-dir-target" }),
  );
  await load();
}
