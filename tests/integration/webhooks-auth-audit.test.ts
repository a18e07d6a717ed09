import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { silentLogger } from '../helpers/context.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';

/**
 * End-to-end audit of what an unauthenticated or under-privileged caller can
 * reach: push webhooks (signatures, replays, refs, content types) and the
 * bearer-token matrix over every route, Bull Board's included.
 */

const REPO_SECRET = 'audit-repo-secret-0001';
const GLOBAL_SECRET = 'audit-global-secret-0002';

let t: TestPlatform;
let app: FastifyInstance;
let repo: GitFixture;
const tok: Record<string, string> = {};

beforeAll(async () => {
  t = await openTestPlatform({ webhookSecret: GLOBAL_SECRET });
  app = await buildApp({ logger: silentLogger, platform: t.platform });
  const service = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
  const issue = async (name: string, scopes: Array<'read' | 'write' | 'admin'>, instances: string[], expiresInMs?: number) =>
    (tok[name] = (await service.create({ name, scopes, instances, ...(expiresInMs ? { expiresInMs } : {}) })).token);
  await issue('reader', ['read'], ['*']);
  await issue('writer', ['write'], ['*']);
  await issue('admin', ['admin'], ['*']);
  await issue('work-admin', ['admin'], ['work']);
  await issue('expired', ['admin'], ['*'], 1);
  await issue('revoked', ['admin'], ['*']);
  await service.revoke('revoked');
  await issue('spare', ['read'], ['*']); // rotated by the route walk, so no token it uses afterwards changes
  repo = createGitFixture();
  repo.write({ 'a.ts': 'export const a = 1;\n' });
  repo.commit('a');
  // Registered without indexing: the webhook only needs the repository and its branch.
  await t.repos.add({ source: `file://${repo.dir}`, name: 'audited', instance: 'work', webhookSecret: REPO_SECRET });
});

afterAll(async () => {
  await app?.close();
  await t?.cleanup();
  repo?.cleanup();
});

const indexJobs = async () => (await t.platform.queues.queues.index.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'])).length;

describe('push webhooks', () => {
  const push = (ref = 'refs/heads/main', url = `file://${repo.dir}`, extra: object = {}) =>
    JSON.stringify({ ref, after: 'a'.repeat(40), repository: { clone_url: url }, ...extra });
  const sign = (body: string, secret: string, algorithm = 'sha256') => `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;
  const github = (body: string, headers: Record<string, string>, delivery: string = crypto.randomUUID()) =>
    app.inject({
      method: 'POST',
      url: '/webhooks/github',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery, ...headers },
      payload: body,
    });

  it('refuses missing, wrong and other-algorithm signatures alike, for known and unknown repositories', async () => {
    const before = await indexJobs();
    const known = push();
    const unknown = push('refs/heads/main', 'https://github.com/acme/does-not-exist');
    const answers = [
      await github(known, {}),
      await github(unknown, {}),
      await github(known, { 'x-hub-signature-256': sign(known, 'wrong-secret') }),
      await github(unknown, { 'x-hub-signature-256': sign(unknown, 'wrong-secret') }),
      await github(known, { 'x-hub-signature': sign(known, REPO_SECRET, 'sha1') }),
      await github(known, { 'x-hub-signature-256': sign(known, REPO_SECRET, 'sha512') }),
      await github(known, { 'x-hub-signature-256': sign(known, REPO_SECRET).slice(0, -1) }),
    ];
    for (const res of answers) {
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ error: 'bad_signature', message: 'X-Hub-Signature-256 does not match' });
    }
    expect(await indexJobs()).toBe(before);
  });

  it('queues a signed push once, however often it is delivered; tags, deletions and other branches queue nothing', async () => {
    const before = await indexJobs();
    const body = push('refs/heads/main', `file://${repo.dir}`, { forced: true });
    const first = await github(body, { 'x-hub-signature-256': sign(body, REPO_SECRET) }, 'audit-delivery-1');
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ outcome: 'queued', repository: 'audited', branch: 'main' });
    const again = await github(body, { 'x-hub-signature-256': sign(body, REPO_SECRET) }, 'audit-delivery-1');
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ outcome: 'duplicate' });
    expect(await indexJobs()).toBe(before + 1);

    const tag = push('refs/tags/v1');
    expect((await github(tag, { 'x-hub-signature-256': sign(tag, REPO_SECRET) })).json()).toMatchObject({ outcome: 'ignored', message: 'ref refs/tags/v1 is not a branch: ignored' });
    const deletion = JSON.stringify({ ref: 'refs/heads/main', after: '0'.repeat(40), repository: { clone_url: `file://${repo.dir}` } });
    expect((await github(deletion, { 'x-hub-signature-256': sign(deletion, REPO_SECRET) })).json()).toMatchObject({ outcome: 'ignored', message: 'branch main was deleted: ignored' });
    const other = push('refs/heads/feature');
    expect((await github(other, { 'x-hub-signature-256': sign(other, GLOBAL_SECRET) })).json()).toMatchObject({ outcome: 'ignored', message: 'branch feature of audited is not indexed: ignored' });
    const ping = JSON.stringify({ zen: 'hi', repository: { clone_url: `file://${repo.dir}` } });
    const pong = await github(ping, { 'x-github-event': 'ping', 'x-hub-signature-256': sign(ping, REPO_SECRET) });
    expect([pong.statusCode, pong.json().outcome]).toEqual([200, 'pong']);
    expect(await indexJobs()).toBe(before + 1);
  });

  it('answers 415 to anything but JSON, before parsing it, and queues nothing', async () => {
    const before = await indexJobs();
    const body = push();
    const form = `payload=${encodeURIComponent(body)}`;
    for (const [contentType, payload] of [
      ['application/x-www-form-urlencoded', form],
      ['application/x-www-form-urlencoded', body],
      ['text/plain', body],
    ] as const) {
      const res = await github(payload, { 'content-type': contentType, 'x-hub-signature-256': sign(payload, REPO_SECRET) });
      expect(res.statusCode, contentType).toBe(415);
      expect(res.json()).toEqual({ error: 'unsupported_media_type', message: 'send webhooks as application/json (the GitHub webhook\'s "Content type" setting)' });
    }
    const gitlab = await app.inject({ method: 'POST', url: '/webhooks/gitlab', headers: { 'content-type': 'text/plain', 'x-gitlab-token': REPO_SECRET, 'x-gitlab-event': 'Push Hook' }, payload: body });
    expect(gitlab.statusCode).toBe(415);
    expect(await indexJobs()).toBe(before);
    // A charset parameter is still JSON.
    const ok = await github(body, { 'content-type': 'application/json; charset=utf-8', 'x-hub-signature-256': sign(body, REPO_SECRET) });
    expect(ok.statusCode).toBe(202);
  });

  it('refuses a body over the limit with 413, signed or not', async () => {
    const huge = push('refs/heads/main', `file://${repo.dir}`, { pad: 'x'.repeat(t.config.http.bodyLimitBytes) });
    expect((await github(huge, {})).statusCode).toBe(413);
    expect((await github(huge, { 'x-hub-signature-256': sign(huge, REPO_SECRET) })).statusCode).toBe(413);
  });

  it('GitLab: wrong, shorter and longer tokens are 401; a replayed event UUID is a duplicate', async () => {
    const body = JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main', after: 'c'.repeat(40), project: { git_http_url: `file://${repo.dir}` } });
    const gitlab = (token: string | undefined, uuid: string = crypto.randomUUID()) =>
      app.inject({
        method: 'POST',
        url: '/webhooks/gitlab',
        headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': uuid, ...(token === undefined ? {} : { 'x-gitlab-token': token }) },
        payload: body,
      });
    for (const token of [undefined, '', 'x', REPO_SECRET.slice(0, -1), `${REPO_SECRET}x`, REPO_SECRET.toUpperCase()]) {
      expect((await gitlab(token)).statusCode, String(token)).toBe(401);
    }
    expect((await gitlab(REPO_SECRET, 'audit-gl-1')).statusCode).toBe(202);
    expect((await gitlab(GLOBAL_SECRET, 'audit-gl-1')).json()).toMatchObject({ outcome: 'duplicate' });
  });
});

describe('bearer tokens on every route', () => {
  const as = (who: string): Record<string, string> =>
    who === 'none' ? {} : who.startsWith('cookie:') ? { cookie: `pk_session=${tok[who.slice(7)]}` } : { authorization: `Bearer ${tok[who]}` };

  /**
   * Routes that must answer 401 without a token, with the scope they need. Every route authenticates in
   * onRequest, before its input is read (authorization-before-input.test.ts walks them with bad input).
   */
  const PROTECTED: Array<{ method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE'; url: string; scope: 'read' | 'write' | 'admin' }> = [
    { method: 'GET', url: '/api/v1/repositories', scope: 'read' },
    { method: 'GET', url: '/api/v1/instances', scope: 'read' },
    { method: 'GET', url: '/api/v1/jobs', scope: 'read' },
    { method: 'GET', url: '/api/v1/search?q=x', scope: 'read' },
    { method: 'GET', url: '/api/v1/graph/symbols?name=x', scope: 'read' },
    { method: 'GET', url: '/api/v1/graph/callers?symbol=x', scope: 'read' },
    { method: 'GET', url: '/api/v1/graph/callees?symbol=x', scope: 'read' },
    { method: 'GET', url: '/api/v1/graph/dependencies?path=a.ts', scope: 'read' },
    { method: 'GET', url: '/api/v1/graph/dependents?path=a.ts', scope: 'read' },
    { method: 'GET', url: '/api/v1/graph/path?from=x&to=y', scope: 'read' },
    { method: 'GET', url: '/api/v1/graph/architecture?repo=audited', scope: 'read' },
    { method: 'POST', url: '/api/v1/repositories/audited/reindex', scope: 'write' },
    { method: 'DELETE', url: '/api/v1/repositories/nope', scope: 'write' },
    { method: 'GET', url: '/api/v1/tokens', scope: 'admin' },
    { method: 'POST', url: '/api/v1/tokens/spare/rotate', scope: 'admin' },
    { method: 'GET', url: '/api/v1/admin/secrets', scope: 'admin' },
    { method: 'POST', url: '/api/v1/admin/secrets/all/rotate', scope: 'admin' },
    { method: 'GET', url: '/api/v1/admin/backups', scope: 'admin' },
    { method: 'POST', url: '/api/v1/admin/backups', scope: 'admin' },
    { method: 'POST', url: '/api/v1/admin/backups/prune', scope: 'admin' },
    { method: 'POST', url: '/api/v1/admin/backups/pkmcp-all-20200101T000000Z.tar.gz/verify', scope: 'admin' },
    { method: 'POST', url: '/api/v1/admin/backups/pkmcp-all-20200101T000000Z.tar.gz/restore', scope: 'admin' },
    { method: 'GET', url: '/api/v1/admin/audit', scope: 'admin' },
    { method: 'GET', url: '/metrics', scope: 'admin' },
    { method: 'HEAD', url: '/metrics', scope: 'admin' },
    { method: 'GET', url: '/admin/queues', scope: 'admin' },
    { method: 'GET', url: '/admin/queues/api/queues', scope: 'admin' },
    { method: 'HEAD', url: '/admin/queues/api/queues', scope: 'admin' },
    { method: 'PUT', url: '/admin/queues/api/queues/index/pause', scope: 'admin' },
    { method: 'GET', url: '/admin/queues/static/js/main.js', scope: 'admin' },
    { method: 'POST', url: '/mcp', scope: 'read' },
    { method: 'GET', url: '/mcp', scope: 'read' },
    { method: 'DELETE', url: '/mcp', scope: 'read' },
    { method: 'GET', url: '/sse', scope: 'read' },
    { method: 'POST', url: '/messages?sessionId=x', scope: 'read' },
  ];
  const RANK = { read: 1, write: 2, admin: 3 } as const;

  it('every registered route is either public by design or in the list above', async () => {
    const listed = new Set(PROTECTED.map((r) => r.url.split('?')[0]!));
    const publicByDesign = /^\/(health|ready|docs(\/.*)?|auth\/session|webhooks\/(github|gitlab)|\*)$/;
    const routes: string[] = [];
    for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
      const path = /^[├└]── (\/\S*)/.exec(line)?.[1];
      if (path) routes.push(path);
    }
    expect(routes.length).toBeGreaterThan(20);
    const top = routes.filter((p) => p.startsWith('/') && !p.startsWith('/:'));
    for (const path of top) {
      if (publicByDesign.test(path)) continue;
      expect([...listed].some((u) => u === path || u.startsWith(`${path}/`) || u.startsWith(path)), path).toBe(true);
    }
  });

  it('no, expired, revoked or malformed token: 401; too small a scope: 403; the right one gets past auth', async () => {
    for (const route of PROTECTED) {
      const inject = (who: string) => app.inject({ method: route.method, url: route.url, headers: as(who), ...(route.method === 'POST' ? { payload: {} } : {}) });
      for (const who of ['none', 'expired', 'revoked', 'cookie:revoked']) {
        expect((await inject(who)).statusCode, `${route.method} ${route.url} as ${who}`).toBe(401);
      }
      expect((await app.inject({ method: route.method, url: route.url, headers: { authorization: `Bearer pk_mcp_${'0'.repeat(32)}` }, ...(route.method === 'POST' ? { payload: {} } : {}) })).statusCode, route.url).toBe(401);
      for (const [who, scope] of [['reader', 'read'], ['writer', 'write']] as const) {
        if (RANK[scope] < RANK[route.scope]) expect((await inject(who)).statusCode, `${route.method} ${route.url} as ${who}`).toBe(403);
      }
      if (route.url === '/sse') continue; // an authorised GET /sse opens a stream that does not end
      for (const who of ['admin', 'cookie:admin']) {
        expect([401, 403], `${route.method} ${route.url} as ${who}`).not.toContain((await inject(who)).statusCode);
      }
    }
  });

  it('an admin of one instance may not manage tokens or use the queue dashboard, which span every instance', async () => {
    const as1 = as('work-admin');
    await t.platform.queues.queues.index.resume(); // the route walk paused it as the all-instance admin
    const create = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: as1, payload: { name: 'escalated', scopes: ['admin'], instances: ['*'] } });
    expect(create.statusCode, create.body).toBe(403);
    expect(create.json()).toEqual({ error: 'forbidden', message: expect.stringContaining("token 'work-admin' may not use instance") });
    const rotate = await app.inject({ method: 'POST', url: '/api/v1/tokens/admin/rotate', headers: as1, payload: {} });
    expect(rotate.statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: as1 })).statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/tokens/admin', headers: as1 })).statusCode).toBe(403);
    for (const url of ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/js/main.js']) {
      const res = await app.inject({ method: 'GET', url, headers: as1 });
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error).toBe('forbidden');
    }
    expect((await app.inject({ method: 'PUT', url: '/admin/queues/api/queues/index/pause', headers: as1 })).statusCode).toBe(403);
    expect(await t.platform.queues.queues.index.isPaused()).toBe(false);
    // Within its instance it is still an admin.
    expect((await app.inject({ method: 'GET', url: '/api/v1/repositories/audited', headers: as1 })).statusCode).toBe(200);
    // The all-instance admin still may.
    expect((await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: as('admin') })).statusCode).toBe(200);
  });

  it('health, readiness and the docs are public', async () => {
    for (const url of ['/health', '/ready', '/docs', '/docs/json']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
  });
});
