// Builds the web chat and the admin dashboard into the Python package's static folder
// (src/modelway/static/). Scripts and styles get content-hashed names so the gateway can
// cache them forever; the pages that name them (index.html, admin.html) are written last
// and never cached.
import { build, context, transform } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../src/modelway/static");
const watch = process.argv.includes("--watch");

// highlight.js ships one stylesheet per theme; each is scoped to the page's theme here.
async function codeThemes() {
  const styles = path.join(here, "node_modules/highlight.js/styles");
  const light = await readFile(path.join(styles, "github.css"), "utf8");
  const dark = await readFile(path.join(styles, "github-dark.css"), "utf8");
  const nested = `:root[data-theme="light"] {\n${light}\n}\n:root[data-theme="dark"] {\n${dark}\n}\n`;
  const { code } = await transform(nested, { loader: "css", target: "chrome100", minify: true });
  return code;
}

const options = {
  entryPoints: {
    app: path.join(here, "src/main.ts"),
    style: path.join(here, "src/styles.css"),
    admin: path.join(here, "src/admin/main.ts"),
    "admin-style": path.join(here, "src/admin/admin.css"),
  },
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome100", "firefox100", "safari15"],
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  outdir,
  entryNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "info",
};

async function writePages(metafile) {
  const outputs = Object.keys(metafile.outputs).map((file) => path.basename(file));
  const built = (entry, extension) =>
    `/static/${outputs.find((name) => name.startsWith(`${entry}-`) && name.endsWith(extension))}`;
  const themes = await codeThemes();
  const themeName = `code-themes-${hashOf(themes)}.css`;
  await writeFile(path.join(outdir, themeName), themes);
  const chat = await readFile(path.join(here, "index.html"), "utf8");
  const chatPage = chat
    .replace("{{script}}", built("app", ".js"))
    .replace("{{style}}", built("style", ".css"))
    .replace("{{code-themes}}", `/static/${themeName}`);
  await writeFile(path.join(outdir, "index.html"), chatPage);
  const admin = await readFile(path.join(here, "admin.html"), "utf8");
  const adminPage = admin
    .replace("{{script}}", built("admin", ".js"))
    .replace("{{style}}", built("admin-style", ".css"));
  await writeFile(path.join(outdir, "admin.html"), adminPage);
  await writeFile(path.join(outdir, ".built"), new Date().toISOString() + "\n");
}

function hashOf(text) {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return (hash >>> 0).toString(36).toUpperCase().padStart(8, "0");
}

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
if (watch) {
  const ctx = await context({
    ...options,
    plugins: [{ name: "page", setup: (b) => b.onEnd((r) => r.metafile && writePages(r.metafile)) }],
  });
  await ctx.watch();
} else {
  const result = await build(options);
  await writePages(result.metafile);
}
