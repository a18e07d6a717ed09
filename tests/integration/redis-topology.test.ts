import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FlowProducer, Queue, Worker } from 'bullmq';
import getPort from 'get-port';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil, which } from '../../scripts/stack/process.ts';
import { ConfigError, loadConfig } from '../../shared/config/config.ts';
import { createRedisConnection, type RedisConnection } from '../../shared/stores/redis.connection.ts';
import { silentLogger } from '../helpers/context.ts';

/**
 * Redis Sentinel and Cluster, as the config reads them (REDIS_MODE,
 * REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_CLUSTER_NODES) and as the
 * connection uses them: against a real Sentinel watching a real server, and a
 * real three-node cluster, each started here from Debian's redis-server; BullMQ
 * runs a flow (a parent and its children, as an index run) through each.
 */

const base = { PK_DATA_DIR: '/nonexistent-pk-data', DATABASE_URL: 'postgres://u@db:5432/x', CHROMA_URL: 'http://chroma:8000', NEO4J_URI: 'bolt://neo4j:7687', NEO4J_PASSWORD: 'x' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...base, ...env });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('Redis topology settings', () => {
  it('reads Sentinel and Cluster settings', () => {
    const s = loadConfig({ ...base, REDIS_MODE: 'sentinel', REDIS_SENTINELS: 's0.redis:26379, s1.redis:26379', REDIS_SENTINEL_MASTER: 'pkmaster', REDIS_URL: 'redis://:pw@pkmaster/2' });
    expect(s.redisTopology).toEqual({ mode: 'sentinel', sentinels: [{ host: 's0.redis', port: 26379 }, { host: 's1.redis', port: 26379 }], masterName: 'pkmaster' });
    const c = loadConfig({ ...base, REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: 'n0:6379,n1:6379', QUEUE_PREFIX: '{pkmcp}' });
    expect(c.redisTopology).toEqual({ mode: 'cluster', nodes: [{ host: 'n0', port: 6379 }, { host: 'n1', port: 6379 }] });
    expect(c.queuePrefix).toBe('{pkmcp}');
    expect(loadConfig({ ...base, REDIS_URL: 'redis://r:6379' }).redisTopology).toEqual({ mode: 'standalone' });
  });

  it('refuses what cannot work, naming the setting and the fix', () => {
    expect(problems({ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: 'n0:6379' })).toEqual([
      'QUEUE_PREFIX "pkmcp" has no hash tag: on a Redis Cluster each queue\'s keys must share one slot, e.g. QUEUE_PREFIX={pkmcp}',
    ]);
    expect(problems({ REDIS_MODE: 'sentinel', REDIS_SENTINELS: 's0:26379' })).toEqual([
      'REDIS_SENTINEL_MASTER is required with REDIS_MODE=sentinel (the master group name the Sentinels monitor)',
    ]);
    expect(problems({ REDIS_MODE: 'sentinel', REDIS_SENTINEL_MASTER: 'm' })[0]).toMatch(/^REDIS_SENTINELS is required with REDIS_MODE=sentinel/);
    expect(problems({ REDIS_MODE: 'cluster', QUEUE_PREFIX: '{x}' })[0]).toMatch(/^REDIS_CLUSTER_NODES is required/);
    expect(problems({ REDIS_URL: 'redis://r:6379', REDIS_SENTINELS: 's0:26379' })).toEqual(['REDIS_SENTINELS and REDIS_CLUSTER_NODES need REDIS_MODE=sentinel or REDIS_MODE=cluster']);
    expect(problems({ REDIS_MODE: 'sentinel', REDIS_SENTINELS: 's0', REDIS_SENTINEL_MASTER: 'm' })).toEqual(['REDIS_SENTINELS: each entry must be host:port (e.g. redis-0.redis:26379), not "s0"']);
    expect(problems({ REDIS_MODE: 'replica', REDIS_URL: 'redis://r:6379' })[0]).toMatch(/^REDIS_MODE: /);
  });
});

const servers: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(servers.map((c) => (c.exitCode === null ? new Promise((r) => { c.once('exit', r); c.kill('SIGKILL'); }) : undefined)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function redisServer(args: string[]): void {
  const server = which('redis-server');
  if (!server) throw new Error('redis-server is needed (Debian: apt-get install redis-server; `npx pk-mcp stack prepare` installs it)');
  const child = spawn(server, args, { stdio: 'ignore' });
  servers.push(child);
}

async function ready(port: number): Promise<void> {
  await waitUntil(`redis on ${port}`, async () => {
    const r = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
    if (r.stdout.trim() !== 'PONG') throw new Error(r.stdout + r.stderr);
  }, 15_000);
}

/** A BullMQ flow through `connection`: a parent with three children, the parent reading their results. */
async function runFlow(connection: RedisConnection, prefix: string): Promise<unknown> {
  const queue = new Queue('index', { connection: connection.duplicate(), prefix });
  const flows = new FlowProducer({ connection: connection.duplicate(), prefix });
  const worker = new Worker(
    'index',
    async (job) => (job.name === 'child' ? (job.data as { n: number }).n * 2 : Object.values(await job.getChildrenValues()).sort()),
    { connection: connection.duplicate({ maxRetriesPerRequest: null }), prefix },
  );
  try {
    const { job } = await flows.add({ name: 'parent', queueName: 'index', children: [1, 2, 3].map((n) => ({ name: 'child', queueName: 'index', data: { n } })) });
    let result: unknown;
    await waitUntil('flow', async () => {
      const j = await queue.getJob(job.id!);
      if ((await j?.getState()) !== 'completed') throw new Error(`parent is ${await j?.getState()}`);
      result = j!.returnvalue;
    }, 20_000);
    return result;
  } finally {
    await worker.close();
    await flows.close();
    await queue.close();
  }
}

describe('Redis topologies, connected for real', () => {
  it('finds the master through a Sentinel and runs a BullMQ flow there', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pk-sentinel-'));
    dirs.push(dir);
    const masterPort = await getPort({ host: '127.0.0.1' });
    const sentinelPort = await getPort({ host: '127.0.0.1' });
    redisServer(['--bind', '127.0.0.1', '--port', String(masterPort), '--save', '', '--dir', dir, '--requirepass', 's3cr:t@pw', '--maxmemory-policy', 'noeviction']);
    await waitUntil('master', async () => {
      const r = spawnSync('redis-cli', ['-p', String(masterPort), '--no-auth-warning', '-a', 's3cr:t@pw', 'ping'], { encoding: 'utf8' });
      if (r.stdout.trim() !== 'PONG') throw new Error(r.stdout + r.stderr);
    }, 15_000);
    const conf = path.join(dir, 'sentinel.conf');
    writeFileSync(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor pkmaster 127.0.0.1 ${masterPort} 1`, 'sentinel auth-pass pkmaster s3cr:t@pw', ''].join('\n'));
    redisServer([conf, '--sentinel']);
    await ready(sentinelPort);

    // As the Helm chart's ConfigMap and Secret give it: no host in REDIS_URL, only the password (percent-encoded there).
    const config = loadConfig({
      ...base,
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
      REDIS_SENTINEL_MASTER: 'pkmaster',
      REDIS_URL: `redis://:${encodeURIComponent('s3cr:t@pw')}@pkmaster`,
    });
    const redis = createRedisConnection(config.redisUrl, silentLogger, undefined, config.redisTopology);
    try {
      await redis.ping();
      expect(redis.client.options.port).toBe(6379); // the URL's default: the address in use is the Sentinel's answer
      expect(await redis.client.config('GET', 'port')).toEqual(['port', String(masterPort)]);
      expect(await runFlow(redis, 'pkmcp')).toEqual([2, 4, 6]);
    } finally {
      await redis.close();
    }
  });

  it('runs a BullMQ flow on a three-node Redis Cluster with a hash-tagged prefix', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pk-cluster-'));
    dirs.push(dir);
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await getPort({ host: '127.0.0.1' });
      ports.push(port);
      redisServer(['--bind', '127.0.0.1', '--port', String(port), '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no']);
    }
    for (const p of ports) await ready(p);
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    expect(create.status, create.stdout + create.stderr).toBe(0);
    await waitUntil('cluster', async () => {
      const r = spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' });
      if (!r.stdout.includes('cluster_state:ok')) throw new Error(r.stdout);
    }, 20_000);

    const config = loadConfig({ ...base, REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(','), QUEUE_PREFIX: '{pkmcp}' });
    const redis = createRedisConnection(config.redisUrl, silentLogger, undefined, config.redisTopology);
    try {
      await waitUntil('cluster client', () => redis.ping(), 15_000);
      expect(await runFlow(redis, config.queuePrefix)).toEqual([2, 4, 6]);
      // Without the hash tag the same flow's keys land in different slots, which a cluster refuses.
      await expect(runFlow(redis, 'pkmcp')).rejects.toThrow(/CROSSSLOT|slot/i);
    } finally {
      await redis.close();
    }
  });
});
