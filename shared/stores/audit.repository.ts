import type { PostgresConnection } from './postgres.connection.ts';

export type AuditResult = 'ok' | 'failed' | 'refused';

export interface AuditInput {
  /** Who acted: a token's name, 'cli', or 'schedule:<name>' for a scheduled job. */
  actor: string;
  /** What was done, dotted: `backup.create`, `backup.restore`, `secret.rotate`, `token.create`… */
  action: string;
  target?: string | null;
  result?: AuditResult;
  durationMs?: number | null;
  /** Anything else worth keeping (counts, file names, the error). Never a secret. */
  details?: Record<string, unknown>;
  at?: Date;
}

export interface AuditEntry {
  id: number;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  result: AuditResult;
  durationMs: number | null;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  since?: Date;
  actor?: string;
  /** An action (`backup.create`) or a family of them (`backup`). */
  action?: string;
  limit?: number;
}

/** The audit trail (`audit_log`): one row per admin action and maintenance job, newest first when read. */
export function createAuditRepository(pg: PostgresConnection) {
  return {
    async record(entry: AuditInput): Promise<void> {
      await pg.pool.query(
        `INSERT INTO audit_log (at, actor, action, target, result, duration_ms, details) VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7)`,
        [entry.at ?? null, entry.actor, entry.action, entry.target ?? null, entry.result ?? 'ok', entry.durationMs ?? null, entry.details ?? {}],
      );
    },

    /**
     * Times `work` and records its outcome: `ok` with the details it returns, or `failed` with the error's
     * message (then rethrows). The row is written even when the work fails; a failure to write it is not
     * allowed to hide the work's own result.
     */
    async timed<T>(entry: Omit<AuditInput, 'result' | 'durationMs'>, work: () => Promise<T>, detailsOf?: (value: T) => Record<string, unknown>): Promise<T> {
      const started = performance.now();
      try {
        const value = await work();
        await this.record({ ...entry, result: 'ok', durationMs: Math.round(performance.now() - started), details: { ...entry.details, ...detailsOf?.(value) } }).catch(() => undefined);
        return value;
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        const refused = (err as { statusCode?: number }).statusCode !== undefined && (err as { statusCode: number }).statusCode < 500;
        await this.record({ ...entry, result: refused ? 'refused' : 'failed', durationMs: Math.round(performance.now() - started), details: { ...entry.details, error } }).catch(() => undefined);
        throw err;
      }
    },

    async list(query: AuditQuery = {}): Promise<AuditEntry[]> {
      const { rows } = await pg.pool.query<{
        id: string;
        at: Date;
        actor: string;
        action: string;
        target: string | null;
        result: AuditResult;
        duration_ms: number | null;
        details: Record<string, unknown>;
      }>(
        `SELECT id, at, actor, action, target, result, duration_ms, details FROM audit_log
          WHERE ($1::timestamptz IS NULL OR at >= $1)
            AND ($2::text IS NULL OR actor = $2)
            AND ($3::text IS NULL OR action = $3 OR action LIKE $3 || '.%')
          ORDER BY at DESC, id DESC
          LIMIT $4`,
        [query.since ?? null, query.actor ?? null, query.action ?? null, Math.min(Math.max(query.limit ?? 100, 1), 10_000)],
      );
      return rows.map((r) => ({
        id: Number(r.id),
        at: r.at,
        actor: r.actor,
        action: r.action,
        target: r.target,
        result: r.result,
        durationMs: r.duration_ms,
        details: r.details,
      }));
    },
  };
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;
