import pg from 'pg';
import type { Logger } from '../logger.ts';
import type { FileSecret } from '../secrets/secret-file.ts';
import { parseIntoClientConfig } from 'pg-connection-string';
import { once, type StoreConnection } from './store.ts';

export interface PostgresConnection extends StoreConnection {
  pool: pg.Pool;
  schema: string;
  /** Runs `fn` in one transaction; rolls back on any error so nothing is half-written. */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /**
   * Follows a NOTIFY channel on a dedicated connection, opened on first use.
   * `state(true)` once listening, `state(false)` whenever notifications may
   * have been missed (connection lost; it reconnects on the next `listen`
   * call or after a pause) so callers drop what they derived from them.
   */
  listen(channel: string, handlers: { message(payload: string): void; state(listening: boolean): void }): void;
}

export interface PostgresOptions {
  url: string;
  /** Schema every connection works in (tests use one per test file). */
  schema: string;
  max?: number;
  /** The password as its file holds it now (DATABASE_PASSWORD_FILE): read for every new connection. */
  password?: FileSecret;
}

/** invalid_password: the role's password changed under us (a rotation), or the file's value is not the role's yet. */
const INVALID_PASSWORD = '28P01';
const AUTH_RETRIES = 8;

/**
 * Connection settings with the password from the file, when there is one. pg asks for a function password on
 * every new connection; the URL's own password must go, since pg prefers it over the option.
 */
function connectionSettings(options: PostgresOptions): pg.ClientConfig {
  if (!options.password) return { connectionString: options.url };
  const secret = options.password;
  // Parsed by pg's own parser: a connectionString would set `password` (to '' when the URL has none) over ours.
  return { ...parseIntoClientConfig(options.url), password: () => secret.value };
}

/**
 * Retries a connect the server refused with 28P01 after telling the secret (which re-reads its file, or takes
 * the pending value a rotation wrote before changing the role): Postgres holds one password per role, so
 * between a rotation's ALTER ROLE and the new file a connection may present the old one. Pooled connections
 * are not affected (the server checks passwords at connect only).
 */
async function connectWithRetry<T>(secret: FileSecret | undefined, connect: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const presented = secret?.value;
    try {
      return await connect();
    } catch (err) {
      if (!secret || (err as { code?: string }).code !== INVALID_PASSWORD || attempt >= AUTH_RETRIES) throw err;
      secret.authFailed(presented!);
      await new Promise((r) => setTimeout(r, Math.min(50 * attempt, 400)));
    }
  }
}

export function createPostgresConnection(options: PostgresOptions, logger: Logger): PostgresConnection {
  const settings = connectionSettings(options);
  const pool = new pg.Pool({
    ...settings,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30000,
    // search_path per connection, so every query (and every migration) lands in the configured schema.
    options: `-c search_path=${options.schema},public`,
  });
  // An idle client losing its server emits 'error' on the pool; unhandled it would kill the process.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres idle client error'));
  if (options.password) {
    // pool.query goes through pool.connect too, so this one place covers every query.
    const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
    pool.connect = ((callback?: (err: Error | undefined, client?: pg.PoolClient, done?: (release?: unknown) => void) => void) => {
      const connecting = connectWithRetry(options.password, connect);
      if (!callback) return connecting;
      connecting.then(
        (client) => callback(undefined, client, (release?: unknown) => client.release(release as boolean)),
        (err: Error) => callback(err),
      );
      return undefined;
    }) as typeof pool.connect;
  }

  const channels = new Map<string, Array<{ message(payload: string): void; state(listening: boolean): void }>>();
  let listener: pg.Client | null = null;
  let connecting: Promise<void> | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | null = null;

  const lost = (client: pg.Client) => {
    if (listener !== client) return;
    listener = null;
    for (const hs of channels.values()) for (const h of hs) h.state(false);
    client.end().catch(() => undefined);
    if (!closed && !retry) retry = setTimeout(() => ((retry = null), void connectListener()), 1000).unref();
  };
  const connectListener = (): Promise<void> =>
    (connecting ??= (async () => {
      if (closed || listener) return;
      const client = new pg.Client({ ...settings, connectionTimeoutMillis: 5000 });
      client.on('error', (err) => {
        logger.warn({ err: err.message }, 'postgres listener connection lost');
        lost(client);
      });
      client.on('end', () => lost(client));
      client.on('notification', (n) => {
        for (const h of channels.get(n.channel) ?? []) h.message(n.payload ?? '');
      });
      try {
        const presented = options.password?.value;
        await client.connect().catch((err: unknown) => {
          // A pg.Client connects once: the listener starts over in a second, with the value the file has then.
          if ((err as { code?: string }).code === INVALID_PASSWORD) options.password?.authFailed(presented!);
          throw err;
        });
        for (const channel of channels.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        if (closed) throw new Error('closed');
        listener = client;
        for (const hs of channels.values()) for (const h of hs) h.state(true);
      } catch (err) {
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
        if (!closed) logger.debug({ err: err instanceof Error ? err.message : err }, 'postgres listener not connected');
        if (!closed && !retry) retry = setTimeout(() => ((retry = null), void connectListener()), 1000).unref();
      }
    })().finally(() => (connecting = null)));

  return {
    pool,
    schema: options.schema,
    listen(channel, handlers) {
      const known = channels.has(channel);
      channels.set(channel, [...(channels.get(channel) ?? []), handlers]);
      if (listener && !known) {
        const client = listener;
        client.query(`LISTEN ${pg.escapeIdentifier(channel)}`).then(
          () => handlers.state(true),
          () => lost(client),
        );
      } else if (listener) {
        handlers.state(true);
      } else {
        void connectListener();
      }
    },
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
    close: once(async () => {
      closed = true;
      if (retry) clearTimeout(retry);
      await connecting;
      const client = listener;
      listener = null;
      if (client) {
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
      }
      await pool.end();
    }),
  };
}
