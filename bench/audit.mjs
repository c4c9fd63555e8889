// `node bench/audit.mjs`: the audit phase of the benchmark alone (bench/audit-phase.mjs), without the
// rest of `npm run bench`. Prints its figures as JSON. Settings (environment): AUDIT_SIZE actions in
// the large namespace (default 1,000,000), AUDIT_SAMPLES requests per list query (200),
// AUDIT_BUDGET_MS how long retention may run before the phase reports what it saw (120,000).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { auditPhase } from "./audit-phase.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const started = performance.now();
const result = await auditPhase({
  root: ROOT,
  size: Number(process.env.AUDIT_SIZE ?? 1_000_000),
  samples: Number(process.env.AUDIT_SAMPLES ?? 200),
  budgetMs: Number(process.env.AUDIT_BUDGET_MS ?? 120_000),
});
console.log(JSON.stringify({ ...result, phase_s: (performance.now() - started) / 1000 }, null, 2));
