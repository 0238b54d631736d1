// A resource's source: the configured one shown, a prebuilt image set, or a folder of this
// computer uploaded (packed as a gzip tar in the browser, POST /resources/{id}/source/archive),
// which the next deployment builds with its Dockerfile.
import { createTarPacker } from "modern-tar";
import { api, upload } from "../api";
import { excluded, IGNORE_FILE, parseRules } from "../dockerignore";
import { h, link } from "../dom";
import { actionForm } from "../widgets";

// The chosen folder's files less what its top .dockerignore leaves out (the CLI's rules), each
// named relative to the folder, and how many were left out.
export async function chosenFiles(files: File[]): Promise<{ kept: [File, string][]; leftOut: number }> {
  const named = files.map((file): [File, string] => [file, file.webkitRelativePath.split("/").slice(1).join("/")]);
  const ignore = named.find(([, name]) => name === IGNORE_FILE);
  const rules = ignore ? parseRules(await ignore[0].text()) : [];
  const kept = named.filter(([, name]) => !excluded(name, rules));
  return { kept, leftOut: named.length - kept.length };
}

// The files as one gzip tar, its root the folder's contents. Files stream through the packer
// and the compressor one after the other; only the compressed archive is held (the API takes at
// most 200 MiB of it). Browsers do not tell file modes: each is 0644.
export async function packFolder(files: [File, string][]): Promise<Blob> {
  const { readable, controller } = createTarPacker();
  const archive = new Response(readable.pipeThrough(new CompressionStream("gzip"))).blob();
  for (const [file, name] of files) {
    const entry = controller.add({ name, size: file.size, type: "file", mode: 0o644, mtime: new Date(file.lastModified) });
    await file.stream().pipeTo(entry);
  }
  controller.finalize();
  return archive;
}

function describe(source: any): HTMLElement {
  if (!source) return h("p", { id: "current-source", "data-kind": "none" }, "No source yet: set an image or upload a folder.");
  if (source.kind === "docker-image") {
    const ref = source.imageName + (source.imageTag ? `:${source.imageTag}` : "") + (source.imageDigest ? `@${source.imageDigest}` : "");
    return h("p", { id: "current-source", "data-kind": source.kind }, "Image ", h("code", {}, ref));
  }
  return h("p", { id: "current-source", "data-kind": source.kind },
    "Uploaded folder ", h("code", {}, source.locator ?? "."), " · archive ", h("code", { id: "source-archive" }, source.metadata?.archiveId ?? "none"));
}

const KIB = 1024;
const size = (bytes: number) => (bytes < KIB * KIB ? `${(bytes / KIB).toFixed(1)} KiB` : `${(bytes / KIB / KIB).toFixed(1)} MiB`);

export async function page(root: HTMLElement, [resourceId]: string[]): Promise<void> {
  const shown = await api("GET", `/resources/${resourceId}`);
  const current = h("div", {}, describe(shown.source));
  const refresh = async () => current.replaceChildren(describe((await api("GET", `/resources/${resourceId}`)).source));

  const folder = h("input", { type: "file", name: "folder", id: "source-folder", webkitdirectory: true, multiple: true });
  const uploadForm = actionForm("Upload a folder", [["Folder", folder]], "Upload folder", async () => {
    const files = Array.from(folder.files ?? []);
    if (!files.length) throw new Error("Choose a folder first.");
    const top = files[0].webkitRelativePath.split("/")[0] || ".";
    const { kept, leftOut } = await chosenFiles(files);
    if (!kept.length) throw new Error("Every file of the folder is left out by its .dockerignore.");
    const archive = await packFolder(kept);
    const stored = await upload(`/resources/${resourceId}/source/archive`, archive, {
      "Content-Type": "application/gzip",
      // Printable ASCII only (the API's rule): a name outside it is sent as ".".
      "X-Berth-Locator": /^[\x20-\x7e]{1,500}$/.test(top) ? top : ".",
    });
    await refresh();
    return `Uploaded ${stored.fileCount} files (${size(stored.sizeBytes)} compressed, sha256 ${stored.sha256.slice(0, 12)}…)${leftOut ? `; ${leftOut} left out by .dockerignore` : ""}; the next deployment builds it.`;
  });

  const image = h("input", { name: "imageName", id: "source-image", required: true, maxlength: 512, placeholder: "nginx:1.27" });
  const imageForm = actionForm("Use an image", [["Image", image]], "Use image", async () => {
    await api("POST", `/resources/${resourceId}/source`, { source: { kind: "docker-image", imageName: image.value } });
    await refresh();
    return "Saved; the next deployment runs this image.";
  });

  root.append(
    h("p", { class: "crumbs" }, link(`/resources/${resourceId}`, shown.resource.name), " / source"),
    h("h1", {}, `${shown.resource.name}: source`),
    current,
    h("p", { class: "hint" }, "A folder is built with the Dockerfile at its top (see the runtime profile). What the folder's .dockerignore excludes, and every .git directory, is left out, as with berth deploy --path."),
    uploadForm,
    imageForm,
  );
}
