import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { Logger } from '../logger.ts';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

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
