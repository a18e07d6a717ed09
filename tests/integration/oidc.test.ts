import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FastifyInstance } from 'fastify';
import { CompactSign } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createOidcVerifier } from '../../shared/auth/oidc.verifier.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import type { OidcConfig } from '../../shared/config/config.ts';
import { sleep } from '../../scripts/stack/process.ts';
import { silentLogger } from '../helpers/context.ts';
import { b64json, makeKey, startLocalIssuer, type IssuerKey, type LocalIssuer } from '../helpers/local-oidc-issuer.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';

/**
 * Sign-in with an identity provider beside the API tokens, against a local OIDC issuer this test starts:
 * keys made here, discovery and JWKS over HTTP, key rotation, the issuer going away. Every refusal is a
 * 401 with the precise reason, also in the audit trail; an unreachable issuer is a 503 for JWT callers
 * only once the cached keys are too old, and never touches token callers.
 */

const REFRESH_MS = 400;
const MAX_AGE_MS = 3000;

let issuer: LocalIssuer;
let k1: IssuerKey;
let t: TestPlatform;
let app: FastifyInstance;
let oidc: OidcConfig;
let adminToken = '';

const bearer = (value: string) => ({ authorization: `Bearer ${value}` });
let client = 0;
/** Each request from its own address: the walk of refusals is more than the anonymous rate limit of one. */
const from = () => `10.77.${++client >> 8}.${client & 255}`;

beforeAll(async () => {
  k1 = await makeKey('k1', 'RS256');
  issuer = await startLocalIssuer([k1]);
  oidc = {
    issuer: issuer.url,
    audiences: ['pk-mcp'],
    algorithms: ['RS256', 'ES256'],
    clockSkewMs: 30_000,
    subjectClaim: 'sub',
    scopesClaim: 'scope',
    scopeMap: null,
    instancesClaim: 'groups',
    instanceMap: { 'team-work': ['work'], 'team-public': ['public'], 'pk-admins': ['*'] },
    defaultScopes: [],
    defaultInstances: [],
    jwksRefreshMs: REFRESH_MS,
    jwksMaxAgeMs: MAX_AGE_MS,
    httpTimeoutMs: 1000,
    resource: 'http://127.0.0.1:3737/mcp',
  };
  t = await openTestPlatform({ oidc });
  app = await buildApp({ logger: silentLogger, platform: t.platform });
  adminToken = (await createTokenService(t.platform.stores.postgres, { instances: t.config.instances }).create({ name: 'admin', scopes: ['admin'], instances: ['*'] })).token;
});

afterAll(async () => {
  await app?.close();
  await t?.cleanup();
  await issuer?.close();
});

describe('JWTs beside tokens', () => {
  it('a JWT from the issuer signs in, its claims mapped to scopes and instances; tokens work beside it', async () => {
    const jwt = await issuer.sign({ scope: 'openid read', groups: ['team-work', 'unmapped'] });
    const res = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(jwt), remoteAddress: from() });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().instances.map((i: { name: string }) => i.name)).toEqual(['work']);
    expect(issuer.hits).toEqual({ discovery: 1, jwks: 1 });
    const token = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(adminToken) });
    expect(token.json().instances.map((i: { name: string }) => i.name)).toEqual(['private', 'work', 'public']);

    // The keys are cached: more JWTs, no more fetches (the refresh period has not passed).
    const again = await app.inject({ method: 'GET', url: '/api/v1/repositories', headers: bearer(await issuer.sign({ scope: 'read', groups: ['team-public'] })), remoteAddress: from() });
    expect(again.statusCode).toBe(200);
    expect(issuer.hits.jwks).toBe(1);
  });

  it('instances and scopes the claims do not grant are refused with 403, naming the subject', async () => {
    const writer = await issuer.sign({ scope: 'read write', groups: ['team-work'] });
    const other = await app.inject({ method: 'POST', url: '/api/v1/repositories', headers: bearer(writer), payload: { source: '/x', instance: 'public' }, remoteAddress: from() });
    expect(other.statusCode).toBe(403);
    expect(other.json().message).toBe("OIDC subject 'alice' may not use instance 'public'");
    const none = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(await issuer.sign({ groups: ['team-work'] })), remoteAddress: from() });
    expect(none.statusCode).toBe(403);
    expect(none.json().message).toBe("OIDC subject 'alice' lacks the 'read' scope (its claims map to no scope: see OIDC_SCOPES_CLAIM and OIDC_SCOPE_MAP)");
    const rows = await t.platform.audit.list({ action: 'auth.authorize', actor: 'oidc:alice' });
    expect(rows.map((r) => r.details.reason)).toContain("OIDC subject 'alice' may not use instance 'public'");
  });

  it('Bull Board sign-in takes a JWT as it takes a token', async () => {
    const ops = await issuer.sign({ sub: 'ops@example.com', scope: 'admin', groups: ['pk-admins'] });
    const session = await app.inject({ method: 'POST', url: '/auth/session', payload: { token: ops }, remoteAddress: '10.60.0.1' });
    expect(session.statusCode, session.body).toBe(200);
    expect(session.json()).toMatchObject({ name: 'oidc:ops@example.com', scopes: ['admin'], instances: ['private', 'work', 'public'] });
    const cookie = session.cookies.find((c) => c.name === 'pk_session')!;
    expect(cookie.httpOnly).toBe(true);
    expect(Math.abs(new Date(cookie.expires!).getTime() - (Date.now() + 300_000))).toBeLessThan(10_000);
    const board = await app.inject({ method: 'GET', url: '/admin/queues/api/queues', cookies: { pk_session: cookie.value } });
    expect(board.statusCode, board.body.slice(0, 200)).toBe(200);
    // An admin of one instance only: signed in, but the board spans every instance.
    const workAdmin = await issuer.sign({ sub: 'bob', scope: 'admin', groups: ['team-work'] });
    const partial = await app.inject({ method: 'GET', url: '/admin/queues/api/queues', cookies: { pk_session: workAdmin }, remoteAddress: '10.60.0.2' });
    expect(partial.statusCode).toBe(403);
    expect(partial.json().message).toContain("OIDC subject 'bob' may not use instances 'private', 'public'");

    const signIns = await t.platform.audit.list({ action: 'auth.session' });
    expect(signIns[0]).toMatchObject({ actor: 'oidc:ops@example.com', action: 'auth.session.create', result: 'ok', source: '10.60.0.1' });
    const refusedBoard = await t.platform.audit.list({ actor: 'oidc:bob' });
    expect(refusedBoard[0]).toMatchObject({ action: 'auth.authorize', result: 'refused', source: '10.60.0.2', details: { credential: 'jwt' } });
  });
});

describe('MCP clients find the issuer', () => {
  it('serves the protected-resource metadata and names it in 401 answers', async () => {
    for (const url of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.json()).toEqual({
        resource: 'http://127.0.0.1:3737/mcp',
        authorization_servers: [issuer.url],
        bearer_methods_supported: ['header'],
        scopes_supported: ['read', 'write', 'admin'],
        resource_name: 'Personal Knowledge MCP',
      });
    }
    const denied = await app.inject({ method: 'POST', url: '/mcp', payload: {}, remoteAddress: from() });
    expect(denied.statusCode).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Bearer resource_metadata="http://127.0.0.1:3737/.well-known/oauth-protected-resource/mcp"');
  });

  it('a real MCP client over Streamable HTTP works with a JWT', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const jwt = await issuer.sign({ sub: 'agent', scope: 'read', groups: ['team-work'] });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: bearer(jwt) } });
    const mcp = new Client({ name: 'oidc-test', version: '1.0.0' });
    await mcp.connect(transport);
    try {
      const { tools } = await mcp.listTools();
      expect(tools.map((tool) => tool.name)).toContain('semantic_search');
      const repos = await mcp.callTool({ name: 'list_repositories', arguments: {} });
      expect(repos.isError ?? false).toBe(false);
    } finally {
      await mcp.close();
    }
  });
});

describe('refused JWTs: 401 with the precise reason, in the audit trail', () => {
  it('refuses each bad JWT with its own reason, never a 500, and records it without the JWT', async () => {
    const now = Math.floor(Date.now() / 1000);
    const stranger = await makeKey('k1', 'RS256'); // same kid, another key: a forger's
    const unknown = await makeKey('k-unknown', 'RS256');
    const good = await issuer.sign({ scope: 'read', groups: ['team-work'] });
    const [head, , sig] = good.split('.');
    const forged = `${head}.${b64json({ iss: issuer.url, aud: 'pk-mcp', sub: 'root', exp: now + 300, scope: 'admin', groups: ['pk-admins'] })}.${sig}`;
    const unsigned = `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json({ iss: issuer.url, aud: 'pk-mcp', sub: 'alice', exp: now + 300, scope: 'admin' })}.`;
    const { createHmac } = await import('node:crypto');
    const hsInput = `${b64json({ alg: 'HS256', typ: 'JWT', kid: 'k1' })}.${b64json({ iss: issuer.url, aud: 'pk-mcp', sub: 'alice', exp: now + 300, scope: 'admin' })}`;
    // The classic confusion: HMAC keyed with the issuer's public key, which anyone can fetch.
    const hs256 = `${hsInput}.${createHmac('sha256', JSON.stringify(k1.publicJwk)).update(hsInput).digest('base64url')}`;

    const cases: Array<[string, string, string | RegExp]> = [
      ['wrong audience', await issuer.sign({ aud: 'another-app', scope: 'read' }), `JWT audience "another-app" is not 'pk-mcp' (OIDC_AUDIENCE)`],
      ['wrong issuer', await issuer.sign({ iss: 'https://evil.example', scope: 'read' }), `JWT issuer "https://evil.example" is not '${issuer.url}' (OIDC_ISSUER)`],
      ['expired beyond the skew', await issuer.sign({ exp: now - 120, scope: 'read' }), /^JWT expired at \d{4}-.*Z \(30 s of clock skew allowed\)$/],
      ['not yet valid beyond the skew', await issuer.sign({ nbf: now + 120, scope: 'read' }), /^JWT is not valid before \d{4}-.*Z \(30 s of clock skew allowed\)$/],
      ['no expiry', await issuer.sign({ exp: undefined, scope: 'read' }), 'JWT has no expiry (exp): only expiring JWTs are accepted'],
      ['no subject', await issuer.sign({ sub: undefined, scope: 'read' }), "JWT has no subject claim 'sub' (OIDC_SUBJECT_CLAIM)"],
      ["alg 'none'", unsigned, "JWT algorithm 'none' (unsigned) is not accepted"],
      ['HS256 with the public key as secret', hs256, "JWT algorithm 'HS256' is not accepted (OIDC_ALGORITHMS: RS256, ES256)"],
      ['signed by another key under a known kid', await issuer.sign({ scope: 'read' }, { key: stranger }), "JWT signature does not verify with the issuer's key 'k1': signed by another key, or altered"],
      ['forged claims', forged, "JWT signature does not verify with the issuer's key 'k1': signed by another key, or altered"],
      ['unknown kid', await issuer.sign({ scope: 'read' }, { key: unknown }), `JWT names key 'k-unknown', which is not in the key set of ${issuer.url}`],
      ['a known kid with another algorithm', await issuer.sign({ scope: 'read' }, { key: await makeKey('k1', 'ES256') }), "JWT names the issuer's key 'k1' with algorithm ES256, which that key is not for"],
      ['claims that are not JSON (signed all the same)', await new CompactSign(new TextEncoder().encode('not json')).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(k1.privateKey), /^malformed JWT: /],
      ['malformed header', 'bm90IGpzb24.e30.c2ln', /^malformed JWT: /],
      ['oversized', `${head}.${'A'.repeat(9000)}.${sig}`, /^JWT is too large \(\d+ bytes; at most 8192\)$/],
    ];
    for (const [what, jwt, reason] of cases) {
      const source = from();
      const res = await app.inject({ method: 'GET', url: '/api/v1/repositories', headers: bearer(jwt), remoteAddress: source });
      expect(res.statusCode, `${what}: ${res.body}`).toBe(401);
      expect(res.json().error, what).toBe('unauthorized');
      expect(res.json().message, what).toMatch(typeof reason === 'string' ? new RegExp(`^${reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : reason);
      expect(res.headers['www-authenticate'], what).toMatch(/^Bearer resource_metadata="[^"]+", error="invalid_token", error_description="/);
      const [row] = await t.platform.audit.list({ action: 'auth.authenticate' }).then((rows) => rows.filter((r) => r.source === source));
      expect(row, what).toMatchObject({ actor: 'anonymous', result: 'refused', target: 'GET /api/v1/repositories', details: { reason: res.json().message, credential: 'jwt', status: 401 } });
      expect(JSON.stringify(row)).not.toContain(jwt.split('.')[2] || jwt.split('.')[1]);
    }
    // Within the skew is accepted: a clock a little behind or ahead is not a refusal.
    for (const claims of [{ exp: now - 10 }, { nbf: now + 10 }]) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(await issuer.sign({ scope: 'read', groups: ['team-work'], ...claims })), remoteAddress: from() });
      expect(res.statusCode, JSON.stringify(claims)).toBe(200);
    }
  });

  it('a JWT where no issuer is configured is refused, naming the missing configuration', async () => {
    const plain = await buildApp({ logger: silentLogger, platform: { ...t.platform, config: { ...t.config, oidc: null } } });
    try {
      const res = await plain.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(await issuer.sign({ scope: 'read' })), remoteAddress: from() });
      expect(res.statusCode).toBe(401);
      expect(res.json().message).toBe('a JWT was presented, but sign-in with an identity provider is not configured here (OIDC_ISSUER): use an API token');
      expect((await plain.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource' })).statusCode).toBe(404);
    } finally {
      await plain.close();
    }
  });
});

describe('key rotation and an unreachable issuer', () => {
  it('picks up a rotated key, and drops the retired one', async () => {
    const k2 = await makeKey('k2', 'ES256');
    issuer.published = [k2];
    await sleep(REFRESH_MS + 50); // past the cooldown between fetches
    const fetched = issuer.hits.jwks;
    const res = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(await issuer.sign({ scope: 'read', groups: ['team-work'] }, { key: k2 })), remoteAddress: from() });
    expect(res.statusCode, res.body).toBe(200);
    expect(issuer.hits.jwks).toBe(fetched + 1);
    const retired = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(await issuer.sign({ scope: 'read' }, { key: k1 })), remoteAddress: from() });
    expect(retired.statusCode).toBe(401);
    expect(retired.json().message).toBe(`JWT names key 'k1', which is not in the key set of ${issuer.url}`);
  });

  it('forged key ids do not turn every request into a fetch of the key set', async () => {
    const fetched = issuer.hits.jwks;
    const forger = await makeKey('x', 'RS256');
    const statuses = [];
    for (let i = 0; i < 20; i++) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(await issuer.sign({ scope: 'read' }, { key: forger, kid: `forged-${i}` })), remoteAddress: from() });
      statuses.push(res.statusCode);
    }
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(issuer.hits.jwks - fetched).toBeLessThanOrEqual(2);
  });

  it('with the issuer down, cached keys work until they are too old; then JWT callers get 503 and tokens still work', async () => {
    const k2 = issuer.published[0]!;
    const jwt = await issuer.sign({ scope: 'read', groups: ['team-work'] }, { key: k2 });
    await sleep(REFRESH_MS + 50);
    // A fresh fetch now, so the cache's age is known from here.
    expect((await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(jwt), remoteAddress: from() })).statusCode).toBe(200);
    await sleep(200);
    const cachedAt = Date.now();
    issuer.mode = 'down';
    await sleep(REFRESH_MS + 100); // stale: a refresh is tried behind each request, and fails
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(jwt), remoteAddress: from() });
      expect(res.statusCode, res.body).toBe(200);
      await sleep(100);
    }
    await sleep(Math.max(0, cachedAt + MAX_AGE_MS - Date.now()) + 200);
    const source = from();
    const refused = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(jwt), remoteAddress: source });
    expect(refused.statusCode, refused.body).toBe(503);
    expect(refused.json()).toEqual({
      error: 'identity_provider_unavailable',
      message: expect.stringMatching(/^the identity provider's keys \(fetched .*\) are older than OIDC_JWKS_MAX_AGE and cannot be fetched again: .*could not be fetched.*; API tokens still work$/),
    });
    const token = await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(adminToken) });
    expect(token.statusCode).toBe(200);
    const [row] = (await t.platform.audit.list({ action: 'auth.authenticate', result: 'failed' })).filter((r) => r.source === source);
    expect(row).toMatchObject({ actor: 'anonymous', details: { code: 'identity_provider_unavailable', status: 503, credential: 'jwt' } });

    // The issuer back: after the cooldown, JWTs work again.
    issuer.mode = 'up';
    await sleep(REFRESH_MS + 50);
    expect((await app.inject({ method: 'GET', url: '/api/v1/instances', headers: bearer(jwt), remoteAddress: from() })).statusCode).toBe(200);
  });
});

describe('the verifier on its own', () => {
  it('maps claims at a dotted path through the configured maps, with defaults', async () => {
    const verifier = createOidcVerifier(
      { ...oidc, scopesClaim: 'realm_access.roles', scopeMap: { 'pk-writer': ['write'], 'pk-reader': ['read'] }, instanceMap: null, defaultInstances: ['public'], subjectClaim: 'preferred_username' },
      { instances: ['private', 'work', 'public'] },
    );
    const principal = await verifier.verify(
      await issuer.sign({ preferred_username: 'carol', realm_access: { roles: ['pk-writer', 'other'] }, groups: ['work', 'nonexistent'] }),
    );
    expect(principal).toMatchObject({ name: 'oidc:carol', kind: 'oidc', subject: 'carol', scopes: ['write'], instances: ['work', 'public'] });
    expect(principal.tokenId).toBeLessThan(0);
    // The same person, another JWT: the same id (an MCP session stays theirs across refreshed JWTs).
    expect((await verifier.verify(await issuer.sign({ preferred_username: 'carol' }))).tokenId).toBe(principal.tokenId);
    expect((await verifier.verify(await issuer.sign({ preferred_username: 'dave' }))).tokenId).not.toBe(principal.tokenId);
  });

  it('refuses a discovery document that names another issuer, with a 503 naming it', async () => {
    const verifier = createOidcVerifier({ ...oidc, issuer: `${issuer.url}/` }, { instances: ['work'] });
    const err = await verifier.verify(await issuer.sign({ iss: `${issuer.url}/` })).catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 503, code: 'identity_provider_unavailable' });
    expect((err as Error).message).toContain(`names issuer "${issuer.url}", not ${issuer.url}/`);
  });
});
