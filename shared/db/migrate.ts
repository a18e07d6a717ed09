import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, readdirSync } from 'node:fs';
import { PACKAGE_ROOT } from '../config/config.ts';
import type { Logger } from '../logger.ts';

// Beside this file in the sources and in `npm run build`'s dist/; the compiled CLI runs this code from a
// bundle elsewhere (scripts/cli-build.js) and finds them in the checkout.
const MIGRATIONS_DIR = [path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations'), path.join(PACKAGE_ROOT, 'shared', 'db', 'migrations')].find((d) =>
  existsSync(d),
)!;

/** node-pg-migrate's advisory lock is per database; key it by schema so isolated schemas migrate in parallel. */
function lockValueFor(schema: string): number {
  return createHash('sha256').update(`pk-mcp:migrate:${schema}`).digest().readUInt32BE(0);
}

/**
 * Brings the schema up to the newest migration. API and workers both call this
 * at start; whoever loses the lock race waits and retries, then finds nothing to do.
 */
export async function migrateDatabase(
  options: { databaseUrl: string; schema: string },
  logger: Logger,
): Promise<string[]> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      // Loaded here: the CLI checks pendingMigrations() first and most commands never need it.
      const { runner } = await import('node-pg-migrate');
      const applied = await runner({
        databaseUrl: options.databaseUrl,
        dir: MIGRATIONS_DIR,
        direction: 'up',
        migrationsTable: 'pgmigrations',
        schema: options.schema,
        createSchema: true,
        checkOrder: true,
        lockValue: lockValueFor(options.schema),
        log: () => undefined,
        logger: { debug: () => undefined, info: () => undefined, warn: (m: string) => logger.warn(m), error: (m: string) => logger.error(m) },
      });
      const names = applied.map((m) => m.name);
      if (names.length > 0) logger.info({ schema: options.schema, migrations: names }, 'database migrated');
      return names;
    } catch (err) {
      const locked = err instanceof Error && err.message.includes('Another migration is already running');
      if (!locked || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 1000)));
    }
  }
}

/**
 * Whether `schema` lacks a migration this code has, read with one query instead of node-pg-migrate's
 * lock and checks: the CLI asks this before every command and runs migrateDatabase only when it must.
 */
export async function migrationsPending(query: (sql: string) => Promise<{ rows: Array<{ name: string }> }>, schema: string): Promise<boolean> {
  const wanted = readdirSync(MIGRATIONS_DIR).map((f) => f.replace(/\.[^.]+$/, ''));
  try {
    const applied = new Set((await query(`SELECT name FROM "${schema.replaceAll('"', '""')}".pgmigrations`)).rows.map((r) => r.name));
    return wanted.some((name) => !applied.has(name));
  } catch (err) {
    // 42P01 / 3F000: no migrations table or no schema yet.
    if ((err as { code?: string }).code === '42P01' || (err as { code?: string }).code === '3F000') return true;
    throw err;
  }
}
