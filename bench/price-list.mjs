// Cloudflare's published prices for what the call path uses, Workers Paid plan (Standard usage model),
// in USD, as read on 2026-12-08 from Cloudflare's pricing pages:
//   - Workers: https://developers.cloudflare.com/workers/platform/pricing/
//     (source: cloudflare/cloudflare-docs, src/content/docs/workers/platform/pricing.mdx,
//     commit 07acbb6612b5cefa1f8348106c158b0814a2972a)
//   - Durable Objects: https://developers.cloudflare.com/durable-objects/platform/pricing/
//     (source: src/content/partials/durable-objects/durable-objects-pricing.mdx,
//     commit 07e200b7edc6c86d5a900ae27b27b0b5ee368ecf; SQLite storage is billed since January 2026,
//     per the Durable Objects release notes)
//   - Queues: https://developers.cloudflare.com/queues/platform/pricing/
//     (source: src/content/partials/workers/queues_pricing.mdx, commit 96996fd3265906775d95fd09931d45e723704c20)
// `included` is each plan's monthly allowance: left out of the per-million figures, used by the
// monthly bill at a stated volume (cost.mjs, monthlyBill).
export const PRICE_LIST = {
  read_on: "2026-12-08",
  plan: "Workers Paid (Standard usage model), USD",
  sources: [
    "https://developers.cloudflare.com/workers/platform/pricing/",
    "https://developers.cloudflare.com/durable-objects/platform/pricing/",
    "https://developers.cloudflare.com/queues/platform/pricing/",
  ],
  plan_minimum_usd_per_month: 5,
  workers: {
    // Inbound requests (a WebSocket upgrade is one; subrequests are not billed); queue consumer
    // invocations are counted here too.
    requests_usd_per_million: 0.3,
    cpu_ms_usd_per_million: 0.02,
    included: { requests: 10_000_000, cpu_ms: 30_000_000 },
  },
  durable_objects: {
    // HTTP requests, RPC sessions (every method call on a stub is one), alarm invocations, and incoming
    // WebSocket messages at 20:1; outgoing messages and auto-responded pings are free.
    requests_usd_per_million: 0.15,
    websocket_messages_per_request: 20,
    // Wall-clock time while active and not hibernating, billed at 128 MB whatever is used.
    gb_s_usd_per_million: 12.5,
    memory_gb: 0.128,
    // SQLite backend: rows read and written as the cursor counts them (setAlarm is one row written,
    // deletes are rows written); stored data in GB-month (30-day month, 10^9 bytes).
    rows_read_usd_per_million: 0.001,
    rows_written_usd_per_million: 1.0,
    stored_gb_month_usd: 0.2,
    included: { requests: 1_000_000, gb_s: 400_000, rows_read: 25_000_000_000, rows_written: 50_000_000, gb: 5 },
  },
  queues: {
    // One operation per 64 KB (of 1,000 bytes) written, read or deleted; ~100 bytes of metadata each.
    operations_usd_per_million: 0.4,
    included: { operations: 1_000_000 },
  },
};
