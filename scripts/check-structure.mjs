#!/usr/bin/env node
/**
 * Structure check of the Worker's source: node scripts/check-structure.mjs [srcDir]
 * (srcDir defaults to ./src). Prints every violation as `file:line  [rule] what`
 * and exits 1 when there is any. Its own tests: scripts/check-structure.test.mjs.
 *
 * The rules keep the layers legible for the next features (each folder of src/
 * a layer that only leans one way) and keep one job per file and per function,
 * so a change lands in one small, named place.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 60;
/** Route tables: one `app.openapi(...)` after another, long by nature; their handlers are still measured. */
const ROUTE_TABLE = /^(register\w*Routes|registerOpenApi)$/;
/** The entry point: it wires everything and nothing may import it. */
const ENTRY = "index.ts";
const RULES = ["room-cycle", "entry-imported", "route-imports-route", "file-length", "function-length"];
const SOURCE = /\.(ts|tsx|mts|cts)$/;

/** Every source file under dir, as absolute paths, sorted. */
function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (SOURCE.test(name)) out.push(full);
  }
  return out;
}

/** The file a relative specifier names, as the bundler resolves it (extension optional, folder = its index). */
function resolve(fromFile, specifier) {
  const base = path.resolve(path.dirname(fromFile), specifier);
  const stem = base.replace(/\.(m|c)?js$/, "");
  const candidates = [base, ...[".ts", ".tsx", ".mts", ".cts"].map((e) => stem + e)];
  candidates.push(...["index.ts", "index.tsx"].map((i) => path.join(base, i)));
  return candidates.find((c) => SOURCE.test(c) && statSync(c, { throwIfNoEntry: false })?.isFile()) ?? base;
}

/** Relative imports of a file: import/export ... from, import type, import(), typeof import(). */
function relativeImports(sf) {
  const found = [];
  const add = (node, lit) => {
    if (lit && ts.isStringLiteralLike(lit) && lit.text.startsWith(".")) {
      found.push({ specifier: lit.text, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
    }
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node, node.moduleSpecifier);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0]);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The name a function-like node goes by: its own, or that of the variable, property or field holding it. */
function functionName(node) {
  if (node.name && !ts.isComputedPropertyName(node.name)) return node.name.text;
  const p = node.parent;
  if (p && (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p))) {
    return ts.isIdentifier(p.name) || ts.isStringLiteral(p.name) ? p.name.text : undefined;
  }
  return undefined;
}

const FUNCTION_KINDS = new Set([
  ts.SyntaxKind.FunctionDeclaration,
  ts.SyntaxKind.MethodDeclaration,
  ts.SyntaxKind.ArrowFunction,
  ts.SyntaxKind.FunctionExpression,
  ts.SyntaxKind.Constructor,
  ts.SyntaxKind.GetAccessor,
  ts.SyntaxKind.SetAccessor,
]);

/** Names of functions a file exports (export function f, export const f = ..., export { f }). */
function exportedFunctionNames(sf) {
  const names = [];
  const exported = (n) => ts.getCombinedModifierFlags(n) & ts.ModifierFlags.Export;
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name && exported(st)) names.push(st.name.text);
    if (ts.isVariableStatement(st) && exported(st)) {
      for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) names.push(d.name.text);
    }
    if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const e of st.exportClause.elements) names.push(e.name.text);
    }
  }
  return names;
}

/** Strongly connected components of a graph given as Map<node, Set<node>> (Tarjan). */
function stronglyConnected(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  const connect = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) connect(v);
  return out;
}

/** All violations under srcDir, as { file, line, rule, message }, file relative to srcDir's parent. */
export function checkStructure(srcDir) {
  const root = path.resolve(srcDir);
  const shown = (f) => path.relative(path.dirname(root), f).split(path.sep).join("/");
  const violations = [];
  const report = (file, line, rule, message) => violations.push({ file: shown(file), line, rule, message });

  // A room is a direct subfolder of src/ ("src/domain/") or a root file of src/ ("src/config.ts").
  const roomOf = (f) => {
    const [first, ...rest] = path.relative(root, f).split(path.sep);
    return `${path.basename(root)}/${first}${rest.length > 0 ? "/" : ""}`;
  };
  const inside = (f) => !path.relative(root, f).startsWith("..");
  const routesDir = path.join(root, "routes");
  // A unit of src/routes/ is a root file there or one of its subfolders, whole.
  const routeUnitOf = (f) => {
    const rel = path.relative(routesDir, f);
    return rel.startsWith("..") || path.isAbsolute(rel) ? undefined : rel.split(path.sep)[0];
  };

  const files = sourceFiles(root).map((file) => {
    const text = readFileSync(file, "utf8");
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const imports = relativeImports(sf).map((i) => ({ ...i, target: resolve(file, i.specifier) }));
    return { file, text, sf, imports };
  });

  // Rule: files stay under 400 lines. One file per job; a longer file holds two jobs to split.
  for (const { file, text } of files) {
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    if (lines > MAX_FILE_LINES) report(file, 1, "file-length", `${lines} lines (limit ${MAX_FILE_LINES})`);
  }

  // Rule: functions stay under 60 lines, route tables aside. A function does one job a reader holds in one
  // screen; nested functions are measured on their own, and the outer one's span includes them.
  for (const { file, sf } of files) {
    const visit = (node) => {
      if (FUNCTION_KINDS.has(node.kind) && node.body) {
        const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
        const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
        const name = functionName(node);
        const span = last - first + 1;
        if (span > MAX_FUNCTION_LINES && !(name && ROUTE_TABLE.test(name))) {
          const what = name ? `function ${name}` : `anonymous ${ts.SyntaxKind[node.kind]}`;
          report(file, first, "function-length", `${what} spans ${span} lines (limit ${MAX_FUNCTION_LINES})`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }

  // Rule: imports between rooms only lean one way. A cycle between folders (of any length) means no layer
  // can be read, tested or changed without the others; the entry point wires everything and is imported by none.
  const edges = new Map(); // "from\0to" -> first example import
  const graph = new Map();
  for (const { file, imports } of files) {
    for (const imp of imports) {
      if (!inside(imp.target)) continue;
      if (path.relative(root, imp.target) === ENTRY) {
        report(
          file,
          imp.line,
          "entry-imported",
          `imports the entry point ${path.basename(root)}/${ENTRY} ("${imp.specifier}")`,
        );
        continue;
      }
      const from = roomOf(file);
      const to = roomOf(imp.target);
      if (from === to) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from).add(to);
      const key = `${from}\0${to}`;
      if (!edges.has(key)) edges.set(key, { file, ...imp });
    }
  }
  for (const scc of stronglyConnected(graph)) {
    if (scc.length < 2) continue;
    const cycle = scc.join(", ");
    for (const [key, ex] of [...edges].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [from, to] = key.split("\0");
      if (scc.includes(from) && scc.includes(to)) {
        report(ex.file, ex.line, "room-cycle", `${from} -> ${to} ("${ex.specifier}") closes a cycle of {${cycle}}`);
      }
    }
  }

  // Rule: route modules never import each other. Each registers its own routes; what two of them share
  // goes in a helper of src/routes/ (common.ts, meta.ts), so a route module can be read and moved alone.
  const routeUnits = new Set();
  for (const { file, sf } of files) {
    const unit = routeUnitOf(file);
    if (unit !== undefined && exportedFunctionNames(sf).some((n) => ROUTE_TABLE.test(n))) routeUnits.add(unit);
  }
  for (const { file, imports } of files) {
    const from = routeUnitOf(file);
    if (!routeUnits.has(from)) continue;
    for (const imp of imports) {
      const to = routeUnitOf(imp.target);
      if (to !== from && routeUnits.has(to)) {
        report(file, imp.line, "route-imports-route", `route module imports route module ${shown(imp.target)}`);
      }
    }
  }

  // Grouped by rule (a cycle's edges read together), then by file and line.
  const order = (v) => [RULES.indexOf(v.rule), v.file, v.line];
  return violations.sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : x[2] - y[2]);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const srcDir = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src");
  const violations = checkStructure(srcDir);
  for (const v of violations) console.error(`${v.file}:${v.line}  [${v.rule}] ${v.message}`);
  if (violations.length > 0) {
    console.error(`\ncheck:structure: ${violations.length} violation(s)`);
    process.exit(1);
  }
  console.log("check:structure: ok");
}
