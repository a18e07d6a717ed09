import { displayUrl } from '../display-url.ts';
import { loadConfig } from '../../shared/config/config.ts';
import { migrateDatabase, migrationsPending } from '../../shared/db/migrate.ts';
import { Option } from 'commander';
import { AppError, withTimeout } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import type { Platform } from '../../shared/platform.ts';
import { ALL_PARTS, openCliPlatform, type CliPart } from './cli-platform.ts';

/** The CLI's logger: warnings and worse, to stderr (stdout is the command's answer). */
export const cliLogger = () => createLogger({ logLevel: process.env.LOG_LEVEL ?? 'warn', logPretty: false }, { destination: 2 });

/**
 * Builds the platform for one CLI command (only the `parts` it uses) and always closes it, so the
 * process can exit. Brings the schema up to date first: the CLI is often run before the API or workers
 * have ever started and migrated it (idempotent, under the migration lock).
 */
export async function withPlatform<T>(fn: (platform: Platform) => Promise<T>, parts: readonly CliPart[] = ALL_PARTS): Promise<T> {
  const config = loadConfig();
  const logger = cliLogger();
  const platform = await openCliPlatform(config, logger, parts);
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

/** `--give-up-after <seconds>` (or PK_MCP_GIVE_UP_AFTER) of the commands that wait: how long a store or the workers may stay away. */
export const giveUpOption = () =>
  new Option('--give-up-after <seconds>', 'with --wait: stop waiting (exit 3) when Redis, Postgres or every worker stays unreachable this long (1-86400)')
    .env('PK_MCP_GIVE_UP_AFTER')
    .default(30)
    .argParser(wholeNumber('--give-up-after', 1, 86_400));

/** A waiting command gave up: printed as one line, exit code 3 (the job itself is left as it is). */
export class GaveUpError extends AppError {
  constructor(message: string) {
    super(503, 'gave_up', message);
  }
}

/**
 * Bounds a waiting command's polls. Redis commands do not fail while the client reconnects (BullMQ needs
 * `maxRetriesPerRequest: null`), they wait; so each poll gets a deadline, failures are retried, and once
 * nothing has answered for `giveUpAfterMs` the wait ends with one line naming what is unreachable and why.
 * `workers()` says whether anything is there to do the job: none for as long also ends the wait.
 */
export function boundedWait(platform: Platform, options: { giveUpAfterMs: number; jobId: string; queue: string }) {
  const redis = platform.stores.redis.client;
  let redisError = '';
  const onError = (err: Error) => (redisError = err.message);
  redis.on('error', onError);
  let lastAnswer = Date.now();
  let lastWorker = Date.now();
  const seconds = Math.round(options.giveUpAfterMs / 1000);
  const leftAsItIs = `job ${options.jobId} is left as it is (follow it with \`pk-mcp jobs\`)`;
  return {
    giveUpAfterMs: options.giveUpAfterMs,
    async poll<T>(what: string, fn: () => Promise<T>): Promise<T> {
      for (;;) {
        try {
          const value = await withTimeout(fn(), Math.min(5000, options.giveUpAfterMs), what);
          lastAnswer = Date.now();
          return value;
        } catch (err) {
          if (err instanceof AppError) throw err;
          if (Date.now() - lastAnswer >= options.giveUpAfterMs) {
            const cause = redis.status !== 'ready' ? `Redis at ${displayUrl(platform.config.redisUrl)} is unreachable (${redisError || redis.status})` : err instanceof Error ? err.message : String(err);
            throw new GaveUpError(`gave up waiting after ${seconds} s: ${cause}; ${leftAsItIs}`);
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
    /** Call once per poll with the queue's worker count and whether the job is being worked on now. */
    workers(count: number, active: boolean): void {
      if (count > 0 || active) lastWorker = Date.now();
      else if (Date.now() - lastWorker >= options.giveUpAfterMs) {
        throw new GaveUpError(`gave up waiting after ${seconds} s: no worker is running on the ${options.queue} queue (start the platform with \`npm start\`); ${leftAsItIs}`);
      }
    },
    close(): void {
      redis.off('error', onError);
    },
  };
}

