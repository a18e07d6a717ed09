import { loadConfig } from '../../shared/config/config.ts';
import { migrateDatabase, migrationsPending } from '../../shared/db/migrate.ts';
import { AppError } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import { createPlatform, type Platform } from '../../shared/platform.ts';

/**
 * Builds the platform for one CLI command and always closes it, so the process can exit.
 * Brings the schema up to date first: the CLI is often run before the API or workers have
 * ever started and migrated it (idempotent, under the migration lock).
 */
/** The CLI's logger: warnings and worse, to stderr (stdout is the command's answer). */
export const cliLogger = () => createLogger({ logLevel: process.env.LOG_LEVEL ?? 'warn', logPretty: false }, { destination: 2 });

export async function withPlatform<T>(fn: (platform: Platform) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const logger = cliLogger();
  const platform = createPlatform(config, logger);
  try {
    // One query says whether the schema is current; node-pg-migrate (its lock, its checks) only when it is not.
    if (await migrationsPending((sql) => platform.stores.postgres.pool.query(sql), config.databaseSchema)) {
      await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
    }
    return await fn(platform);
  } finally {
    await platform.close();
  }
}

export const list = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

/**
 * Option parser for a whole number in [min, max]. It throws an AppError, so a bad value ends the
 * command with one line on stderr and exit code 2, before any store is touched.
 */
export const wholeNumber = (flag: string, min: number, max: number) => (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new AppError(400, 'invalid_option', `${flag} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return n;
};

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** Prints rows under a header in columns padded to the widest cell. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}
