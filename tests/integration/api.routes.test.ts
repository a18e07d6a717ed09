import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { silentLogger } from '../helpers/context.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

/**
 * The REST API against the real stores: every route behind the auth matrix,
 * instances that never leak into each other, and push webhooks signed here
 * independently of the code under test.
 */

let t: TestPlatform;
let app: FastifyInstance;
let workRepo: GitFixture;
let publicRepo: GitFixture;
const tokens: Record<string, string> = {};
let workJobId = '';

const auth = (name: string) => ({ authorization: `Bearer ${tokens[name]}` });

beforeAll(async () => {
  t = await openTestPlatform({ webhookSecret: 'global-webhook-secret-123' });
  await t.startWorkers();
  app = await buildApp({ logger: silentLogger, platform: t.platform });

  const service = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
  const issue = async (name: string, scopes: Array<'read' | 'write' | 'admin'>, instances: string[], expiresInMs?: number) =>
    (tokens[name] = (await service.create({ name, scopes, instances, ...(expiresInMs ? { expiresInMs } : {}) })).token);
  await issue('admin', ['admin'], ['*']);
  await issue('work-reader', ['read'], ['work']);
  await issue('work-writer', ['read', 'write'], ['work']);
  await issue('public-reader', ['read'], ['public']);
  await issue('expired', ['admin'], ['*'], 1);
  await issue('revoked', ['admin'], ['*']);
  await service.revoke('revoked');

  workRepo = createGitFixture();
  workRepo.write({ 'src/ledger.ts': 'export function reconcileLedger(entries: number[]) {\n  return entries.reduce((a, b) => a + b, 0);\n}\n' });
  workRepo.commit('work code');
  publicRepo = createGitFixture();
  publicRepo.write({ 'lib/greeting.py': 'def greet_visitor(name):\n    return f"hello {name}"\n' });
  publicRepo.commit('public code');

  const work = await app.inject({
    method: 'POST',
    url: '/api/v1/repositories',
    headers: auth('admin'),
    payload: { source: `file://${workRepo.dir}`, name: 'ledger', instance: 'work', webhookSecret: 'ledger-webhook-secret-456' },
  });
  expect(work.statusCode).toBe(201);
  workJobId = work.json().jobId;
  await waitForJob(t.platform.queues.queues.index, workJobId);
  const pub = await app.inject({
    method: 'POST',
    url: '/api/v1/repositories',
    headers: auth('admin'),
    payload: { source: publicRepo.dir, name: 'greeter', instance: 'public' },
  });
  expect(pub.statusCode).toBe(201);
  await waitForJob(t.platform.queues.queues.index, pub.json().jobId);
});

afterAll(async () => {
  await app?.close();
  await t?.cleanup();
  workRepo?.cleanup();
  publicRepo?.cleanup();
});

interface RouteCase {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  scope: 'read' | 'write' | 'admin';
  payload?: unknown;
}

/** Every authenticated route, with a request that succeeds for the right token. */
const ROUTES: RouteCase[] = [
  { method: 'GET', url: '/api/v1/repositories', scope: 'read' },
  { method: 'GET', url: '/api/v1/repositories/ledger', scope: 'read' },
  { method: 'POST', url: '/api/v1/repositories/ledger/reindex', scope: 'write', payload: {} },
  { method: 'GET', url: '/api/v1/search?q=reconcile', scope: 'read' },
  { method: 'GET', url: '/api/v1/graph/symbols?name=reconcileLedger', scope: 'read' },
  { method: 'GET', url: '/api/v1/graph/callers?symbol=reconcileLedger', scope: 'read' },
  { method: 'GET', url: '/api/v1/graph/callees?symbol=reconcileLedger', scope: 'read' },
  { method: 'GET', url: '/api/v1/graph/dependencies?path=src/ledger.ts', scope: 'read' },
  { method: 'GET', url: '/api/v1/graph/dependents?path=src/ledger.ts', scope: 'read' },
  { method: 'GET', url: '/api/v1/graph/path?from=reconcileLedger&to=reconcileLedger', scope: 'read' },
  { method: 'GET', url: '/api/v1/graph/architecture?repo=ledger', scope: 'read' },
  { method: 'GET', url: '/api/v1/jobs', scope: 'read' },
  { method: 'GET', url: '/api/v1/instances', scope: 'read' },
  { method: 'GET', url: '/api/v1/tokens', scope: 'admin' },
  { method: 'POST', url: '/api/v1/tokens', scope: 'admin', payload: { name: 'made-by-matrix', scopes: ['read'], instances: ['work'] } },
  { method: 'GET', url: '/api/v1/admin/backups', scope: 'admin' },
  { method: 'GET', url: '/api/v1/admin/audit?action=token', scope: 'admin' },
  { method: 'GET', url: '/metrics', scope: 'admin' },
  { method: 'GET', url: '/admin/queues', scope: 'admin' },
];

describe('auth matrix over every route', () => {
  for (const route of ROUTES) {
    const label = `${route.method} ${route.url}`;
    it(`${label}: 401 without a token, or with a revoked, expired or malformed one`, async () => {
      for (const headers of [{}, auth('revoked'), auth('expired'), { authorization: 'Bearer pk_mcp_nothex' }, { authorization: 'Basic abc' }]) {
        const res = await app.inject({ method: route.method, url: route.url, headers, ...(route.payload ? { payload: route.payload } : {}) });
        expect(res.statusCode, `${label} with ${JSON.stringify(headers)}`).toBe(401);
        expect(res.json().error).toBe('unauthorized');
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      }
    });

    if (route.scope !== 'read') {
      it(`${label}: 403 for a token without the ${route.scope} scope`, async () => {
        const weaker = route.scope === 'write' ? 'work-reader' : 'work-writer';
        const res = await app.inject({ method: route.method, url: route.url, headers: auth(weaker), ...(route.payload ? { payload: route.payload } : {}) });
        expect(res.statusCode).toBe(403);
        expect(res.json().message).toContain(`lacks the '${route.scope}' scope`);
      });
    }

    it(`${label}: succeeds with the right token`, async () => {
      const who = route.scope === 'admin' ? 'admin' : route.scope === 'write' ? 'work-writer' : 'work-reader';
      const res = await app.inject({ method: route.method, url: route.url, headers: auth(who), ...(route.payload ? { payload: route.payload } : {}) });
      expect(res.statusCode, `${label}: ${res.body.slice(0, 300)}`).toBeLessThan(300);
    });
  }
});

describe('instances never leak', () => {
  it('a token for one instance sees only its repositories', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/repositories', headers: auth('public-reader') });
    expect(res.json().repositories.map((r: { name: string }) => r.name)).toEqual(['greeter']);
    const other = await app.inject({ method: 'GET', url: '/api/v1/repositories/ledger', headers: auth('public-reader') });
    expect(other.statusCode).toBe(404);
  });

  it('search, graph and jobs hide another instance', async () => {
    const search = await app.inject({ method: 'GET', url: '/api/v1/search?q=reconcileLedger%20entries', headers: auth('public-reader') });
    expect(search.statusCode).toBe(200);
    expect(search.json().hits.filter((h: { repository: string }) => h.repository === 'ledger')).toEqual([]);
    const named = await app.inject({ method: 'GET', url: '/api/v1/search?q=x&repo=ledger', headers: auth('public-reader') });
    expect(named.statusCode).toBe(404);
    const symbols = await app.inject({ method: 'GET', url: '/api/v1/graph/symbols?name=reconcileLedger', headers: auth('public-reader') });
    expect(symbols.json().results).toEqual([]);
    const deps = await app.inject({ method: 'GET', url: '/api/v1/graph/dependencies?path=src/ledger.ts', headers: auth('public-reader') });
    expect(deps.statusCode).toBe(404);
    const job = await app.inject({ method: 'GET', url: `/api/v1/jobs/${workJobId}`, headers: auth('public-reader') });
    expect(job.statusCode).toBe(404);
    const jobs = await app.inject({ method: 'GET', url: '/api/v1/jobs', headers: auth('public-reader') });
    expect(jobs.json().jobs.some((j: { id: string }) => j.id === workJobId)).toBe(false);
    const visible = await app.inject({ method: 'GET', url: `/api/v1/jobs/${workJobId}`, headers: auth('work-reader') });
    expect(visible.json()).toMatchObject({ id: workJobId, queue: 'index', state: 'completed' });
  });

  it('a token may not create a repository in an instance it does not have', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/repositories',
      headers: auth('work-writer'),
      payload: { source: publicRepo.dir, name: 'sneaky', instance: 'public' },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().message).toBe("token 'work-writer' may not use instance 'public'");
  });
});

describe('bad requests get a precise 4xx', () => {
  it('validation errors name the field', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/search?q=x&limit=500', headers: auth('admin') });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed' });
    expect(res.json().message).toContain('limit');
    const depth = await app.inject({ method: 'GET', url: '/api/v1/graph/callers?symbol=x&depth=9', headers: auth('admin') });
    expect(depth.statusCode).toBe(400);
    const repo = await app.inject({ method: 'POST', url: '/api/v1/repositories', headers: auth('admin'), payload: { source: '/no/such/dir' } });
    expect(repo.statusCode).toBe(400);
    expect(repo.json().message).toContain('neither a Git URL');
    const json = await app.inject({ method: 'POST', url: '/api/v1/repositories', headers: { ...auth('admin'), 'content-type': 'application/json' }, payload: '{"source":' });
    expect(json.statusCode).toBe(400);
  });

  it('the OpenAPI document lists the routes', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const paths = Object.keys(res.json().paths);
    for (const p of ['/api/v1/repositories', '/api/v1/search', '/api/v1/graph/callers', '/api/v1/jobs/{id}', '/api/v1/tokens', '/webhooks/github']) {
      expect(paths).toContain(p);
    }
  });
});

function githubHeaders(body: string, secret: string, event: string, delivery: string) {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
  };
}

async function indexJobsOf(repositoryId: number): Promise<string[]> {
  const jobs = await t.platform.queues.queues.index.getJobs(['active', 'waiting', 'waiting-children', 'delayed', 'completed', 'failed', 'prioritized']);
  return jobs.filter((j) => j && (j.data as { repositoryId: number }).repositoryId === repositoryId).map((j) => j.id!);
}

describe('push webhooks', () => {
  const pushBody = (after = 'a'.repeat(40), ref = 'refs/heads/main') =>
    JSON.stringify({ ref, after, repository: { clone_url: `file://${workRepo.dir}`, full_name: 'acme/ledger' } });

  it('a signed push makes the new commit searchable without anyone touching it', async () => {
    workRepo.write({ 'src/audit.ts': 'export function auditTrailExport() {\n  return "exported";\n}\n' });
    const head = workRepo.commit('add audit');
    const body = pushBody(head);
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(body, 'ledger-webhook-secret-456', 'push', 'delivery-1'), payload: body });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ outcome: 'queued', repository: 'ledger', branch: 'main' });
    await waitForJob(t.platform.queues.queues.index, res.json().jobId);
    const search = await app.inject({ method: 'GET', url: '/api/v1/search?q=auditTrailExport', headers: auth('work-reader') });
    expect(search.json().hits[0]).toMatchObject({ path: 'src/audit.ts', commit: head });
  });

  it('the global secret also verifies; a redelivery is acknowledged and ignored', async () => {
    const repo = (await t.platform.repositories.findByName('ledger'))!;
    const before = (await indexJobsOf(repo.id)).length;
    const body = pushBody();
    const first = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(body, 'global-webhook-secret-123', 'push', 'delivery-2'), payload: body });
    expect(first.statusCode).toBe(202);
    await waitForJob(t.platform.queues.queues.index, first.json().jobId);
    const again = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(body, 'global-webhook-secret-123', 'push', 'delivery-2'), payload: body });
    expect(again.statusCode).toBe(200);
    expect(again.json().outcome).toBe('duplicate');
    expect((await indexJobsOf(repo.id)).length).toBe(before + 1);
  });

  it('a bad signature gets 401 and enqueues nothing; malformed JSON gets 400', async () => {
    const repo = (await t.platform.repositories.findByName('ledger'))!;
    const before = (await indexJobsOf(repo.id)).length;
    const body = pushBody();
    const bad = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(body, 'wrong-secret', 'push', 'delivery-3'), payload: body });
    expect(bad.statusCode).toBe(401);
    const unsigned = await app.inject({ method: 'POST', url: '/webhooks/github', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, payload: body });
    expect(unsigned.statusCode).toBe(401);
    const broken = '{"ref": "refs/heads/main", ';
    const malformed = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(broken, 'ledger-webhook-secret-456', 'push', 'delivery-4'), payload: broken });
    expect(malformed.statusCode).toBe(400);
    expect((await indexJobsOf(repo.id)).length).toBe(before);
  });

  it('ping, branch deletion, unregistered branches and other events are acknowledged and ignored', async () => {
    const repo = (await t.platform.repositories.findByName('ledger'))!;
    const before = (await indexJobsOf(repo.id)).length;
    const ping = JSON.stringify({ zen: 'hi', repository: { clone_url: `file://${workRepo.dir}` } });
    const pong = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(ping, 'ledger-webhook-secret-456', 'ping', 'd-ping'), payload: ping });
    expect(pong.statusCode).toBe(200);
    expect(pong.json().outcome).toBe('pong');
    const deleted = JSON.stringify({ ref: 'refs/heads/main', deleted: true, after: '0'.repeat(40), repository: { clone_url: `file://${workRepo.dir}` } });
    const del = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(deleted, 'ledger-webhook-secret-456', 'push', 'd-del'), payload: deleted });
    expect(del.json()).toMatchObject({ outcome: 'ignored' });
    const other = pushBody('b'.repeat(40), 'refs/heads/feature-x');
    const unregistered = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(other, 'ledger-webhook-secret-456', 'push', 'd-branch'), payload: other });
    expect(unregistered.statusCode).toBe(202);
    expect(unregistered.json().message).toContain('not indexed');
    const issue = JSON.stringify({ action: 'opened', repository: { clone_url: `file://${workRepo.dir}` } });
    const ev = await app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(issue, 'ledger-webhook-secret-456', 'issues', 'd-issue'), payload: issue });
    expect(ev.json()).toMatchObject({ outcome: 'ignored' });
    expect((await indexJobsOf(repo.id)).length).toBe(before);
  });

  it('a storm of 50 pushes within a second leads to at most two index runs', async () => {
    const repo = (await t.platform.repositories.findByName('ledger'))!;
    const before = new Set(await indexJobsOf(repo.id));
    workRepo.write({ 'src/storm.ts': 'export const storm = 1;\n' });
    const head = workRepo.commit('storm');
    const body = pushBody(head);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        app.inject({ method: 'POST', url: '/webhooks/github', headers: githubHeaders(body, 'ledger-webhook-secret-456', 'push', `storm-${i}`), payload: body }),
      ),
    );
    expect(results.every((r) => r.statusCode === 202)).toBe(true);
    // Let whatever was coalesced run to the end, then count the runs the storm caused.
    await new Promise((r) => setTimeout(r, 500));
    for (;;) {
      const pending = await t.platform.queues.queues.index.getJobCounts('active', 'waiting', 'waiting-children', 'delayed');
      if (Object.values(pending).every((n) => n === 0)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const runs = (await indexJobsOf(repo.id)).filter((id) => !before.has(id));
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.length).toBeLessThanOrEqual(2);
    const branch = await t.platform.repositories.getBranch(repo.id, 'main');
    expect(branch?.indexedCommit).toBe(head);
  });

  it('GitLab pushes are verified by X-Gitlab-Token', async () => {
    const body = JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main', after: 'c'.repeat(40), project: { git_http_url: `file://${workRepo.dir}` } });
    const headers = { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': 'gl-1' };
    const bad = await app.inject({ method: 'POST', url: '/webhooks/gitlab', headers: { ...headers, 'x-gitlab-token': 'nope' }, payload: body });
    expect(bad.statusCode).toBe(401);
    const good = await app.inject({ method: 'POST', url: '/webhooks/gitlab', headers: { ...headers, 'x-gitlab-token': 'ledger-webhook-secret-456' }, payload: body });
    expect(good.statusCode).toBe(202);
    expect(good.json().outcome).toBe('queued');
    await waitForJob(t.platform.queues.queues.index, good.json().jobId);
  });
});

describe('protection', () => {
  it('sends security headers and refuses other origins', async () => {
    const res = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('rate-limits per token and per IP with 429 and Retry-After', async () => {
    const limited = await buildApp({
      logger: silentLogger,
      platform: { ...t.platform, config: { ...t.config, http: { ...t.config.http, rateLimitPerMinute: 3, rateLimitAnonymousPerMinute: 2 } } },
    });
    try {
      const service = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
      const token = (await service.create({ name: 'rate-limited', scopes: ['read'], instances: ['work'] })).token;
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await limited.inject({ method: 'GET', url: '/api/v1/instances', headers: { authorization: `Bearer ${token}` } })).statusCode);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      const over = await limited.inject({ method: 'GET', url: '/api/v1/instances', headers: { authorization: `Bearer ${token}` } });
      expect(over.json()).toMatchObject({ error: 'rate_limited' });
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);

      const anonymous = [];
      for (let i = 0; i < 3; i++) anonymous.push((await limited.inject({ method: 'GET', url: '/api/v1/instances', remoteAddress: '10.9.9.9' })).statusCode);
      expect(anonymous).toEqual([401, 401, 429]);
      // Another client is not affected, and /health is never limited.
      expect((await limited.inject({ method: 'GET', url: '/api/v1/instances', remoteAddress: '10.9.9.10' })).statusCode).toBe(401);
      expect((await limited.inject({ method: 'GET', url: '/health', remoteAddress: '10.9.9.9' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('rejects bodies over the size limit', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/repositories',
      headers: { ...auth('admin'), 'content-type': 'application/json' },
      payload: JSON.stringify({ source: 'x'.repeat(t.config.http.bodyLimitBytes + 10) }),
    });
    expect(res.statusCode).toBe(413);
  });

  it('metrics expose HTTP latency, queue depth and embedding counters', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: auth('admin') });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('pkmcp_http_request_duration_seconds_bucket');
    expect(res.body).toMatch(/pkmcp_queue_jobs\{queue="index",state="completed"\} [1-9]/);
    expect(res.body).toMatch(/pkmcp_embedding_requests\{what="inputs"\} [1-9]/);
    expect(res.body).toContain('pkmcp_search_duration_seconds_count');
  });
});
