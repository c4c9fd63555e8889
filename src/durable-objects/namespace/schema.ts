import type { Migration } from "../migrations";

/** Tables of a namespace's object; docs/storage.md describes each. Append only. */
export const NAMESPACE_MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: "namespace, keys, members, services, triggers, actions",
    sql: `
      CREATE TABLE namespace (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'organization')),
        created_at INTEGER NOT NULL
      );
      CREATE TABLE api_keys (
        uuid TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
      );
      CREATE TABLE members (
        username TEXT PRIMARY KEY,
        added_at INTEGER NOT NULL
      );
      CREATE TABLE memberships (
        organization TEXT PRIMARY KEY,
        added_at INTEGER NOT NULL
      );
      CREATE TABLE services (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        image_name TEXT,
        image_tag TEXT,
        stack TEXT,
        state TEXT NOT NULL,
        target_num_containers INTEGER NOT NULL,
        current_num_containers INTEGER NOT NULL DEFAULT 0,
        running_num_containers INTEGER NOT NULL DEFAULT 0,
        stopped_num_containers INTEGER NOT NULL DEFAULT 0,
        max_num_containers INTEGER NOT NULL,
        target_public TEXT,
        target_sealed TEXT,
        trigger_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        deployed_at INTEGER,
        started_at INTEGER,
        stopped_at INTEGER,
        destroyed_at INTEGER
      );
      CREATE INDEX services_by_name ON services (name, stack);
      CREATE TABLE triggers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        service_uuid TEXT NOT NULL,
        name TEXT NOT NULL,
        operation TEXT NOT NULL CHECK (operation IN ('REDEPLOY', 'SCALEUP')),
        created_at INTEGER NOT NULL
      );
      CREATE INDEX triggers_by_service ON triggers (service_uuid, seq);
      CREATE TABLE actions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        service_uuid TEXT NOT NULL,
        object TEXT NOT NULL,
        trigger_uuid TEXT,
        trigger_name TEXT,
        trigger_uri TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('redeploy', 'scaleup', 'scale')),
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        user TEXT,
        user_agent TEXT,
        ip TEXT,
        location TEXT,
        start_at INTEGER NOT NULL,
        end_at INTEGER,
        state TEXT NOT NULL,
        is_user_action INTEGER NOT NULL,
        scale_by INTEGER,
        body TEXT,
        logs TEXT NOT NULL DEFAULT '',
        dispatch TEXT NOT NULL CHECK (dispatch IN ('waiting', 'ready', 'queued', 'done')),
        touched_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
      );
      CREATE INDEX actions_open_by_service ON actions (service_uuid, state, seq);
      CREATE INDEX actions_by_dispatch ON actions (dispatch, seq);
      CREATE INDEX actions_by_object ON actions (object, seq);
    `,
  },
  {
    id: 2,
    name: "guard rails: rate limits, call counters, idempotency keys, coalescing, service operations",
    sql: `
      ALTER TABLE triggers ADD COLUMN rate_limit INTEGER NOT NULL DEFAULT 30;
      ALTER TABLE triggers ADD COLUMN call_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE triggers ADD COLUMN rejected_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE triggers ADD COLUMN last_called_at INTEGER;
      ALTER TABLE actions ADD COLUMN reuse_volumes INTEGER;
      ALTER TABLE actions ADD COLUMN joined_calls INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE actions ADD COLUMN retry_of TEXT;
      ALTER TABLE actions ADD COLUMN new_target INTEGER;
      ALTER TABLE actions ADD COLUMN remote_target INTEGER;
      ALTER TABLE actions ADD COLUMN attempt_started_at INTEGER;
      CREATE TABLE trigger_calls (
        trigger_uuid TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX trigger_calls_window ON trigger_calls (trigger_uuid, at);
      CREATE TABLE idempotency_keys (
        trigger_uuid TEXT NOT NULL,
        key TEXT NOT NULL,
        action_uuid TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (trigger_uuid, key)
      );
      CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
    `,
  },
  {
    id: 3,
    name: "dispatch deadlines: every action that may run has a due_at",
    sql: `
      ALTER TABLE actions ADD COLUMN due_at INTEGER;
      UPDATE actions SET due_at = touched_at WHERE dispatch = 'ready';
      UPDATE actions SET due_at = touched_at + 30000 WHERE dispatch = 'queued';
      DROP INDEX actions_by_dispatch;
      CREATE INDEX actions_due ON actions (due_at) WHERE dispatch IN ('ready', 'queued');
    `,
  },
  {
    id: 4,
    name: "hop count of actions, against loops of Docker Cloud targets",
    sql: `
      ALTER TABLE actions ADD COLUMN hops INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    id: 5,
    name: "per-action target state as opaque JSON, replacing the Docker Cloud target's remote_target",
    sql: `
      ALTER TABLE actions ADD COLUMN target_state TEXT;
      UPDATE actions SET target_state = json_object('remote_count', remote_target) WHERE remote_target IS NOT NULL;
      ALTER TABLE actions DROP COLUMN remote_target;
    `,
  },
  {
    id: 6,
    name: "agents: processes next to an orchestrator that dial out and perform operations",
    sql: `
      CREATE TABLE agents (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        connected_since INTEGER,
        last_seen INTEGER,
        report TEXT
      );
    `,
  },
  {
    id: 7,
    name: "agent jobs: how each action of an agent target stands with its agent",
    sql: `
      CREATE TABLE agent_jobs (
        action_uuid TEXT PRIMARY KEY,
        agent_uuid TEXT NOT NULL,
        waiting_since INTEGER,
        waiting_note TEXT,
        applied INTEGER NOT NULL DEFAULT 0,
        progress_lines INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    id: 8,
    name: "action logs a line per row with budgets; agent deliveries with fixed deadlines; agent replacements",
    sql: `
      CREATE TABLE action_logs (
        action_uuid TEXT NOT NULL,
        n INTEGER NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (action_uuid, n)
      ) WITHOUT ROWID;
      INSERT INTO action_logs (action_uuid, n, line)
        WITH RECURSIVE split (action_uuid, n, line, rest) AS (
          SELECT uuid, 0, '', logs || char(10) FROM actions WHERE logs != ''
          UNION ALL
          SELECT action_uuid, n + 1, substr(rest, 1, instr(rest, char(10)) - 1), substr(rest, instr(rest, char(10)) + 1)
          FROM split WHERE rest != ''
        )
        SELECT action_uuid, n, line FROM split WHERE n > 0;
      ALTER TABLE actions ADD COLUMN log_lines INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE actions ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE actions ADD COLUMN log_dropped INTEGER NOT NULL DEFAULT 0;
      UPDATE actions SET log_bytes = length(CAST(logs AS BLOB)),
        log_lines = (SELECT COUNT(*) FROM action_logs WHERE action_uuid = actions.uuid);
      ALTER TABLE actions DROP COLUMN logs;
      ALTER TABLE agent_jobs RENAME COLUMN progress_lines TO delivery_lines;
      ALTER TABLE agent_jobs ADD COLUMN delivery_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE agent_jobs ADD COLUMN delivery_dropped INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE agent_jobs ADD COLUMN acked INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE agent_jobs ADD COLUMN stale_reports INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE agent_jobs ADD COLUMN ends_at INTEGER;
      ALTER TABLE agents ADD COLUMN address TEXT;
      ALTER TABLE agents ADD COLUMN replaced TEXT;
    `,
  },
  {
    id: 9,
    name: "inventory: services an agent brings in, kept as the orchestrator runs them",
    sql: `
      ALTER TABLE services ADD COLUMN agent_uuid TEXT;
      ALTER TABLE services ADD COLUMN orchestrator_id TEXT;
      ALTER TABLE services ADD COLUMN present INTEGER;
      ALTER TABLE services ADD COLUMN update_state TEXT;
      ALTER TABLE services ADD COLUMN update_message TEXT;
      ALTER TABLE services ADD COLUMN synchronized_at INTEGER;
      CREATE INDEX services_by_agent ON services (agent_uuid, orchestrator_id) WHERE agent_uuid IS NOT NULL;
      CREATE INDEX services_by_agent_target ON services (
        json_extract(target_public, '$.agent'), json_extract(target_public, '$.swarm_service')
      ) WHERE json_extract(target_public, '$.type') = 'agent';
    `,
  },
  {
    id: 10,
    name: "autoredeploy: a registry push redeploys the services running the pushed image",
    sql: `
      ALTER TABLE services ADD COLUMN autoredeploy INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE services ADD COLUMN autoredeploy_policy TEXT NOT NULL DEFAULT 'tag'
        CHECK (autoredeploy_policy IN ('tag', 'patch', 'minor', 'major'));
      CREATE INDEX services_autoredeploy ON services (seq) WHERE autoredeploy = 1;
    `,
  },
  {
    id: 11,
    name: "registry hooks, their deliveries, and the push an autoredeploy action deploys",
    sql: `
      CREATE TABLE registry_hooks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        secret_sealed TEXT,
        previous_token TEXT,
        previous_secret_sealed TEXT,
        previous_until INTEGER,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX registry_hooks_previous ON registry_hooks (previous_token) WHERE previous_token IS NOT NULL;
      CREATE TABLE registry_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        hook_uuid TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('redeployed', 'ignored', 'refused')),
        reason TEXT,
        pushes TEXT NOT NULL,
        actions TEXT NOT NULL,
        status INTEGER NOT NULL,
        via_previous INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX registry_deliveries_by_hook ON registry_deliveries (hook_uuid, seq);
      ALTER TABLE actions ADD COLUMN push TEXT;
    `,
  },
  {
    id: 12,
    name: "agent targets on a plain Docker host: linking an inventory item by its container_service",
    sql: `
      CREATE INDEX services_by_agent_container ON services (
        json_extract(target_public, '$.agent'), json_extract(target_public, '$.container_service')
      ) WHERE json_extract(target_public, '$.type') = 'agent';
    `,
  },
  {
    id: 13,
    name: "a bounded audit: retention of finished actions, an index per list filter, counters for list totals",
    sql: `
      ALTER TABLE namespace ADD COLUMN action_retention_days INTEGER
        CHECK (action_retention_days IS NULL OR action_retention_days >= 1);
      DROP INDEX actions_by_object;
      CREATE INDEX actions_by_object ON actions (object, start_at);
      CREATE INDEX actions_by_state ON actions (state, start_at);
      CREATE INDEX actions_by_start ON actions (start_at);
      CREATE INDEX actions_finished ON actions (end_at) WHERE state IN ('Success', 'Failed', 'Canceled');
      CREATE INDEX actions_retries ON actions (retry_of) WHERE retry_of IS NOT NULL;
      CREATE INDEX idempotency_keys_by_action ON idempotency_keys (action_uuid);
      CREATE TABLE action_counts (
        filter TEXT NOT NULL CHECK (filter IN ('all', 'state', 'object')),
        value TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (filter, value)
      ) WITHOUT ROWID;
      INSERT INTO action_counts (filter, value, n) SELECT 'all', '', COUNT(*) FROM actions;
      INSERT INTO action_counts (filter, value, n) SELECT 'state', state, COUNT(*) FROM actions GROUP BY state;
      INSERT INTO action_counts (filter, value, n) SELECT 'object', object, COUNT(*) FROM actions GROUP BY object;
      CREATE TABLE action_hours (hour INTEGER PRIMARY KEY, n INTEGER NOT NULL);
      INSERT INTO action_hours (hour, n) SELECT CAST(start_at / 3600000 AS INTEGER), COUNT(*) FROM actions GROUP BY 1;
      CREATE TRIGGER action_counts_insert AFTER INSERT ON actions BEGIN
        UPDATE action_counts SET n = n + 1 WHERE filter = 'all' AND value = '';
        INSERT INTO action_counts (filter, value, n) VALUES ('state', NEW.state, 1)
          ON CONFLICT (filter, value) DO UPDATE SET n = n + 1;
        INSERT INTO action_counts (filter, value, n) VALUES ('object', NEW.object, 1)
          ON CONFLICT (filter, value) DO UPDATE SET n = n + 1;
        INSERT INTO action_hours (hour, n) VALUES (CAST(NEW.start_at / 3600000 AS INTEGER), 1)
          ON CONFLICT (hour) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER action_counts_state AFTER UPDATE OF state ON actions WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE action_counts SET n = n - 1 WHERE filter = 'state' AND value = OLD.state;
        INSERT INTO action_counts (filter, value, n) VALUES ('state', NEW.state, 1)
          ON CONFLICT (filter, value) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER action_counts_object AFTER UPDATE OF object ON actions WHEN OLD.object IS NOT NEW.object BEGIN
        UPDATE action_counts SET n = n - 1 WHERE filter = 'object' AND value = OLD.object;
        INSERT INTO action_counts (filter, value, n) VALUES ('object', NEW.object, 1)
          ON CONFLICT (filter, value) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER action_hours_start AFTER UPDATE OF start_at ON actions
        WHEN CAST(OLD.start_at / 3600000 AS INTEGER) IS NOT CAST(NEW.start_at / 3600000 AS INTEGER) BEGIN
        UPDATE action_hours SET n = n - 1 WHERE hour = CAST(OLD.start_at / 3600000 AS INTEGER);
        INSERT INTO action_hours (hour, n) VALUES (CAST(NEW.start_at / 3600000 AS INTEGER), 1)
          ON CONFLICT (hour) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER action_counts_reset AFTER DELETE ON namespace BEGIN
        UPDATE action_counts SET n = 0;
        DELETE FROM action_hours;
      END;
    `,
  },
];
