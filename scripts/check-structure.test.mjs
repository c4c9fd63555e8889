// Tests of scripts/check-structure.mjs on fixture trees in a temp directory: each rule must catch its
// case, and a clean tree must pass, so the check can neither fail nor pass for nothing.
// node --test scripts/check-structure.test.mjs (run first by npm run check:structure).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { checkStructure } from "./check-structure.mjs";

const SCRIPT = fileURLToPath(new URL("./check-structure.mjs", import.meta.url));
const temp = mkdtempSync(path.join(tmpdir(), "check-structure-"));
after(() => rmSync(temp, { recursive: true, force: true }));

let trees = 0;
/** Writes { "relative/path.ts": text } under a fresh <temp>/N/src and returns that src dir. */
function tree(files) {
  const src = path.join(temp, String(trees++), "src");
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    writeFileSync(path.join(src, rel), text);
  }
  return src;
}

/** A function of exactly `lines` lines (declaration line to closing brace). */
const fn = (head, lines) => `${head} {\n${"  void 0;\n".repeat(lines - 2)}}\n`;

/** A small tree that follows every rule; each test adds or replaces files. */
const CLEAN = {
  "index.ts":
    'import { app } from "./app";\nimport { later } from "./queue/consumer";\nexport default { app, later };\n',
  "app.ts": 'import { registerARoutes } from "./routes/a";\nexport const app = registerARoutes;\n',
  "config.ts": "export const config = {};\n",
  "domain/names.ts": 'import { config } from "../config";\nexport const names = config;\n',
  "queue/consumer.ts":
    'import type { names } from "../domain/names";\nexport const later = () => import("../domain/names");\n',
  "routes/common.ts": 'export { names } from "../domain/names";\n',
  "routes/a.ts": 'import { names } from "./common";\nexport function registerARoutes() {\n  return names;\n}\n',
  "routes/b.ts": 'import { names } from "./common";\nexport const registerBRoutes = () => names;\n',
  "routes/c/index.ts":
    'import { part } from "./part";\nimport { names } from "../common";\nexport { part as registerCRoutes, names };\n',
  "routes/c/part.ts": "export const part = () => 1;\n",
  "long.ts": `${"// filler\n".repeat(340)}${fn("export function sixty()", 60)}`,
};

const rules = (violations) => violations.map((v) => `${v.file}:${v.line} ${v.rule}`);

test("a tree that follows every rule passes, and the CLI exits 0", () => {
  const src = tree(CLEAN);
  assert.deepEqual(checkStructure(src), []);
  const run = spawnSync(process.execPath, [SCRIPT, src], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
});

test("a cycle through three rooms is reported, one example import for each of its edges", () => {
  const src = tree({
    ...CLEAN,
    // config.ts -> domain/ (dynamic import) -> queue/ (export from) -> config.ts (import type)
    "config.ts": 'export const config = {};\nexport const load = () => import("./domain/names");\n',
    "domain/names.ts": "export const names = 1;\n",
    "domain/extra.ts": 'export * from "../queue/consumer";\n',
    "queue/consumer.ts":
      'import type { config } from "../config";\nexport const later = 1;\nexport type C = typeof config;\n',
  });
  const found = checkStructure(src).filter((v) => v.rule === "room-cycle");
  assert.deepEqual(rules(found), [
    "src/config.ts:2 room-cycle",
    "src/domain/extra.ts:1 room-cycle",
    "src/queue/consumer.ts:1 room-cycle",
  ]);
  assert.match(found[0].message, /src\/config\.ts -> src\/domain\/ \("\.\/domain\/names"\)/);
  assert.match(found[0].message, /\{src\/config\.ts, src\/domain\/, src\/queue\/\}/);
  assert.match(found[1].message, /src\/domain\/ -> src\/queue\//);
  assert.match(found[2].message, /src\/queue\/ -> src\/config\.ts/);
});

test("a two-way import between folders is a cycle; one-way imports are not", () => {
  const src = tree({
    ...CLEAN,
    "config.ts": 'import type { names } from "./domain/names";\nexport const config = {};\n',
  });
  assert.deepEqual(rules(checkStructure(src)), ["src/config.ts:1 room-cycle", "src/domain/names.ts:1 room-cycle"]);
});

test("nothing may import the entry point", () => {
  const src = tree({ ...CLEAN, "domain/boot.ts": 'import type app from "../index";\nexport type A = typeof app;\n' });
  assert.deepEqual(rules(checkStructure(src)), ["src/domain/boot.ts:1 entry-imported"]);
});

test("a route module importing another route module (file or folder) is reported; shared helpers are fine", () => {
  const src = tree({
    ...CLEAN,
    "routes/b.ts": 'import { registerARoutes } from "./a";\nexport const registerBRoutes = registerARoutes;\n',
    "routes/c/part.ts": 'import { names } from "../b";\nexport const part = () => names;\n',
    "routes/d.ts": 'import { part } from "./c";\nexport function registerDRoutes() {\n  return part;\n}\n',
  });
  const found = checkStructure(src);
  assert.deepEqual(rules(found), [
    "src/routes/b.ts:1 route-imports-route",
    "src/routes/c/part.ts:1 route-imports-route",
    "src/routes/d.ts:1 route-imports-route",
  ]);
  assert.match(found[0].message, /src\/routes\/a\.ts/);
  assert.match(found[2].message, /src\/routes\/c\/index\.ts/);
});

test("a 401-line file is reported; 400 lines pass", () => {
  const src = tree({ ...CLEAN, "domain/big.ts": "// filler\n".repeat(401) });
  assert.deepEqual(rules(checkStructure(src)), ["src/domain/big.ts:1 file-length"]);
  assert.match(checkStructure(src)[0].message, /401 lines/);
});

test("a 61-line function, method or arrow is reported; 60 lines pass; nested ones are measured on their own", () => {
  const src = tree({
    ...CLEAN,
    "domain/fn.ts": fn("export function tooLong()", 61),
    "domain/method.ts": `export class K {\n${fn("  method()", 61)}}\n`,
    "domain/arrow.ts": `export const outer = () => {\n  const inner = () => {\n${"    void 0;\n".repeat(59)}  };\n  return inner;\n};\n`,
  });
  const found = checkStructure(src);
  assert.deepEqual(rules(found), [
    "src/domain/arrow.ts:1 function-length",
    "src/domain/arrow.ts:2 function-length",
    "src/domain/fn.ts:1 function-length",
    "src/domain/method.ts:2 function-length",
  ]);
  assert.match(found[0].message, /function outer spans 64 lines/);
  assert.match(found[1].message, /function inner spans 61 lines/);
  assert.match(found[2].message, /function tooLong spans 61 lines/);
});

test("a 61-line register…Routes is exempt, but a long handler inside it is not", () => {
  const routeTable = fn("export function registerLongRoutes(app: { get(p: string, h: () => void): void })", 61);
  const handler = `  app.get("/x", () => {\n${"    void 0;\n".repeat(59)}  });\n`;
  const src = tree({
    ...CLEAN,
    "routes/long.ts": routeTable,
    "routes/openapi.ts": fn("export function registerOpenApi()", 70),
    "routes/handlers.ts": `export const registerHandlerRoutes = (app: any) => {\n${handler}};\n`,
  });
  assert.deepEqual(rules(checkStructure(src)), ["src/routes/handlers.ts:2 function-length"]);
});

test("the CLI lists each violation with file, line and rule, and exits 1", () => {
  const src = tree({ ...CLEAN, "domain/big.ts": "// filler\n".repeat(401), "domain/fn.ts": fn("function f()", 61) });
  const run = spawnSync(process.execPath, [SCRIPT, src], { encoding: "utf8" });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /^src\/domain\/big\.ts:1 {2}\[file-length\] 401 lines \(limit 400\)$/m);
  assert.match(run.stderr, /^src\/domain\/fn\.ts:1 {2}\[function-length\] function f spans 61 lines \(limit 60\)$/m);
  assert.match(run.stderr, /2 violation\(s\)/);
});
