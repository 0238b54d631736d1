// Builds the console into ../coordinator/console/dist: hashed, minified ES modules split per
// page (xterm.js and uPlot load only on the pages that use them), one CSS file, and an
// index.html with no inline script or style (the coordinator serves it under a strict CSP).
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "coordinator", "console", "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await build({
  entryPoints: { main: join(here, "src", "main.ts"), style: join(here, "src", "all.css") },
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  target: "es2022",
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});

const outputs = Object.entries(result.metafile.outputs);
const entry = outputs.find(([, meta]) => meta.entryPoint?.endsWith("main.ts"))[0];
const css = outputs.filter(([path]) => path.endsWith(".css")).map(([path]) => path);
const rel = (path) => "/console/" + path.slice(path.indexOf("assets/"));
const links = css.map((path) => `<link rel="stylesheet" href="${rel(path)}">`).join("\n    ");
const html = readFileSync(join(here, "index.html"), "utf8")
  .replace("<!--styles-->", links)
  .replace("<!--script-->", `<script type="module" src="${rel(entry)}"></script>`);
writeFileSync(join(out, "index.html"), html);
const digest = createHash("sha256").update(html).digest("hex").slice(0, 12);
writeFileSync(join(out, "BUILD"), `index ${digest}\n`);
// Compressed siblings: the coordinator's FileResponse sends them to clients that accept them,
// so nothing is compressed per request.
for (const name of readdirSync(join(out, "assets"))) {
  if (!/\.(js|css)$/.test(name)) continue;
  const body = readFileSync(join(out, "assets", name));
  writeFileSync(join(out, "assets", name + ".br"), brotliCompressSync(body));
  writeFileSync(join(out, "assets", name + ".gz"), gzipSync(body, { level: 9 }));
}
console.log(`console built into ${out} (${outputs.length} files)`);
