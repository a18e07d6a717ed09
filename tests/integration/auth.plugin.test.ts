import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { assertInstance, registerAuth, SESSION_COOKIE } from '../../api/plugins/auth.plugin.ts';
import { registerErrorHandler } from '../../api/plugins/error-handler.ts';
import { createTokenService, type TokenService } from '../../shared/auth/token.service.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';

const HOUR = 3_600_000;

describe('auth plugin on a small Fastify app', () => {
  let t: TestStores;
  let tokens: TokenService;
  let app: FastifyInstance;
  let now: Date;
  const values: Record<'reader' | 'writer' | 'admin' | 'work', string> = { reader: '', writer: '', admin: '', work: '' };

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const cookieOf = (res: LightMyRequestResponse) => res.cookies.find((c) => c.name === SESSION_COOKIE);

  beforeAll(async () => {
    t = await openTestStores();
    tokens = createTokenService(t.stores.postgres, { instances: ['private', 'work', 'public'], now: () => now });
    // trustProxy only so the test can present a request as https (X-Forwarded-Proto).
    const typed = Fastify({ trustProxy: true }).withTypeProvider<ZodTypeProvider>();
    typed.setValidatorCompiler(validatorCompiler);
    typed.setSerializerCompiler(serializerCompiler);
    registerErrorHandler(typed);
    await registerAuth(typed, { tokens });

    typed.get('/open', async (request) => ({ principal: request.principal }));
    typed.get('/read', { onRequest: typed.requireScope('read') }, async (request) => ({ name: request.principal?.name }));
    typed.post(
      '/write',
      { onRequest: typed.requireScope('write'), schema: { body: z.object({ text: z.string() }) } },
      async (request) => ({ wrote: request.body.text }),
    );
    typed.get('/admin', { preHandler: typed.requireScope('admin') }, async () => ({ ok: true }));
    typed.get(
      '/instances/:instance',
      { onRequest: typed.requireScope('read'), schema: { params: z.object({ instance: z.string() }) } },
      async (request) => {
        assertInstance(request, request.params.instance);
        return { instance: request.params.instance };
      },
    );
    typed.get('/forgot-scope/:instance', async (request) => {
      assertInstance(request, (request.params as { instance: string }).instance);
      return { unreachable: true };
    });
    app = typed;
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await t?.cleanup();
  });
  beforeEach(async () => {
    now = new Date('2030-06-01T00:00:00.000Z');
    await t.stores.postgres.pool.query('TRUNCATE api_tokens, audit_log RESTART IDENTITY');
    values.reader = (await tokens.create({ name: 'reader', scopes: ['read'], instances: ['*'] })).token;
    values.writer = (await tokens.create({ name: 'writer', scopes: ['write'], instances: ['*'] })).token;
    values.admin = (await tokens.create({ name: 'root', scopes: ['admin'], instances: ['*'] })).token;
    values.work = (await tokens.create({ name: 'work-only', scopes: ['read'], instances: ['work'] })).token;
  });

  function expectUnauthorized(res: LightMyRequestResponse, message: string) {
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(res.json()).toEqual({ error: 'unauthorized', message });
  }

  it('answers 401 with WWW-Authenticate: Bearer when no token is sent', async () => {
    const res = await app.inject({ method: 'GET', url: '/read' });
    expectUnauthorized(res, 'missing bearer token');
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expectUnauthorized(await app.inject({ method: 'GET', url: '/read', headers: { authorization: `Basic ${values.reader}` } }), 'missing bearer token');
    expectUnauthorized(await app.inject({ method: 'GET', url: '/read', headers: { authorization: 'Bearer ' } }), 'missing bearer token');
  });

  it('rejects malformed, unknown, revoked and expired tokens with 401', async () => {
    const invalid = 'invalid, expired or revoked token';
    for (const token of ['garbage', `${values.reader}x`, `pk_mcp_${'f'.repeat(32)}`]) {
      const res = await app.inject({ method: 'GET', url: '/read', headers: bearer(token) });
      expectUnauthorized(res, invalid);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token", error_description="invalid, expired or revoked token"');
    }

    await tokens.revoke('reader');
    expectUnauthorized(await app.inject({ method: 'GET', url: '/read', headers: bearer(values.reader) }), invalid);

    const { token } = await tokens.create({ name: 'brief', scopes: ['read'], instances: ['*'], expiresInMs: HOUR });
    expect((await app.inject({ method: 'GET', url: '/read', headers: bearer(token) })).statusCode).toBe(200);
    now = new Date(now.getTime() + HOUR);
    expectUnauthorized(await app.inject({ method: 'GET', url: '/read', headers: bearer(token) }), invalid);
  });

  it('checks scopes with admin ⊇ write ⊇ read, answering 403 with the missing scope', async () => {
    const get = (url: string, token: string) => app.inject({ method: 'GET', url, headers: bearer(token) });
    const write = (token: string) => app.inject({ method: 'POST', url: '/write', headers: bearer(token), payload: { text: 'hi' } });

    const read = await get('/read', values.reader);
    expect([read.statusCode, read.json()]).toEqual([200, { name: 'reader' }]);
    const denied = await write(values.reader);
    expect(denied.statusCode).toBe(403);
    expect(denied.json()).toEqual({ error: 'forbidden', message: "token 'reader' lacks the 'write' scope" });
    expect((await get('/admin', values.reader)).json()).toEqual({ error: 'forbidden', message: "token 'reader' lacks the 'admin' scope" });

    expect((await get('/read', values.writer)).statusCode).toBe(200);
    expect((await write(values.writer)).json()).toEqual({ wrote: 'hi' });
    expect((await get('/admin', values.writer)).statusCode).toBe(403);

    for (const res of [await get('/read', values.admin), await write(values.admin), await get('/admin', values.admin)]) {
      expect(res.statusCode).toBe(200);
    }
  });

  it('authenticates before reading the body when used as onRequest', async () => {
    const res = await app.inject({ method: 'POST', url: '/write', headers: { 'content-type': 'application/json' }, payload: '{not json' });
    expectUnauthorized(res, 'missing bearer token');
  });

  it('leaves routes without requireScope alone', async () => {
    const res = await app.inject({ method: 'GET', url: '/open', headers: bearer('garbage') });
    expect([res.statusCode, res.json()]).toEqual([200, { principal: null }]);
  });

  it('lets routes restrict instances with assertInstance', async () => {
    const get = (instance: string, token: string) => app.inject({ method: 'GET', url: `/instances/${instance}`, headers: bearer(token) });
    expect((await get('work', values.work)).statusCode).toBe(200);
    const denied = await get('private', values.work);
    expect(denied.statusCode).toBe(403);
    expect(denied.json()).toEqual({ error: 'forbidden', message: "token 'work-only' may not use instance 'private'" });
    for (const instance of ['private', 'work', 'public']) expect((await get(instance, values.reader)).statusCode).toBe(200);
    expect((await get('unconfigured', values.admin)).statusCode).toBe(403);
    // A route that forgot requireScope fails closed.
    expect((await app.inject({ method: 'GET', url: '/forgot-scope/work', headers: bearer(values.admin) })).statusCode).toBe(500);
  });

  it('exchanges a token for an HttpOnly SameSite=Strict session cookie that then authenticates', async () => {
    const login = await app.inject({ method: 'POST', url: '/auth/session', payload: { token: values.writer } });
    expect(login.statusCode).toBe(200);
    expect(login.json()).toEqual({ name: 'writer', scopes: ['write'], instances: ['private', 'work', 'public'], expiresAt: null });
    const cookie = cookieOf(login);
    expect(cookie).toMatchObject({ value: values.writer, httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie?.secure).toBeUndefined();
    expect(cookie?.expires).toBeUndefined();

    const cookies = { [SESSION_COOKIE]: cookie!.value };
    const read = await app.inject({ method: 'GET', url: '/read', cookies });
    expect([read.statusCode, read.json()]).toEqual([200, { name: 'writer' }]);
    expect((await app.inject({ method: 'POST', url: '/write', cookies, payload: { text: 'x' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/admin', cookies })).statusCode).toBe(403);

    const logout = await app.inject({ method: 'DELETE', url: '/auth/session', cookies });
    expect(logout.statusCode).toBe(204);
    const cleared = cookieOf(logout);
    expect(cleared?.value).toBe('');
    expect(cleared?.expires?.getTime()).toBeLessThan(Date.now());
  });

  it('accepts a form post, marks the cookie Secure over https and gives it the token expiry', async () => {
    const { token } = await tokens.create({ name: 'browser', scopes: ['read'], instances: ['work'], expiresInMs: HOUR });
    const login = await app.inject({
      method: 'POST',
      url: '/auth/session',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' },
      payload: new URLSearchParams({ token }).toString(),
    });
    expect(login.statusCode).toBe(200);
    expect(login.json()).toMatchObject({ name: 'browser', expiresAt: '2030-06-01T01:00:00.000Z' });
    expect(cookieOf(login)).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Strict', expires: new Date('2030-06-01T01:00:00.000Z') });
  });

  it('refuses bad tokens at login without setting a cookie, and clears a dead session cookie', async () => {
    const bad = await app.inject({ method: 'POST', url: '/auth/session', payload: { token: `pk_mcp_${'0'.repeat(32)}` } });
    expectUnauthorized(bad, 'invalid, expired or revoked token');
    expect(cookieOf(bad)).toBeUndefined();
    expect((await app.inject({ method: 'POST', url: '/auth/session', payload: {} })).json()).toMatchObject({ error: 'validation_failed' });

    await tokens.revoke('reader');
    const dead = await app.inject({ method: 'GET', url: '/read', cookies: { [SESSION_COOKIE]: values.reader } });
    expectUnauthorized(dead, 'invalid, expired or revoked token');
    expect(cookieOf(dead)?.value).toBe('');
  });

  it('prefers the Authorization header over the session cookie', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/admin',
      headers: bearer(values.admin),
      cookies: { [SESSION_COOKIE]: values.reader },
    });
    expect(res.statusCode).toBe(200);
  });
});
