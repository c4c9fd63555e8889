import { DurableObject } from "cloudflare:workers";
import { fail, ok, type Result } from "../domain/result";
import {
  MAX_LIVE_TICKETS_PER_USER,
  newTicket,
  openCredentials,
  STREAM_TICKET_SECONDS,
  sealCredentials,
  shardOf,
  type TicketCredentials,
  ticketId,
  ticketShard,
} from "../domain/stream-ticket";
import { migrate } from "./migrations";

type TicketRow = { namespace: string; sealed: string; expires_at: number };

/**
 * Stream tickets (domain/stream-ticket.ts), sharded by user: 256 objects, each holding the unused
 * tickets of the users that hash to it. A ticket lives until it is redeemed or expires; expired
 * rows go at the next issue or redemption in the shard.
 */
export class StreamTickets extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage.sql, [
        {
          id: 1,
          name: "tickets",
          sql: `CREATE TABLE tickets (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            namespace TEXT NOT NULL,
            sealed TEXT NOT NULL,
            expires_at INTEGER NOT NULL
          )`,
        },
        { id: 2, name: "tickets_by_user", sql: "CREATE INDEX tickets_by_user ON tickets (username, expires_at)" },
      ]);
    });
  }

  /** Stores a ticket's row; refused while the user holds too many unused ones. */
  issue(row: TicketRow & { id: string; username: string }, now: number): Result<null> {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM tickets WHERE expires_at <= ?", now);
    const live = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM tickets WHERE username = ?", row.username).one().n;
    if (live >= MAX_LIVE_TICKETS_PER_USER) {
      return fail(
        "rate_limited",
        `a user may hold at most ${MAX_LIVE_TICKETS_PER_USER} unused stream tickets; use one, or wait for them to expire`,
        STREAM_TICKET_SECONDS,
      );
    }
    sql.exec(
      "INSERT INTO tickets (id, username, namespace, sealed, expires_at) VALUES (?, ?, ?, ?, ?)",
      row.id,
      row.username,
      row.namespace,
      row.sealed,
      row.expires_at,
    );
    return ok(null);
  }

  /** Takes a ticket's row away (a ticket works once, used or not), or null: unknown or expired. */
  redeem(id: string, now: number): TicketRow | null {
    const sql = this.ctx.storage.sql;
    const row = sql
      .exec<TicketRow>("DELETE FROM tickets WHERE id = ? RETURNING namespace, sealed, expires_at", id)
      .toArray()[0];
    sql.exec("DELETE FROM tickets WHERE expires_at <= ?", now);
    return row && row.expires_at > now ? row : null;
  }
}

const shardStub = (env: Env, shard: string): DurableObjectStub<StreamTickets> =>
  env.STREAM_TICKETS.getByName(`stream-tickets-${shard}`);

export type IssuedTicket = { ticket: string; namespace: string; expires_at: number };

/** A new ticket for `creds` (already checked) to open one stream of `namespace`. */
export async function issueStreamTicket(
  env: Env,
  creds: TicketCredentials,
  namespace: string,
  now = Date.now(),
): Promise<Result<IssuedTicket>> {
  const ticket = await newTicket(creds.username);
  const expires_at = now + STREAM_TICKET_SECONDS * 1000;
  const row = {
    id: await ticketId(ticket),
    username: creds.username,
    namespace,
    sealed: await sealCredentials(ticket, creds),
    expires_at,
  };
  const stored = await shardStub(env, await ticketShard(creds.username)).issue(row, now);
  return stored.ok ? ok({ ticket, namespace, expires_at }) : stored;
}

/** What a ticket was issued for, once: null for a ticket unknown, used, expired or malformed. */
export async function redeemStreamTicket(
  env: Env,
  ticket: string,
  now = Date.now(),
): Promise<{ namespace: string; creds: TicketCredentials } | null> {
  const shard = shardOf(ticket);
  if (shard === null) return null;
  const row = await shardStub(env, shard).redeem(await ticketId(ticket), now);
  if (!row) return null;
  const creds = await openCredentials(ticket, row.sealed);
  return creds ? { namespace: row.namespace, creds } : null;
}
