import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { silentLogger } from '../helpers/context.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';

/**
 * Authorization before input: every route checks the caller's scope (and, where it spans every instance,
 * the instances) in onRequest, before the body is parsed or validated, so a caller without the right to a
 * route learns nothing about its schema, not even that its JSON is broken. The walk takes the routes from
 * the app itself, so a route added later without its check fails here. Each refusal is an audit row with
 * the reason and the source address, and never the credential.
 */

let t: TestPlatform;
let app: FastifyInstance;
const tok: Record<string, string> = {};

beforeAll(async () => {
  t = await openTestPlatform();
  app = await buildApp({ logger: silentLogger, platform: t.platform });
  const service = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
  const issue = async (name: string, scopes: Array<'read' | 'write' | 'admin'>, instances: string[]) =>
    (tok[name] = (await service.create({ name, scopes, instances })).token);
  await issue('reader', ['read'], ['*']);
  await issue('writer', ['write'], ['*']);
  await issue('work-writer', ['write'], ['work']);
  await issue('work-admin', ['admin'], ['work']);
});

afterAll(async () => {
  await app?.close();
  await t?.cleanup();
});

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
interface Route {
  method: Method;
  path: string;
}

/**
 * Public by design: probes, docs, the sign-in itself, webhooks (signed), OAuth discovery; and the not-found
 * handlers, which the router lists as `<prefix>/*` (they answer 404 to anyone: there is nothing there).
 */
const PUBLIC = /^\/(health|ready|docs(\/.*)?|auth\/session|webhooks\/(github|gitlab)|\.well-known\/.*|\*|admin\/queues\/\*)$/;

/** Every route the app serves, from its own router (printRoutes with full paths, nested lines joined). */
function routesOf(instance: FastifyInstance): Route[] {
  const routes: Route[] = [];
  const stack: Array<{ depth: number; path: string }> = [];
  for (const line of instance.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    while (stack.length > depth) stack.pop();
    const path = (stack.at(-1)?.path ?? '') + match[2]!;
    stack.push({ depth, path });
    for (const method of (match[3] ?? '').split(', ').filter(Boolean)) {
      if (method !== 'OPTIONS') routes.push({ method: method as Method, path });
    }
  }
  return routes;
}

/** The scope a route needs, by the platform's rules (README's table): admin areas, writes, and reads. */
function scopeOf(route: Route): 'read' | 'write' | 'admin' {
  if (/^\/(api\/v1\/(tokens|admin)|metrics|admin\/queues)(\/|$)/.test(route.path)) return 'admin';
  if (/^\/(mcp|sse|messages)$/.test(route.path)) return 'read';
  return route.method === 'GET' || route.method === 'HEAD' ? 'read' : 'write';
}

/** A concrete URL for a route pattern, with a query string that fails every schema that has one. */
function urlOf(route: Route): string {
  const path = route.path
    .replace(/:file/g, 'pkmcp-all-20200101T000000Z.tar.gz')
    .replace(/:[A-Za-z]+/g, 'x')
    .replace(/\*/g, 'x');
  return `${path}?limit=not-a-number&unknown_field=1`;
}

const hasBody = (method: Method) => method !== 'GET' && method !== 'HEAD';

/** The request: broken JSON for methods with a body, so any parsing or validation would answer 400. */
let client = 0;
function send(route: Route, headers: Record<string, string>, payload = '{"source": [broken'): Promise<LightMyRequestResponse> {
  client++;
  return app.inject({
    // A client address each: the walk is more requests than the anonymous rate limit allows one address.
    remoteAddress: `10.99.${client >> 8}.${client & 255}`,
    method: route.method,
    url: urlOf(route),
    headers: { ...headers, ...(hasBody(route.method) ? { 'content-type': 'application/json' } : {}) },
    ...(hasBody(route.method) ? { payload } : {}),
  });
}

const bearer = (name: string) => ({ authorization: `Bearer ${tok[name]}` });
const label = (route: Route, who: string, res: LightMyRequestResponse) => `${route.method} ${route.path} as ${who}: ${res.statusCode} ${res.body.slice(0, 200)}`;

describe('authorization before input, on every route', () => {
  let routes: Route[];
  beforeAll(() => {
    routes = routesOf(app).filter((r) => !PUBLIC.test(r.path));
  });

  it('finds every protected route in the router', () => {
    const seen = new Set(routes.map((r) => `${r.method} ${r.path}`));
    expect(routes.length).toBeGreaterThan(40);
    for (const expected of [
      'POST /api/v1/repositories',
      'POST /api/v1/repositories/:name/reindex',
      'DELETE /api/v1/repositories/:name',
      'POST /api/v1/tokens',
      'POST /api/v1/tokens/:name/rotate',
      'POST /api/v1/admin/backups',
      'POST /api/v1/admin/backups/:file/restore',
      'POST /api/v1/admin/secrets/:name/rotate',
      'GET /api/v1/admin/audit',
      'GET /api/v1/search',
      'POST /mcp',
      'POST /messages',
      'PUT /admin/queues/api/queues/:queueName/pause',
    ]) {
      expect(seen, expected).toContain(expected);
    }
  });

  it('without credentials: 401 on every route, whatever the body or query, and nothing about the schema', async () => {
    for (const route of routes) {
      if (route.path === '/sse' && route.method === 'GET') continue; // checked below: an authorised one would stream
      const res = await send(route, {});
      expect(res.statusCode, label(route, 'nobody', res)).toBe(401);
      if (route.method !== 'HEAD') expect(res.json(), label(route, 'nobody', res)).toEqual({ error: 'unauthorized', message: 'missing bearer token' });
    }
    expect((await app.inject({ method: 'GET', url: '/sse' })).statusCode).toBe(401);
    // The dashboard's files are served under its not-found prefix: guarded all the same.
    expect((await app.inject({ method: 'GET', url: '/admin/queues/static/js/main.js', remoteAddress: '10.98.0.1' })).statusCode).toBe(401);
  });

  it('with a token of too small a scope: 403 naming the scope, before the body is read', async () => {
    let checked = 0;
    for (const route of routes) {
      const scope = scopeOf(route);
      if (scope === 'read') continue;
      for (const who of scope === 'admin' ? ['reader', 'writer'] : ['reader']) {
        const res = await send(route, bearer(who));
        expect(res.statusCode, label(route, who, res)).toBe(403);
        if (route.method !== 'HEAD') expect(res.json().message, label(route, who, res)).toBe(`token '${who}' lacks the '${scope}' scope`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('with an admin of one instance on what spans every instance: 403 naming the instances, before the body is read', async () => {
    for (const route of routes) {
      if (scopeOf(route) !== 'admin') continue;
      // Backing up one instance is for that instance's admin: which one is in the body (next test).
      if (route.method === 'POST' && route.path === '/api/v1/admin/backups') continue;
      // Metrics are counts per queue and route, no instance's data: any admin may read them.
      if (route.path === '/metrics') continue;
      const res = await send(route, bearer('work-admin'));
      expect(res.statusCode, label(route, 'work-admin', res)).toBe(403);
      if (route.method !== 'HEAD') expect(res.json().message, label(route, 'work-admin', res)).toContain("token 'work-admin' may not use instances 'private', 'public'");
    }
  });

  it('an instance named in the body is checked before the rest of the body is validated', async () => {
    const add = await app.inject({
      method: 'POST',
      url: '/api/v1/repositories',
      headers: bearer('work-writer'),
      payload: { instance: 'public', source: 42, unknownField: true },
    });
    expect(add.statusCode, add.body).toBe(403);
    expect(add.json()).toEqual({ error: 'forbidden', message: "token 'work-writer' may not use instance 'public'" });
    const backup = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers: bearer('work-admin'), payload: { instance: 'private', extra: 1 } });
    expect(backup.statusCode, backup.body).toBe(403);
    expect(backup.json().message).toBe("token 'work-admin' may not use instance 'private'");
    // Within its rights, the same caller gets the validation error: the check is not a blanket refusal.
    const own = await app.inject({ method: 'POST', url: '/api/v1/repositories', headers: bearer('work-writer'), payload: { instance: 'work', source: 42 } });
    expect(own.statusCode).toBe(400);
    expect(own.json().error).toBe('validation_failed');
  });

  it('a caller with the right scope gets past the check to validation (the walk refuses for the right reason)', async () => {
    const res = await send({ method: 'POST', path: '/api/v1/repositories' }, bearer('writer'));
    expect(res.statusCode).toBe(400);
    const query = await app.inject({ method: 'GET', url: '/api/v1/admin/audit?limit=not-a-number', headers: bearer('reader') });
    expect(query.statusCode).toBe(403);
  });
});

describe('refusals in the audit trail', () => {
  it('records each refused request with principal, route, reason and source address, never the credential', async () => {
    await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer('reader'), remoteAddress: '10.1.2.3' });
    await app.inject({ method: 'GET', url: '/api/v1/repositories', headers: { authorization: `Bearer pk_mcp_${'a'.repeat(32)}` }, remoteAddress: '10.1.2.4' });
    const rows = await t.platform.audit.list({ action: 'auth', limit: 10_000 });
    const authorize = rows.find((r) => r.action === 'auth.authorize' && r.source === '10.1.2.3');
    expect(authorize).toMatchObject({
      actor: 'reader',
      target: 'GET /api/v1/tokens',
      result: 'refused',
      details: { reason: "token 'reader' lacks the 'admin' scope", code: 'forbidden', status: 403, credential: 'token' },
    });
    const authenticate = rows.find((r) => r.action === 'auth.authenticate' && r.source === '10.1.2.4');
    expect(authenticate).toMatchObject({
      actor: 'anonymous',
      target: 'GET /api/v1/repositories',
      result: 'refused',
      details: { reason: 'invalid, expired or revoked token', status: 401, credential: 'token' },
    });
    // The walk above was recorded too: one row per refused request.
    expect(rows.filter((r) => r.action === 'auth.authenticate' && r.actor === 'anonymous').length).toBeGreaterThan(40);
    const everything = JSON.stringify(await t.platform.audit.list({ limit: 10_000 }));
    for (const value of [...Object.values(tok), `pk_mcp_${'a'.repeat(32)}`]) expect(everything).not.toContain(value);
    // The admin route reads them back, filtered.
    const admin = (await createTokenService(t.platform.stores.postgres, { instances: t.config.instances }).create({ name: 'auditor', scopes: ['admin'], instances: ['*'] })).token;
    const read = await app.inject({ method: 'GET', url: '/api/v1/admin/audit?action=auth.authorize&principal=reader&result=refused&limit=5', headers: { authorization: `Bearer ${admin}` } });
    expect(read.statusCode).toBe(200);
    const entries = read.json().entries as Array<Record<string, unknown>>;
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.action === 'auth.authorize' && e.actor === 'reader' && e.result === 'refused')).toBe(true);
    expect(entries.some((e) => e.source === '10.1.2.3')).toBe(true);
  });

  it('records admin actions with their outcome and where they came from', async () => {
    const admin = (await createTokenService(t.platform.stores.postgres, { instances: t.config.instances }).create({ name: 'operator', scopes: ['admin'], instances: ['*'] })).token;
    const headers = { authorization: `Bearer ${admin}` };
    const made = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers, payload: { name: 'ci-bot', scopes: ['read'], instances: ['work'] }, remoteAddress: '10.7.7.7' });
    expect(made.statusCode).toBe(201);
    const bad = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers, payload: { name: 'x', scopes: ['read'], instances: ['nowhere'] }, remoteAddress: '10.7.7.7' });
    expect(bad.statusCode).toBe(400);
    const removed = await app.inject({ method: 'DELETE', url: '/api/v1/repositories/no-such-repo', headers, remoteAddress: '10.7.7.8' });
    expect(removed.statusCode).toBe(404);
    const backup = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers, payload: { instance: 'work' }, remoteAddress: '10.7.7.9' });
    expect(backup.statusCode).toBe(202);

    const rows = await t.platform.audit.list({ actor: 'operator', limit: 100 });
    expect(rows.find((r) => r.action === 'token.create' && r.result === 'ok')).toMatchObject({ target: 'ci-bot', source: '10.7.7.7' });
    expect(rows.find((r) => r.action === 'token.create' && r.result === 'refused')).toMatchObject({
      target: 'x',
      source: '10.7.7.7',
      details: { status: 400, error: expect.stringContaining("unknown instance 'nowhere'") },
    });
    expect(rows.filter((r) => r.action === 'token.create')).toHaveLength(2); // the service's row, not one more from the route
    expect(rows.find((r) => r.action === 'repository.remove')).toMatchObject({ target: 'no-such-repo', result: 'refused', source: '10.7.7.8' });
    expect(rows.find((r) => r.action === 'backup.create.queued')).toMatchObject({ target: 'work', result: 'ok', source: '10.7.7.9' });
    expect(JSON.stringify(rows)).not.toContain((made.json() as { token: string }).token);
  });
});
