// `npm run dev [-- wrangler flags]`: serves the API locally on wrangler's
// embedded runtime. Copies .dev.vars.example to .dev.vars when that is missing,
// so the local admin token is readable there.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vars = join(root, ".dev.vars");
if (!existsSync(vars)) {
  copyFileSync(join(root, ".dev.vars.example"), vars);
  console.log("created .dev.vars from .dev.vars.example (local-only credentials)");
}

const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const child = spawn(process.execPath, [wrangler, "dev", ...process.argv.slice(2)], { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
