import { once as onceEvent } from 'node:events';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTopology } from '../config/config.ts';
import type { Logger } from '../logger.ts';
import type { FileSecret } from '../secrets/secret-file.ts';
import { once, type StoreConnection } from './store.ts';

export interface RedisConnection extends StoreConnection {
  client: Redis;
  /** A new connection with the same settings (BullMQ workers need their own blocking connections). */
  duplicate(overrides?: Partial<RedisOptions>): Redis;
}

/**
 * `maxRetriesPerRequest: null` is what BullMQ requires of worker connections;
 * the shared client keeps it too so a Redis restart does not fail queued
 * commands, while ping() has its own timeout at the caller.
 */
export function createRedisConnection(url: string, logger: Logger, password?: FileSecret, topology: RedisTopology = { mode: 'standalone' }): RedisConnection {
  const options: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5000),
  };
  const client = password ? followSecret(openClient(url, options, topology), password) : openClient(url, options, topology);
  let lastError = '';
  client.on('error', (err: Error) => {
    // Without a listener ioredis would crash the process; log each distinct cause once per outage.
    if (err.message !== lastError) logger.warn({ err: err.message }, 'redis connection error');
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) logger.info('redis connection restored');
    lastError = '';
  });
  const owned: Redis[] = [client];

  return {
    client,
    duplicate(overrides = {}) {
      const copy = client.duplicate(overrides);
      copy.on('error', () => undefined);
      owned.push(copy);
      return copy;
    },
    async ping() {
      // Still making its first connection: wait for it (the caller bounds the wait). 'error' rejects.
      if (['wait', 'connecting', 'connect'].includes(client.status)) await onceEvent(client, 'ready');
      if (client.status !== 'ready') {
        throw new Error(`not connected (${client.status}${lastError ? `: ${lastError}` : ''})`);
      }
      const answer = await client.ping();
      if (answer !== 'PONG') throw new Error(`unexpected PING answer: ${answer}`);
    },
    close: once(async () => {
      await Promise.all(owned.map(closeClient));
    }),
  };
}

/**
 * One server from the URL; or the master the Sentinels name (the URL then gives only user, password and
 * database; ioredis asks the Sentinels again after a failover); or a Cluster client, which BullMQ accepts where
 * it takes a Redis (same commands, `duplicate` included; every queue's keys share a slot through the prefix's
 * hash tag, which the config requires).
 */
function openClient(url: string, options: RedisOptions, topology: RedisTopology): Redis {
  if (topology.mode === 'sentinel') return new Redis(url, { ...options, sentinels: topology.sentinels, name: topology.masterName });
  if (topology.mode === 'cluster') {
    const u = new URL(url);
    const auth = { ...(u.username ? { username: decodeURIComponent(u.username) } : {}), ...(u.password ? { password: decodeURIComponent(u.password) } : {}) };
    return new Cluster(topology.nodes, { redisOptions: { ...options, ...auth }, clusterRetryStrategy: options.retryStrategy, enableReadyCheck: true }) as unknown as Redis;
  }
  return new Redis(url, options);
}

/**
 * Makes `client`, and every copy made from it (ours, and the blocking connections BullMQ duplicates for its
 * workers), authenticate with the file's current password (REDIS_PASSWORD_FILE) on every connect and
 * reconnect. ioredis reads `options.password` when it connects, so it becomes a getter; a connection already
 * authenticated stays so (Redis checks passwords at AUTH only). A refused AUTH leaves an ioredis connection
 * open but unauthenticated: the secret re-reads its file and, with a new value, the connection starts over.
 */
function followSecret(client: Redis, secret: FileSecret): Redis {
  Object.defineProperty(client.options, 'password', { get: () => secret.value, set: () => undefined, enumerable: true, configurable: true });
  const duplicate = client.duplicate.bind(client);
  client.duplicate = (override?: Partial<RedisOptions>) => followSecret(duplicate(override), secret);
  client.on('error', (err: Error) => {
    if (!/WRONGPASS|invalid password|NOAUTH/i.test(err.message)) return;
    const refused = secret.value;
    secret.authFailed(refused);
    if (secret.value !== refused) client.disconnect(true);
  });
  return client;
}

/**
 * QUIT waits for pending replies, but on a connection that is down it would sit
 * in the offline queue forever (maxRetriesPerRequest: null): disconnect at once
 * then, and never wait on QUIT for more than a second.
 */
async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.quit().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
    }),
  ]);
  clearTimeout(timer);
  if ((client.status as string) !== 'end') client.disconnect();
}
