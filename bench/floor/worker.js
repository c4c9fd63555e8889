// The physical floor of an accepted trigger call on this runtime: a Worker of
// the benchmark's own (not a route of the product) whose one HTTP request makes
// one RPC to a SQLite-backed Durable Object, which inserts one row, and then
// answers. Every accepted call pays at least this much: it must reach its
// namespace's object and commit a write there before it may answer 202.
//
//   POST /<object name>/<key>   body stored as is → 202 {"id":<row id>}
//
// Run by bench/run.mjs in the same Miniflare instance (same workerd process) as
// the product's Worker, as a second worker with its own direct socket.
import { DurableObject } from "cloudflare:workers";

export class FloorObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    // Once per object: synchronous, so it is done before the first RPC runs.
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS writes (id INTEGER PRIMARY KEY, key TEXT NOT NULL, body TEXT, created_at INTEGER NOT NULL)",
    );
  }

  /** One statement; the answer leaves once the write is committed (the object's output gate). */
  write(key, body) {
    const cursor = this.ctx.storage.sql.exec(
      "INSERT INTO writes (key, body, created_at) VALUES (?, ?, ?) RETURNING id",
      key,
      body,
      Date.now(),
    );
    return cursor.one().id;
  }
}

export default {
  async fetch(request, env) {
    if (request.method !== "POST") return new Response("POST only\n", { status: 405 });
    const [, name, key = ""] = new URL(request.url).pathname.split("/");
    if (!name) return new Response("POST /<object name>/<key>\n", { status: 404 });
    // The body is read and stored, as a call stores its body in its action.
    const body = await request.text();
    const id = await env.FLOOR.getByName(name).write(key, body || null);
    return Response.json({ id }, { status: 202 });
  },
};
