import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import neo4j from 'neo4j-driver';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Platform } from '../platform.ts';
import type { FileSecret } from './secret-file.ts';
import { parseIntoClientConfig } from 'pg-connection-string';
import { SOURCE_SECRET_NAMES, type SecretSources, type SourceKind } from './secret-sources.ts';

/**
 * Every API and worker process runs one agent. It keeps a heartbeat in Redis saying which value (by
 * fingerprint) of each file-backed secret the process uses, and re-reads the files when a rotation publishes a
 * reload, or when a heartbeat finds a file changed (a process that missed the message). A new value is adopted
 * only once this process has seen the store accept it; otherwise the process keeps the old one and reports
 * why, and the rotation rolls back. The rotation job reads the heartbeats to know when every live process has
 * moved (secret-rotation.service.ts).
 */

export const HEARTBEAT_MS = 2000;
/** A process not heard from for this long is taken as gone: it reads the files afresh when it starts again. */
export const PROCESS_STALE_MS = 3 * HEARTBEAT_MS;

/** The connections that authenticate with a secret; a process without a file for one uses a fixed value. */
const STORE_KINDS = ['postgres', 'neo4j', 'redis'] as const satisfies readonly SourceKind[];

export const agentKeys = (queuePrefix: string) => ({
  /** Sorted set: process id → time of its last heartbeat (ms). */
  processes: `${queuePrefix}:secrets:processes`,
  /** Hash: process id → its report (JSON). */
  reports: `${queuePrefix}:secrets:reports`,
  channel: `${queuePrefix}:secrets:reload`,
});

export interface ProcessReport {
  id: string;
  role: string;
  pid: number;
  host: string;
  startedAt: string;
  /** Secret name → fingerprint of the value this process uses now. */
  secrets: Record<string, string>;
  /** Secret name → why this process could not use the value its file holds (it keeps the old one). */
  errors: Record<string, string>;
  /** Stores this process authenticates to with a fixed value (no `*_FILE`): rotating their secret would cut it off. */
  fixed: Array<(typeof SOURCE_SECRET_NAMES)[keyof typeof SOURCE_SECRET_NAMES]>;
}

export interface SecretAgent {
  id: string;
  /** Re-reads every secret file now and reports (what a reload message does). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** Fresh connections that check whether a store accepts a value, as this process would present it. */
export function storeCheckers(config: Pick<Config, 'databaseUrl' | 'neo4jUri' | 'neo4jUser' | 'redisUrl'>): Record<SourceKind, (value: string) => Promise<void>> {
  return {
    async postgres(value) {
      const client = new pg.Client({ ...parseIntoClientConfig(config.databaseUrl), password: value, connectionTimeoutMillis: 5000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async neo4j(value) {
      const driver = neo4j.driver(config.neo4jUri, neo4j.auth.basic(config.neo4jUser, value), { connectionTimeout: 5000 });
      try {
        if (!(await driver.verifyAuthentication())) throw new Error(`Neo4j refused the password of user ${config.neo4jUser}`);
      } finally {
        await driver.close();
      }
    },
    async redis(value) {
      // AUTH by hand on a connection that authenticates as nobody: with a `default` user that needs no
      // password, a refused AUTH inside ioredis's connect would still leave a working (default) connection.
      const url = new URL(config.redisUrl);
      const user = decodeURIComponent(url.username) || 'default';
      url.username = '';
      url.password = '';
      const client = new Redis(url.toString(), {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
        connectTimeout: 5000,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.call('AUTH', user, value);
      } finally {
        client.disconnect();
      }
    },
    async webhook() {
      // Nothing to ask: GitHub and GitLab sign with whatever they were given; both values are accepted meanwhile.
    },
  };
}

export function startSecretAgent(
  platform: Pick<Platform, 'config' | 'stores' | 'secrets'>,
  logger: Logger,
  options: {
    role: string;
    heartbeatMs?: number;
    /** Awaited before each re-read (tests hold a process back with it, as a slow or stuck process would be). */
    beforeRefresh?: () => Promise<void>;
  },
): SecretAgent {
  const { config, stores, secrets } = platform;
  const keys = agentKeys(config.queuePrefix);
  const id = `${options.role}:${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const startedAt = new Date().toISOString();
  const checkers = storeCheckers(config);
  const errors: Record<string, string> = {};
  const redis = stores.redis.client;
  const log = logger.child({ component: 'secrets' });
  let closed = false;

  const sources = Object.entries(secrets).filter((e): e is [SourceKind, FileSecret] => e[1] !== undefined);

  const report = async () => {
    if (closed) return;
    const body: ProcessReport = {
      id,
      role: options.role,
      pid: process.pid,
      host: hostname(),
      startedAt,
      secrets: Object.fromEntries(sources.map(([, s]) => [s.name, s.fingerprint])),
      errors: { ...errors },
      fixed: STORE_KINDS.filter((k) => !secrets[k]).map((k) => SOURCE_SECRET_NAMES[k]),
    };
    await redis.multi().zadd(keys.processes, Date.now(), id).hset(keys.reports, id, JSON.stringify(body)).exec();
  };

  const checkOne = async (kind: SourceKind, source: FileSecret) => {
    const onDisk = source.peek();
    if (onDisk === undefined || onDisk === source.value) {
      delete errors[source.name];
      return;
    }
    try {
      await checkers[kind](onDisk);
      source.adopt(onDisk);
      delete errors[source.name];
      log.info({ secret: source.name, fingerprint: source.fingerprint }, 'secret reloaded from its file');
    } catch (err) {
      errors[source.name] = errorMessage(err);
      log.warn({ secret: source.name, err: errors[source.name] }, 'the new value of a secret does not work from this process: keeping the old one');
    }
  };

  // One refresh at a time; a request arriving meanwhile runs once after it.
  let running: Promise<void> | null = null;
  let again = false;
  const refresh = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await options.beforeRefresh?.();
        for (const [kind, source] of sources) await checkOne(kind, source);
        await report();
      } while (again && !closed);
    })()
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'secret refresh failed'))
      .finally(() => (running = null));
    return running;
  };

  const subscriber = stores.redis.duplicate({ maxRetriesPerRequest: null });
  subscriber.on('message', (channel) => {
    if (channel === keys.channel) void refresh();
  });
  // Subscribed again by ioredis after every reconnect; a message missed meanwhile is made up by the heartbeat.
  void subscriber.subscribe(keys.channel).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'could not subscribe to secret reloads'));

  // The heartbeat says the process is alive whatever a refresh is doing: a process stuck re-reading its
  // secrets shows as alive and behind, which is what makes a rotation wait for it (and roll back), not skip it.
  const timer = setInterval(() => {
    report().catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'secret heartbeat failed'));
    void refresh();
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  timer.unref();
  void report().catch(() => undefined);
  void refresh();

  return {
    id,
    refresh,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      // Not waiting on a refresh in flight: it may be what hangs; it reports nothing once closed.
      await redis.multi().zrem(keys.processes, id).hdel(keys.reports, id).exec().catch(() => undefined);
      subscriber.disconnect();
    },
  };
}

/** Processes heard from within PROCESS_STALE_MS, with their reports; older entries are dropped on the way. */
export async function liveProcesses(redis: Redis, queuePrefix: string, now = Date.now()): Promise<ProcessReport[]> {
  const keys = agentKeys(queuePrefix);
  const stale = await redis.zrangebyscore(keys.processes, '-inf', `(${now - PROCESS_STALE_MS}`);
  if (stale.length > 0) await redis.multi().zrem(keys.processes, ...stale).hdel(keys.reports, ...stale).exec();
  const ids = await redis.zrangebyscore(keys.processes, now - PROCESS_STALE_MS, '+inf');
  if (ids.length === 0) return [];
  const bodies = await redis.hmget(keys.reports, ...ids);
  return bodies.flatMap((b) => (b ? [JSON.parse(b) as ProcessReport] : []));
}

/** Asks every process to re-read its secret files now. */
export async function publishReload(redis: Redis, queuePrefix: string, secret: string): Promise<void> {
  await redis.publish(agentKeys(queuePrefix).channel, secret);
}
