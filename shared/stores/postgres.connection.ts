import pg from 'pg';
import type { Logger } from '../logger.ts';
import { once, type StoreConnection } from './store.ts';

export interface PostgresConnection extends StoreConnection {
  pool: pg.Pool;
  schema: string;
  /** Runs `fn` in one transaction; rolls back on any error so nothing is half-written. */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
}

export interface PostgresOptions {
  url: string;
  /** Schema every connection works in (tests use one per test file). */
  schema: string;
  max?: number;
}

export function createPostgresConnection(options: PostgresOptions, logger: Logger): PostgresConnection {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30000,
    // search_path per connection, so every query (and every migration) lands in the configured schema.
    options: `-c search_path=${options.schema},public`,
  });
  // An idle client losing its server emits 'error' on the pool; unhandled it would kill the process.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres idle client error'));

  return {
    pool,
    schema: options.schema,
    async ping() {
      await pool.query('SELECT 1');
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: once(() => pool.end()),
  };
}
