import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import neo4j, { type Driver } from 'neo4j-driver';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import type { Config } from '../../shared/config/config.ts';
import { createPlatform, type Platform } from '../../shared/platform.ts';
import { liveProcesses, startSecretAgent, type SecretAgent } from '../../shared/secrets/secret-agent.ts';
import { fingerprint, generateSecret, readSecretFileSync } from '../../shared/secrets/secret-file.ts';
import type { RotationResult } from '../../shared/secrets/secret-rotation.service.ts';
import { connectMcpClient } from '../helpers/mcp-client.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { silentLogger, testConfig, uniqueId } from '../helpers/context.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';
import { spawnEntry, type Spawned } from '../helpers/processes.ts';
import { cliEnv, runCli } from '../helpers/cli.ts';

/**
 * Rotation of every managed secret against the real stores, under load. Each test file gets its own
 * Postgres role, Neo4j user and Redis ACL user (the stack's own credentials are never rotated), and its own
 * secrets folder the test platform's `*_FILE`s point into. Two in-process "processes" (worker side and API
 * side, each with its own connections and secret agent) run while a loop of searches, MCP calls, API writes
 * and webhook deliveries counts every failed request.
 */

const id = uniqueId();
const role = `pkrot_${id}`;
const base = testConfig(id);
const secretsDir = mkdtempSync(path.join(tmpdir(), 'pk-secrets-'));
const files = {
  databasePassword: path.join(secretsDir, 'database-password'),
  neo4jPassword: path.join(secretsDir, 'neo4j-password'),
  redisPassword: path.join(secretsDir, 'redis-password'),
  webhookSecret: path.join(secretsDir, 'webhook-secret'),
};
const initial = { pg: generateSecret(), neo4j: generateSecret(), redis: generateSecret(), webhook: generateSecret() };
const REPO_SECRET = 'repo-webhook-secret-before-rotation';

const withCredentials = (url: string, user: string, password?: string) => {
  const u = new URL(url);
  u.username = user;
  u.password = password ? encodeURIComponent(password) : '';
  return u.toString();
};

let admin: { pg: pg.Pool; neo4j: Driver; redis: Redis };
let t: TestPlatform;
let apiSide: Platform;
let app: FastifyInstance;
let agents: SecretAgent[] = [];
let repo: GitFixture;
let writeToken: string;
const spawned: Spawned[] = [];
/** Holds back the worker side's agent (a slow process) while open. */
let hold: Promise<void> | null = null;

function overrides(): Partial<Config> {
  return {
    // As loadConfig builds them: the file's value in the URL for what reads it once at start (migrations).
    databaseUrl: withCredentials(base.databaseUrl, role, initial.pg),
    redisUrl: withCredentials(base.redisUrl, role, initial.redis),
    neo4jUser: role,
    neo4jPassword: initial.neo4j,
    webhookSecret: initial.webhook,
    semantic: null,
    // The load below is far over the default limits (webhooks come without a token: 60 a minute per address).
    http: { ...base.http, rateLimitPerMinute: 1_000_000, rateLimitAnonymousPerMinute: 1_000_000 },
    secrets: { dir: secretsDir, files, webhookGraceMs: 3_600_000, tokenGraceMs: 3_600_000, verifyTimeoutMs: 15_000 },
  };
}

beforeAll(async () => {
  admin = {
    pg: new pg.Pool({ connectionString: base.databaseUrl, max: 2 }),
    neo4j: neo4j.driver(base.neo4jUri, neo4j.auth.basic(base.neo4jUser, base.neo4jPassword)),
    redis: new Redis(base.redisUrl),
  };
  const database = new URL(base.databaseUrl).pathname.slice(1);
  await admin.pg.query(`CREATE ROLE ${role} LOGIN PASSWORD ${pg.escapeLiteral(initial.pg)}`);
  await admin.pg.query(`GRANT CREATE ON DATABASE ${pg.escapeIdentifier(database)} TO ${role}`);
  await admin.neo4j.executeQuery(`CREATE USER ${role} SET PASSWORD $pw CHANGE NOT REQUIRED`, { pw: initial.neo4j }, { database: 'system' });
  await admin.redis.call('ACL', 'SETUSER', role, 'on', `>${initial.redis}`, '~*', '&*', '+@all');
  writeFileSync(files.databasePassword, `${initial.pg}\n`, { mode: 0o600 });
  writeFileSync(files.neo4jPassword, `${initial.neo4j}\n`, { mode: 0o600 });
  writeFileSync(files.redisPassword, `${initial.redis}\n`, { mode: 0o600 });
  writeFileSync(files.webhookSecret, `${initial.webhook}\n`, { mode: 0o600 });

  t = await openTestPlatform(overrides());
  // The worker side runs every queue but maintenance here; tests start the rotation worker where they need it.
  await t.startWorkers(['index', 'embed', 'graph']);
  apiSide = createPlatform(t.config, silentLogger);
  agents = [
    startSecretAgent(t.platform, silentLogger, { role: 'test-worker', beforeRefresh: () => hold ?? Promise.resolve() }),
    startSecretAgent(apiSide, silentLogger, { role: 'test-api' }),
  ];
  app = await buildApp({ logger: silentLogger, platform: apiSide });

  repo = createGitFixture();
  repo.write({
    'src/retry.ts': 'export function retryWithBackoff(fn: () => Promise<void>, attempts = 3) {\n  return backoffDelay(attempts);\n}\nexport function backoffDelay(n: number) {\n  return 2 ** n * 100;\n}\n',
    'src/app.ts': "import { retryWithBackoff } from './retry';\nexport function run() {\n  return retryWithBackoff(async () => undefined);\n}\n",
  });
  repo.commit('initial');
  const { jobId } = await t.repos.addAndIndex({ source: `file://${repo.dir}`, name: 'rotating', instance: 'work', webhookSecret: REPO_SECRET });
  await waitForJob(t.platform.queues.queues.index, jobId, 120_000);
  const tokens = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
  writeToken = (await tokens.create({ name: 'writer', scopes: ['write'], instances: ['*'] })).token;
}, 240_000);

afterAll(async () => {
  hold = null;
  await Promise.all(spawned.map((s) => s.stop('SIGKILL')));
  for (const agent of agents) await agent.close();
  await app?.close();
  await apiSide?.close();
  await t?.cleanup();
  repo?.cleanup();
  await admin.pg.query(`REVOKE CREATE ON DATABASE ${pg.escapeIdentifier(new URL(base.databaseUrl).pathname.slice(1))} FROM ${role}`).catch(() => undefined);
  await admin.pg.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  await admin.neo4j.executeQuery(`DROP USER ${role} IF EXISTS`, {}, { database: 'system' }).catch(() => undefined);
  await admin.redis.call('ACL', 'DELUSER', role).catch(() => undefined);
  await admin.pg.end();
  await admin.neo4j.close();
  admin.redis.disconnect();
  rmSync(secretsDir, { recursive: true, force: true });
}, 120_000);

/** The secret a webhook sender (GitHub) was given: it keeps signing with it until someone hands it the new one. */
let senderGlobalSecret = initial.webhook;
let senderRepoSecret = REPO_SECRET;

/**
 * Runs searches, MCP tool calls, API writes and webhook deliveries in a loop until stopped, recording each
 * failed request (an exception, an unexpected status, an MCP tool error).
 */
function startLoad() {
  const failures: string[] = [];
  const counts = { search: 0, mcp: 0, write: 0, webhook: 0 };
  let stopped = false;
  const sign = (body: string, secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const loops = [
    (async () => {
      while (!stopped) {
        const res = await app.inject({ method: 'GET', url: '/api/v1/search?q=retry%20with%20backoff&limit=3', headers: { authorization: `Bearer ${writeToken}` } });
        if (res.statusCode !== 200 || (res.json() as { hits: unknown[] }).hits.length === 0) failures.push(`search: ${res.statusCode} ${res.body.slice(0, 200)}`);
        counts.search++;
      }
    })(),
    (async () => {
      const mcp = await connectMcpClient(t, { platform: apiSide });
      try {
        while (!stopped) {
          for (const [name, args] of [
            ['semantic_search', { query: 'backoff delay', limit: 2 }],
            ['find_symbol', { name: 'backoffDelay' }],
            ['get_callers', { symbol: 'backoffDelay' }],
          ] as const) {
            const r = (await mcp.client.callTool({ name, arguments: args })) as { isError?: boolean; content: Array<{ text?: string }> };
            if (r.isError) failures.push(`mcp ${name}: ${r.content[0]?.text?.slice(0, 200)}`);
            counts.mcp++;
          }
        }
      } finally {
        await mcp.close();
      }
    })(),
    (async () => {
      while (!stopped) {
        const res = await app.inject({ method: 'POST', url: '/api/v1/repositories/rotating/reindex', headers: { authorization: `Bearer ${writeToken}` }, payload: {} });
        if (res.statusCode !== 202) failures.push(`reindex: ${res.statusCode} ${res.body.slice(0, 200)}`);
        counts.write++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })(),
    (async () => {
      let n = 0;
      const loadId = uniqueId();
      while (!stopped) {
        const body = JSON.stringify({ ref: 'refs/heads/main', after: 'b'.repeat(40), repository: { clone_url: `https://example.invalid/load-${n % 3}.git` } });
        const global = await app.inject({
          method: 'POST',
          url: '/webhooks/github',
          headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `load-${loadId}-${n++}`, 'x-hub-signature-256': sign(body, senderGlobalSecret) },
          payload: body,
        });
        if (global.statusCode !== 202) failures.push(`webhook (global secret): ${global.statusCode} ${global.body.slice(0, 200)}`);
        const repoBody = JSON.stringify({ ref: 'refs/heads/other', after: 'c'.repeat(40), repository: { clone_url: `file://${repo.dir}` } });
        const own = await app.inject({
          method: 'POST',
          url: '/webhooks/github',
          headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `load-${loadId}-${n++}`, 'x-hub-signature-256': sign(repoBody, senderRepoSecret) },
          payload: repoBody,
        });
        if (own.statusCode !== 202) failures.push(`webhook (repository secret): ${own.statusCode} ${own.body.slice(0, 200)}`);
        counts.webhook += 2;
        // Webhooks are limited to 600 a minute per sender address.
        await new Promise((r) => setTimeout(r, 200));
      }
    })(),
  ].map((p) => p.catch((err: unknown) => void failures.push(`loop died: ${err instanceof Error ? err.message : String(err)}`)));
  return {
    failures,
    counts,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function rotate(name: string): Promise<RotationResult> {
  const { id: jobId } = await t.platform.queues.enqueue('secret-rotate', { name, actor: 'test' });
  return (await waitForJob(t.platform.queues.queues.maintenance, jobId, 90_000)) as RotationResult;
}

const pgAccepts = async (password: string) => {
  const client = new pg.Client({ ...parseIntoClientConfig(withCredentials(base.databaseUrl, role)), password });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') return false;
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
};
const neo4jAccepts = async (password: string) => {
  const driver = neo4j.driver(base.neo4jUri, neo4j.auth.basic(role, password));
  try {
    return await driver.verifyAuthentication();
  } finally {
    await driver.close();
  }
};
const redisAccepts = async (password: string) => {
  const client = new Redis(base.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call('AUTH', role, password).then(() => true, () => false);
  } finally {
    client.disconnect();
  }
};

describe('secret rotation under load', () => {
  const stores = [
    { name: 'database-password', file: files.databasePassword, accepts: pgAccepts },
    { name: 'neo4j-password', file: files.neo4jPassword, accepts: neo4jAccepts },
    { name: 'redis-password', file: files.redisPassword, accepts: redisAccepts },
  ];

  it('rotates each store credential with zero failed requests; the old value stops working, the new one is in the file', async () => {
    await t.startWorkers(['maintenance']);
    const load = startLoad();
    try {
      await new Promise((r) => setTimeout(r, 500));
      for (const store of stores) {
        const before = readSecretFileSync(store.file)!;
        const result = await rotate(store.name);
        expect(result.failed).toEqual([]);
        expect(result.rotated.map((r) => r.name)).toEqual([store.name]);
        const after = readSecretFileSync(store.file)!;
        expect(after).not.toBe(before);
        expect(result.rotated[0]!.fingerprint).toBe(fingerprint(after));
        expect(result.rotated[0]!.processes).toBeGreaterThanOrEqual(2);
        expect(statSync(store.file).mode & 0o777).toBe(0o600);
        expect(await store.accepts(after)).toBe(true);
        expect(await store.accepts(before)).toBe(false);
        // Every live process reports the new value.
        const live = await liveProcesses(t.platform.stores.redis.client, t.config.queuePrefix);
        expect(live.map((p) => p.secrets[store.name])).toEqual(live.map(() => fingerprint(after)));
      }
      // Load keeps running on the new credentials after the last rotation, on fresh connections too.
      await t.platform.stores.postgres.pool.query('SELECT 1');
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    expect(Math.min(...Object.values(load.counts))).toBeGreaterThan(5);

    const audit = await t.platform.audit.list({ action: 'secret.rotate' });
    for (const store of stores) {
      const row = audit.find((a) => a.target === store.name)!;
      expect(row).toMatchObject({ actor: 'test', result: 'ok' });
      expect(row.durationMs).toBeGreaterThanOrEqual(0);
      expect(JSON.stringify(row.details)).not.toContain(readSecretFileSync(store.file)!);
    }
  }, 300_000);

  it('rotates the webhook secrets: old and new both verify during the grace window, with zero failed deliveries', async () => {
    const load = startLoad();
    let global: RotationResult;
    let own: RotationResult;
    try {
      global = await rotate('webhook-secret');
      own = await rotate('repo-webhook-rotating');
      // The senders are given the new values; deliveries signed with either keep being accepted.
      await new Promise((r) => setTimeout(r, 300));
      senderGlobalSecret = readSecretFileSync(files.webhookSecret)!;
      senderRepoSecret = readSecretFileSync(path.join(secretsDir, 'repo-webhook-rotating'))!;
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    expect(global.rotated[0]!.name).toBe('webhook-secret');
    expect(senderGlobalSecret).not.toBe(initial.webhook);
    expect(new Date(global.rotated[0]!.previousValidUntil!).getTime()).toBeGreaterThan(Date.now() + 3_500_000);
    expect(own.rotated[0]!.name).toBe('repo-webhook-rotating');
    expect(senderRepoSecret).not.toBe(REPO_SECRET);
    expect(statSync(path.join(secretsDir, 'repo-webhook-rotating')).mode & 0o777).toBe(0o600);

    // Past the deadline, the old values are refused.
    await t.platform.stores.postgres.pool.query(`UPDATE secret_grace SET valid_until = now() - interval '1 second'`);
    await t.platform.stores.postgres.pool.query(`UPDATE repositories SET previous_webhook_secret_until = now() - interval '1 second'`);
    const body = JSON.stringify({ ref: 'refs/heads/other', after: 'd'.repeat(40), repository: { clone_url: `file://${repo.dir}` } });
    const deliver = (secret: string) =>
      app.inject({
        method: 'POST',
        url: '/webhooks/github',
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `late-${uniqueId()}`, 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` },
        payload: body,
      });
    expect((await deliver(initial.webhook)).statusCode).toBe(401);
    expect((await deliver(REPO_SECRET)).statusCode).toBe(401);
    expect((await deliver(senderGlobalSecret)).statusCode).toBe(202);
    expect((await deliver(senderRepoSecret)).statusCode).toBe(202);
  }, 120_000);

  it('rotates API tokens marked for rotation into token-<name>, keeping the old value for the grace period', async () => {
    const tokens = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
    const issued = await tokens.create({ name: 'ci-bot', scopes: ['read'], instances: ['*'], rotateEveryMs: 30 * 86_400_000 });
    // Not due yet: `all` leaves it alone (and says so); by name it is rotated at once.
    const all = await rotate('all');
    expect(all.skipped).toContainEqual({ name: 'token-ci-bot', reason: expect.stringMatching(/^not due until /) });
    expect(all.rotated.map((r) => r.name)).not.toContain('token-ci-bot');
    const result = await rotate('token-ci-bot');
    const file = path.join(secretsDir, 'token-ci-bot');
    const value = readSecretFileSync(file)!;
    expect(result.rotated[0]).toMatchObject({ name: 'token-ci-bot', file, fingerprint: fingerprint(value) });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await tokens.verify(value)).toMatchObject({ name: 'ci-bot' });
    expect(await tokens.verify(issued.token)).toMatchObject({ name: 'ci-bot' });
    const [record] = (await tokens.list()).filter((r) => r.name === 'ci-bot');
    expect(record!.rotateEveryMs).toBe(30 * 86_400_000);
    expect(record!.previousValues[0]!.validUntil.getTime()).toBeGreaterThan(Date.now() + 3_500_000);
  }, 180_000);
});

describe('between the store change and the new file', () => {
  it('new Postgres connections of a process that has not reloaded take the pending value (a role holds one password)', async () => {
    const { createSecretRotationService } = await import('../../shared/secrets/secret-rotation.service.ts');
    const churned: string[] = [];
    const service = createSecretRotationService({
      platform: t.platform,
      logger: silentLogger,
      // 'write' comes after the store took the new value and before the file has it: held open, with fresh connections.
      onStep: async (secret, step) => {
        if (step !== 'write') return;
        if (secret === 'database-password') {
          const pool = apiSide.stores.postgres.pool;
          const clients = await Promise.all(Array.from({ length: 4 }, () => pool.connect()));
          for (const c of clients) c.release(true);
          await Promise.all(Array.from({ length: 12 }, () => pool.query('SELECT 1')));
          churned.push(secret);
        }
        await new Promise((r) => setTimeout(r, 500));
      },
    });
    const load = startLoad();
    try {
      for (const name of ['database-password']) {
        const result = await service.rotate(name, 'test');
        expect(result.failed).toEqual([]);
        expect(result.rotated.map((r) => r.name)).toEqual([name]);
      }
    } finally {
      await load.stop();
    }
    expect(churned).toEqual(['database-password']);
    expect(load.failures).toEqual([]);
  }, 120_000);
});

describe('a failed rotation rolls back', () => {
  it('a process that never loads the new value makes the rotation fail, and the old value keeps working everywhere', async () => {
    const stuck = createPlatform(t.config, silentLogger);
    // A live process whose reload never finishes (hung), as a frozen process would be.
    const agent = startSecretAgent(stuck, silentLogger, { role: 'stuck', beforeRefresh: () => new Promise(() => undefined) });
    const seen = Date.now() + 10_000;
    while (!(await liveProcesses(t.platform.stores.redis.client, t.config.queuePrefix)).some((p) => p.role === 'stuck')) {
      if (Date.now() > seen) throw new Error('the stuck process never reported');
      await new Promise((r) => setTimeout(r, 100));
    }
    const shortVerify = { ...t.config, secrets: { ...t.config.secrets, verifyTimeoutMs: 3000 } };
    const rotator = createPlatform(shortVerify, silentLogger);
    const { createSecretRotationService } = await import('../../shared/secrets/secret-rotation.service.ts');
    const service = createSecretRotationService({ platform: rotator, logger: silentLogger });
    const load = startLoad();
    try {
      for (const [name, file, accepts] of [
        ['database-password', files.databasePassword, pgAccepts],
        ['neo4j-password', files.neo4jPassword, neo4jAccepts],
        ['redis-password', files.redisPassword, redisAccepts],
      ] as const) {
        const before = readSecretFileSync(file)!;
        const result = await service.rotate(name, 'test');
        expect(result.rotated).toEqual([]);
        expect(result.failed).toEqual([{ name, rolledBack: true, error: expect.stringMatching(/^stuck:.* did not load the new value within 3000 ms$/) }]);
        expect(readSecretFileSync(file)).toBe(before);
        expect(readSecretFileSync(`${file}.next`)).toBeUndefined();
        expect(await accepts(before)).toBe(true);
        const audit = await t.platform.audit.list({ action: 'secret.rotate', limit: 1 });
        expect(audit[0]).toMatchObject({ target: name, result: 'failed', details: { rolledBack: true } });
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await load.stop();
      await agent.close();
      await Promise.all([stuck.close(), rotator.close()]);
    }
    expect(load.failures).toEqual([]);
  }, 120_000);

  it('an unknown or unmanaged name is refused with a precise message', async () => {
    const { createSecretRotationService } = await import('../../shared/secrets/secret-rotation.service.ts');
    const service = createSecretRotationService({ platform: t.platform, logger: silentLogger });
    await expect(service.rotate('nope', 'test')).rejects.toMatchObject({ statusCode: 404, message: expect.stringMatching(/^unknown secret 'nope': known secrets are database-password, neo4j-password, redis-password, webhook-secret, repo-webhook-rotating/) });
    await expect(service.rotate('../etc', 'test')).rejects.toMatchObject({ statusCode: 400 });
    // The stack's own credentials, fixed: a process configured without *_FILE.
    const plain = createPlatform({ ...t.config, databaseUrl: base.databaseUrl, redisUrl: base.redisUrl, neo4jUser: base.neo4jUser, neo4jPassword: base.neo4jPassword, secrets: { ...t.config.secrets, files: {} } }, silentLogger);
    try {
      const other = createSecretRotationService({ platform: plain, logger: silentLogger });
      await expect(other.rotate('database-password', 'test')).rejects.toMatchObject({
        statusCode: 400,
        message: "secret 'database-password' is not managed by the platform: DATABASE_PASSWORD_FILE is not set: the Postgres password is not read from a file, so a rotation could not reach the running processes",
      });
    } finally {
      await plain.close();
    }
  });
});

describe('admin API and CLI', () => {
  let adminToken: string;
  beforeAll(async () => {
    const tokens = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
    adminToken = (await tokens.create({ name: 'root', scopes: ['admin'], instances: ['*'] })).token;
  });
  const call = (method: 'GET' | 'POST', url: string, token = adminToken) => app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });

  it('lists the secrets without values, and queues a rotation with 202 and its job id', async () => {
    const list = await call('GET', '/api/v1/admin/secrets');
    expect(list.statusCode).toBe(200);
    const names = (list.json() as { secrets: Array<{ name: string; managed: boolean }> }).secrets.map((s) => [s.name, s.managed]);
    expect(names).toEqual(expect.arrayContaining([['database-password', true], ['neo4j-password', true], ['redis-password', true], ['webhook-secret', true], ['repo-webhook-rotating', true]]));
    for (const value of Object.values(files).map((f) => readSecretFileSync(f)!)) expect(list.body).not.toContain(value);

    const queued = await call('POST', '/api/v1/admin/secrets/neo4j-password/rotate');
    expect(queued.statusCode).toBe(202);
    const { jobId } = queued.json() as { jobId: string };
    const result = (await waitForJob(t.platform.queues.queues.maintenance, jobId, 90_000)) as RotationResult;
    expect(result.rotated.map((r) => r.name)).toEqual(['neo4j-password']);
    const audit = await t.platform.audit.list({ action: 'secret.rotate', limit: 1 });
    expect(audit[0]).toMatchObject({ actor: 'root', target: 'neo4j-password', result: 'ok' });
  }, 120_000);

  it('refuses unknown names (404), malformed ones (400) and callers without the admin scope (403)', async () => {
    const unknown = await call('POST', '/api/v1/admin/secrets/nope/rotate');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'not_found', message: expect.stringMatching(/^unknown secret 'nope': known secrets are database-password, /) });
    const token = await call('POST', '/api/v1/admin/secrets/token-nobody/rotate');
    expect(token.statusCode).toBe(404);
    expect(token.json().message).toContain("no active token named 'nobody' is marked for rotation");
    const malformed = await call('POST', '/api/v1/admin/secrets/..%2Fpasswd/rotate');
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().message).toMatch(/^invalid secret name '\.\.\/passwd'/);
    expect((await call('POST', '/api/v1/admin/secrets/all/rotate', writeToken)).statusCode).toBe(403);
  });

  it('`secrets list` and `secrets rotate <name> --wait` work as the README says', async () => {
    const env = cliEnv(t.config, {
      DATABASE_URL: withCredentials(base.databaseUrl, role),
      DATABASE_PASSWORD_FILE: files.databasePassword,
      REDIS_URL: withCredentials(base.redisUrl, role),
      REDIS_PASSWORD_FILE: files.redisPassword,
      NEO4J_USER: role,
      NEO4J_PASSWORD: '',
      NEO4J_PASSWORD_FILE: files.neo4jPassword,
      WEBHOOK_SECRET_FILE: files.webhookSecret,
      SECRETS_DIR: secretsDir,
    });
    const list = await runCli(env, 'secrets', 'list');
    expect(list.stderr).toBe('');
    expect(list.stdout).toContain(`managed      database-password (${files.databasePassword})`);
    const before = readSecretFileSync(files.redisPassword)!;
    const rotated = await runCli(env, 'secrets', 'rotate', 'redis-password', '--wait');
    expect(rotated.code).toBe(0);
    const after = readSecretFileSync(files.redisPassword)!;
    expect(after).not.toBe(before);
    expect(rotated.stdout).toContain(`rotated  redis-password (fingerprint ${fingerprint(after)}, in ${files.redisPassword}, confirmed by `);
    const unknown = await runCli(env, 'secrets', 'rotate', 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error: unknown secret 'nope': known secrets are /);
    const help = await runCli(env, 'secrets', 'rotate', '--help');
    expect(help.stdout).toContain('--wait');
  }, 120_000);
});

describe('a worker killed during a rotation', () => {
  it('is replaced by one that starts with the right credential and finishes the rotation', async () => {
    await t.stopWorkers();
    await t.startWorkers(['index', 'embed', 'graph']);
    const env = {
      DATABASE_URL: withCredentials(base.databaseUrl, role),
      DATABASE_PASSWORD_FILE: files.databasePassword,
      REDIS_URL: withCredentials(base.redisUrl, role),
      REDIS_PASSWORD_FILE: files.redisPassword,
      NEO4J_URI: base.neo4jUri,
      NEO4J_USER: role,
      NEO4J_PASSWORD: '',
      NEO4J_PASSWORD_FILE: files.neo4jPassword,
      WEBHOOK_SECRET_FILE: files.webhookSecret,
      CHROMA_URL: base.chromaUrl,
      SECRETS_DIR: secretsDir,
      QUEUE_PREFIX: t.config.queuePrefix,
      DATABASE_SCHEMA: t.config.databaseSchema,
      CHROMA_COLLECTION_PREFIX: t.config.chromaCollectionPrefix,
      WORKSPACE_DIR: t.config.workspaceDir,
      SEMANTIC_MODEL: 'none',
      WORKER_LOCK_DURATION_MS: '3000',
      SECRET_ROTATION_VERIFY_TIMEOUT_MS: '60000',
      LOG_LEVEL: 'info',
      LOG_PRETTY: 'false',
    };
    const maintenance = t.platform.queues.queues.maintenance;
    const waitForWorker = async () => {
      const deadline = Date.now() + 60_000;
      while ((await maintenance.getWorkersCount()) === 0) {
        if (Date.now() > deadline) throw new Error(`no worker came up:\n${spawned.map((s) => s.output()).join('\n')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const first = spawnEntry('workers/main.ts', env);
    spawned.push(first);
    await waitForWorker();

    // This process's agent holds back, so the rotation waits in its verify step: the worker dies there.
    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    const before = readSecretFileSync(files.databasePassword)!;
    const load = startLoad();
    try {
      const { id: jobId } = await t.platform.queues.enqueue('secret-rotate', { name: 'database-password', actor: 'test' });
      const deadline = Date.now() + 60_000;
      for (;;) {
        const job = await maintenance.getJob(jobId);
        if ((job?.progress as { step?: string } | undefined)?.step === 'verify') break;
        if (Date.now() > deadline) throw new Error(`the rotation did not reach its verify step:\n${first.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await first.stop('SIGKILL');
      const written = readSecretFileSync(files.databasePassword)!;
      expect(written).not.toBe(before);
      expect(readSecretFileSync(`${files.databasePassword}.next`)).toBe(written);

      const second = spawnEntry('workers/main.ts', env);
      spawned.push(second);
      await waitForWorker();
      // The new worker connected with the file's value (the only one Postgres accepts now) and reports it.
      const deadline2 = Date.now() + 30_000;
      for (;;) {
        const live = await liveProcesses(t.platform.stores.redis.client, t.config.queuePrefix);
        const worker = live.find((p) => p.role === 'worker' && p.pid === second.child.pid);
        if (worker) {
          expect(worker.secrets['database-password']).toBe(fingerprint(written));
          break;
        }
        if (Date.now() > deadline2) throw new Error(`the new worker never reported:\n${second.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      release();
      hold = null;
      // The stalled job is taken over by the new worker, which finishes the interrupted rotation.
      const result = (await waitForJob(maintenance, jobId, 90_000)) as RotationResult;
      expect(result.rotated.map((r) => r.name)).toEqual(['database-password']);
      expect(result.rotated[0]!.fingerprint).toBe(fingerprint(written));
      expect(readSecretFileSync(files.databasePassword)).toBe(written);
      expect(readSecretFileSync(`${files.databasePassword}.next`)).toBeUndefined();
      expect(await pgAccepts(written)).toBe(true);
      expect(await pgAccepts(before)).toBe(false);
      expect(second.output()).toContain('resuming an interrupted rotation');
    } finally {
      release?.();
      hold = null;
      await load.stop();
    }
    expect(load.failures).toEqual([]);
  }, 300_000);
});
