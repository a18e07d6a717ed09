import type { PostgresConnection } from './postgres.connection.ts';

export type AuditResult = 'ok' | 'failed' | 'refused';

export interface AuditInput {
  /** Who acted: a token's name, `oidc:<subject>`, 'anonymous' (no valid credentials), 'cli', or 'schedule:<name>'. */
  actor: string;
  /** What was done, dotted: `backup.create`, `backup.restore`, `secret.rotate`, `token.create`… */
  action: string;
  target?: string | null;
  result?: AuditResult;
  durationMs?: number | null;
  /** Anything else worth keeping (counts, file names, the error, the reason of a refusal). Never a secret. */
  details?: Record<string, unknown>;
  at?: Date;
  /** Where the request came from (the client's address as the API saw it); null for the CLI and jobs. */
  source?: string | null;
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
  source: string | null;
}

export interface AuditQuery {
  since?: Date;
  actor?: string;
  result?: AuditResult;
  /** An action (`backup.create`) or a family of them (`backup`). */
  action?: string;
  limit?: number;
}

/** The audit trail (`audit_log`): one row per admin action and maintenance job, newest first when read. */
export function createAuditRepository(pg: PostgresConnection) {
  return {
    async record(entry: AuditInput): Promise<void> {
      await pg.pool.query(
        `INSERT INTO audit_log (at, actor, action, target, result, duration_ms, details, source)
         VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7, $8)`,
        [entry.at ?? null, entry.actor, entry.action, entry.target ?? null, entry.result ?? 'ok', entry.durationMs ?? null, entry.details ?? {}, entry.source ?? null],
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
        source: string | null;
      }>(
        `SELECT id, at, actor, action, target, result, duration_ms, details, source FROM audit_log
          WHERE ($1::timestamptz IS NULL OR at >= $1)
            AND ($2::text IS NULL OR actor = $2)
            AND ($3::text IS NULL OR action = $3 OR action LIKE $3 || '.%')
            AND ($5::text IS NULL OR result = $5)
          ORDER BY at DESC, id DESC
          LIMIT $4`,
        [query.since ?? null, query.actor ?? null, query.action ?? null, Math.min(Math.max(query.limit ?? 100, 1), 10_000), query.result ?? null],
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
        source: r.source,
      }));
    },

    /**
     * Deletes rows older than `before` (the retention period), in batches so a first prune of a long trail
     * does not hold one long transaction; returns how many went.
     */
    async prune(before: Date, batch = 10_000): Promise<number> {
      let total = 0;
      for (;;) {
        const { rowCount } = await pg.pool.query(
          `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)`,
          [before, batch],
        );
        total += rowCount ?? 0;
        if ((rowCount ?? 0) < batch) return total;
      }
    },
  };
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;

/**
 * Keeps the audit trail to `retentionDays` (0: for ever): prunes at once, then every `intervalMs`. Every
 * API process runs it; the deletes are idempotent, so replicas need no coordination.
 */
export function scheduleAuditRetention(
  audit: Pick<AuditRepository, 'prune'>,
  options: { retentionDays: number; intervalMs?: number; now?: () => Date; onPruned?: (count: number) => void; onError?: (err: unknown) => void },
): { close(): void; run(): Promise<number> } {
  const clock = options.now ?? (() => new Date());
  const run = async (): Promise<number> => {
    if (options.retentionDays <= 0) return 0;
    const count = await audit.prune(new Date(clock().getTime() - options.retentionDays * 86_400_000));
    if (count > 0) options.onPruned?.(count);
    return count;
  };
  const tick = () => void run().catch((err) => options.onError?.(err));
  if (options.retentionDays <= 0) return { close: () => undefined, run };
  tick();
  const timer = setInterval(tick, options.intervalMs ?? 3_600_000).unref();
  return { close: () => clearInterval(timer), run };
}
