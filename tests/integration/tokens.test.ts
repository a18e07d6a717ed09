import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  canUseInstance,
  createTokenService,
  hasScope,
  parseDuration,
  type Scope,
  type TokenService,
} from '../../shared/auth/token.service.ts';
import { ConfigError } from '../../shared/config/config.ts';
import { AppError } from '../../shared/errors.ts';
import { createPostgresConnection } from '../../shared/stores/postgres.connection.ts';
import { countQueries, waitUntil } from '../helpers/polling.ts';
import { openTestStores, silentLogger, type TestStores } from '../helpers/context.ts';

const INSTANCES = ['private', 'work', 'public'];
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Resolves to the AppError `promise` rejects with; fails the test when it resolves. */
async function appError(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

function syncAppError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected an AppError, nothing was thrown');
}

describe('token service against the real Postgres', () => {
  let t: TestStores;
  let tokens: TokenService;
  let now: Date;
  let tmp: string;
  const advance = (ms: number) => {
    now = new Date(now.getTime() + ms);
  };
  const query = async (sql: string, params: unknown[] = []) => (await t.stores.postgres.pool.query(sql, params)).rows;

  beforeAll(async () => {
    t = await openTestStores();
    tokens = createTokenService(t.stores.postgres, { instances: INSTANCES, now: () => now });
    tmp = await mkdtemp(path.join(tmpdir(), 'pk-tokens-'));
  });
  afterAll(async () => {
    await t?.cleanup();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    now = new Date('2030-01-01T00:00:00.000Z');
    await query('TRUNCATE api_tokens, audit_log RESTART IDENTITY');
  });

  it('issues pk_mcp_ + 32 lower-case hex values, different every time', async () => {
    const a = await tokens.create({ name: 'a', scopes: ['read'], instances: ['work'] });
    const b = await tokens.create({ name: 'b', scopes: ['read'], instances: ['work'] });
    expect(a.token).toMatch(/^pk_mcp_[0-9a-f]{32}$/);
    expect(b.token).toMatch(/^pk_mcp_[0-9a-f]{32}$/);
    expect(a.token).not.toBe(b.token);
  });

  it('stores only the SHA-256 of the value: no column, audit entry or listing contains it', async () => {
    const { token } = await tokens.create({ name: 'ci', scopes: ['read', 'write'], instances: ['work', 'public'], actor: 'tester' });
    const secretPart = token.slice('pk_mcp_'.length);
    const hash = createHash('sha256').update(token).digest('hex');

    const rows = await query('SELECT * FROM api_tokens');
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash).toBe(hash);
    for (const [column, value] of Object.entries(rows[0])) {
      expect(JSON.stringify(value) ?? '', column).not.toContain(secretPart);
    }
    const audit = await query('SELECT actor, action, target, details FROM audit_log');
    expect(audit).toEqual([expect.objectContaining({ actor: 'tester', action: 'token.create', target: 'ci' })]);
    const auditText = JSON.stringify(audit);
    expect(auditText).not.toContain(secretPart);
    expect(auditText).not.toContain(hash);

    const listed = JSON.stringify(await tokens.list());
    expect(listed).not.toContain(secretPart);
    expect(listed).not.toContain(hash);
  });

  it('verifies a value into a principal and rejects wrong formats and unknown values', async () => {
    const { token, record } = await tokens.create({ name: 'reader', scopes: ['read'], instances: ['public', 'work'] });
    expect(await tokens.verify(token)).toEqual({
      tokenId: record.id,
      name: 'reader',
      scopes: ['read'],
      instances: ['work', 'public'],
      expiresAt: null,
    });
    expect(await tokens.verify('')).toBeNull();
    expect(await tokens.verify(token.toUpperCase())).toBeNull();
    expect(await tokens.verify(`${token}0`)).toBeNull();
    expect(await tokens.verify(`Bearer ${token}`)).toBeNull();
    expect(await tokens.verify(`pk_mcp_${'0'.repeat(32)}`)).toBeNull();
  });

  it("expands '*' to every configured instance, including ones configured later", async () => {
    const { token } = await tokens.create({ name: 'all', scopes: ['read'], instances: ['*'] });
    expect((await tokens.verify(token))?.instances).toEqual(INSTANCES);
    const [listed] = await tokens.list();
    expect(listed?.instances).toEqual(['*']);

    const wider = createTokenService(t.stores.postgres, { instances: [...INSTANCES, 'lab'], now: () => now });
    const principal = await wider.verify(token);
    expect(principal?.instances).toEqual([...INSTANCES, 'lab']);
    expect(canUseInstance(principal!, 'lab')).toBe(true);
  });

  it('applies the scope hierarchy admin ⊇ write ⊇ read', () => {
    const p = (scopes: Scope[]) => ({ scopes });
    expect([hasScope(p(['read']), 'read'), hasScope(p(['read']), 'write'), hasScope(p(['read']), 'admin')]).toEqual([true, false, false]);
    expect([hasScope(p(['write']), 'read'), hasScope(p(['write']), 'write'), hasScope(p(['write']), 'admin')]).toEqual([true, true, false]);
    expect([hasScope(p(['admin']), 'read'), hasScope(p(['admin']), 'write'), hasScope(p(['admin']), 'admin')]).toEqual([true, true, true]);
    expect(canUseInstance({ instances: ['work'] }, 'private')).toBe(false);
  });

  it('lists tokens with their state and never their values', async () => {
    await tokens.create({ name: 'ops', scopes: ['write', 'read'], instances: ['private'], expiresInMs: 30 * 24 * HOUR });
    const [record] = await tokens.list();
    expect(record).toEqual({
      id: expect.any(Number),
      name: 'ops',
      scopes: ['read', 'write'],
      instances: ['private'],
      status: 'active',
      createdAt: now,
      expiresAt: new Date(now.getTime() + 30 * 24 * HOUR),
      lastUsedAt: null,
      revokedAt: null,
      rotateEveryMs: null,
      previousValues: [],
    });
  });

  it('revokes at once, keeps the row for audit, and frees the name', async () => {
    const first = await tokens.create({ name: 'laptop', scopes: ['read'], instances: ['work'] });
    advance(MINUTE);
    const revoked = await tokens.revoke('laptop', { actor: 'tester' });
    expect(revoked).toMatchObject({ name: 'laptop', status: 'revoked', revokedAt: now });
    expect(await tokens.verify(first.token)).toBeNull();

    const second = await tokens.create({ name: 'laptop', scopes: ['write'], instances: ['work'] });
    expect(await tokens.verify(second.token)).toMatchObject({ name: 'laptop', scopes: ['write'] });
    expect(await tokens.verify(first.token)).toBeNull();
    expect((await tokens.list()).map((r) => [r.name, r.status])).toEqual([
      ['laptop', 'active'],
      ['laptop', 'revoked'],
    ]);
    expect((await query('SELECT action FROM audit_log ORDER BY id')).map((r) => r.action)).toEqual([
      'token.create',
      'token.revoke',
      'token.create',
    ]);

    const missing = await appError(tokens.revoke('laptop-2'));
    expect(missing.statusCode).toBe(404);
    await tokens.revoke('laptop');
    expect((await appError(tokens.revoke('laptop'))).statusCode).toBe(404);
  });

  it('rotates: the old value works until the grace period ends, the new one at once', async () => {
    const old = await tokens.create({ name: 'ci', scopes: ['read', 'write'], instances: ['work'] });
    const rotated = await tokens.rotate('ci', { graceMs: HOUR, actor: 'tester' });
    expect(rotated.token).not.toBe(old.token);
    expect(rotated.record).toMatchObject({
      name: 'ci',
      scopes: ['read', 'write'],
      instances: ['work'],
      status: 'active',
      previousValues: [{ validUntil: new Date(now.getTime() + HOUR), lastUsedAt: null }],
    });
    expect(await tokens.verify(rotated.token)).toMatchObject({ name: 'ci', scopes: ['read', 'write'], instances: ['work'] });

    advance(HOUR - 1);
    expect(await tokens.verify(old.token)).toMatchObject({ name: 'ci' });
    expect((await tokens.list())[0]?.previousValues[0]?.lastUsedAt).toEqual(now);
    advance(1);
    expect(await tokens.verify(old.token)).toBeNull();
    expect(await tokens.verify(rotated.token)).not.toBeNull();
    expect((await tokens.list()).map((r) => [r.name, r.status, r.previousValues.length])).toEqual([['ci', 'active', 0]]);
  });

  it('rotates without grace by default, and a revoke also ends a grace period', async () => {
    const old = await tokens.create({ name: 'bot', scopes: ['read'], instances: ['public'] });
    const next = await tokens.rotate('bot');
    expect(await tokens.verify(old.token)).toBeNull();
    expect(await tokens.verify(next.token)).not.toBeNull();

    const third = await tokens.rotate('bot', { graceMs: HOUR });
    expect(await tokens.verify(next.token)).not.toBeNull();
    await tokens.revoke('bot');
    expect(await tokens.verify(next.token)).toBeNull();
    expect(await tokens.verify(third.token)).toBeNull();
    expect((await appError(tokens.rotate('bot'))).statusCode).toBe(404);
  });

  it('keeps the expiry on rotation and never extends the old value beyond it', async () => {
    const old = await tokens.create({ name: 'short', scopes: ['read'], instances: ['work'], expiresInMs: 10 * MINUTE });
    const rotated = await tokens.rotate('short', { graceMs: HOUR });
    expect(rotated.record.expiresAt).toEqual(new Date(now.getTime() + 10 * MINUTE));
    expect(rotated.record.previousValues[0]?.validUntil).toEqual(new Date(now.getTime() + 10 * MINUTE));
    advance(10 * MINUTE);
    expect(await tokens.verify(old.token)).toBeNull();
    expect(await tokens.verify(rotated.token)).toBeNull();
  });

  it('expires tokens: valid until the instant, then rejected; the name stays taken until revoked', async () => {
    const { token } = await tokens.create({ name: 'temp', scopes: ['read'], instances: ['work'], expiresInMs: HOUR });
    advance(HOUR - 1);
    expect(await tokens.verify(token)).toMatchObject({ name: 'temp', expiresAt: new Date('2030-01-01T01:00:00.000Z') });
    advance(1);
    expect(await tokens.verify(token)).toBeNull();
    expect((await tokens.list())[0]?.status).toBe('expired');

    const taken = await appError(tokens.create({ name: 'temp', scopes: ['read'], instances: ['work'] }));
    expect(taken.statusCode).toBe(409);
    expect(taken.message).toMatch(/token named 'temp' already exists \(expired 2030-01-01T01:00:00.000Z\).*revoke/);

    const rotateExpired = await appError(tokens.rotate('temp'));
    expect(rotateExpired.statusCode).toBe(400);
    expect(rotateExpired.message).toContain('expired');
    const renewed = await tokens.rotate('temp', { expiresInMs: HOUR });
    expect(await tokens.verify(renewed.token)).not.toBeNull();
  });

  it('caches a verified token, and a revocation by another process ends it at once', async () => {
    const { token } = await tokens.create({ name: 'cached', scopes: ['read'], instances: ['work'] });
    // Listening starts with the first verification; from then on a repeat makes no query.
    await waitUntil(async () => {
      await tokens.verify(token);
      const queries = countQueries(t.stores.postgres.pool);
      const principal = await tokens.verify(token);
      return queries.stop() === 0 && principal?.name === 'cached';
    });

    const elsewhere = createPostgresConnection({ url: t.config.databaseUrl, schema: t.config.databaseSchema, max: 1 }, silentLogger);
    try {
      await createTokenService(elsewhere, { instances: INSTANCES, now: () => now }).revoke('cached');
      await waitUntil(async () => (await tokens.verify(token)) === null, 2000);
    } finally {
      await elsewhere.close();
    }
  });

  it('writes last_used_at at most once a minute per token', async () => {
    const { token, record } = await tokens.create({ name: 'busy', scopes: ['read'], instances: ['work'] });
    const lastUsed = async () => (await query('SELECT last_used_at FROM api_tokens WHERE id = $1', [record.id]))[0]?.last_used_at as Date | null;
    expect(await lastUsed()).toBeNull();

    const t0 = now;
    await tokens.verify(token);
    expect(await lastUsed()).toEqual(t0);
    advance(30_000);
    await tokens.verify(token);
    advance(29_999);
    await tokens.verify(token);
    expect(await lastUsed()).toEqual(t0);
    advance(1);
    await tokens.verify(token);
    expect(await lastUsed()).toEqual(now);
    expect((await tokens.list())[0]?.lastUsedAt).toEqual(now);
  });

  it('rejects invalid input with 400s that say what is valid', async () => {
    const base = { name: 'x', scopes: ['read'], instances: ['work'] };
    const cases: Array<[Partial<typeof base>, RegExp]> = [
      [{ name: '' }, /invalid token name ''/],
      [{ name: 'has space' }, /invalid token name/],
      [{ name: 'a'.repeat(65) }, /1-64 characters/],
      [{ scopes: [] }, /at least one scope/],
      [{ scopes: ['read', 'superuser'] }, /unknown scope 'superuser': valid scopes are read, write, admin/],
      [{ instances: [] }, /at least one instance/],
      [{ instances: ['work', 'home'] }, /unknown instance 'home': valid instances are private, work, public, or '\*'/],
      [{ instances: ['*', 'work'] }, /do not combine/],
      [{ name: 'bootstrap-admin' }, /reserved/],
    ];
    for (const [override, message] of cases) {
      const err = await appError(tokens.create({ ...base, ...override }));
      expect(err.statusCode, JSON.stringify(override)).toBe(400);
      expect(err.message).toMatch(message);
    }
    expect((await appError(tokens.create({ ...base, expiresInMs: 0 }))).statusCode).toBe(400);
    expect((await appError(tokens.rotate('x', { graceMs: -1 }))).statusCode).toBe(400);
    expect(await query('SELECT 1 FROM api_tokens')).toHaveLength(0);

    await tokens.create({ name: 'dup', scopes: ['read'], instances: ['work'] });
    const dup = await appError(tokens.create({ name: 'dup', scopes: ['admin'], instances: ['*'] }));
    expect(dup.statusCode).toBe(409);
  });

  it('lets exactly one of two concurrent creates with the same name win', async () => {
    const results = await Promise.allSettled(
      [1, 2].map(() => tokens.create({ name: 'race', scopes: ['read'], instances: ['work'] })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ statusCode: 409 });
  });

  it('parses durations strictly', () => {
    expect(parseDuration('3600s')).toBe(HOUR);
    expect(parseDuration('90m')).toBe(90 * MINUTE);
    expect(parseDuration('24h')).toBe(24 * HOUR);
    expect(parseDuration('30d')).toBe(30 * 24 * HOUR);
    expect(parseDuration('2w')).toBe(14 * 24 * HOUR);
    expect(parseDuration('0')).toBe(0);
    for (const bad of ['', '30', '1.5h', '-1d', '30 days', '1y', 'h', '10D']) {
      const err = syncAppError(() => parseDuration(bad));
      expect(err.statusCode).toBe(400);
      expect(err.message).toContain('e.g. 90m, 24h, 30d');
    }
  });

  it('bootstraps an admin from a secrets file, idempotently, and reports when there is none', async () => {
    expect(await tokens.hasActiveAdmin()).toBe(false);
    await tokens.create({ name: 'reader', scopes: ['read', 'write'], instances: ['*'] });
    expect(await tokens.hasActiveAdmin()).toBe(false);

    const file = path.join(tmp, 'admin-token');
    const value = `pk_mcp_${'ab'.repeat(16)}`;
    await writeFile(file, `${value}\n`);
    expect((await tokens.ensureAdminFromSecretsFile(file)).status).toBe('created');
    expect((await tokens.ensureAdminFromSecretsFile(file)).status).toBe('exists');
    expect(await tokens.hasActiveAdmin()).toBe(true);
    expect(await tokens.verify(value)).toMatchObject({ name: 'bootstrap-admin', scopes: ['admin'], instances: INSTANCES });
    expect(await query(`SELECT 1 FROM api_tokens WHERE name = 'bootstrap-admin'`)).toHaveLength(1);

    // A new value in the file replaces the old bootstrap token.
    const next = `pk_mcp_${'cd'.repeat(16)}`;
    await writeFile(file, next);
    expect((await tokens.ensureAdminFromSecretsFile(file)).status).toBe('replaced');
    expect(await tokens.verify(value)).toBeNull();
    expect(await tokens.verify(next)).not.toBeNull();

    // Its value lives in the file, so rotating it here would only make the file stale.
    const rotate = await appError(tokens.rotate('bootstrap-admin'));
    expect([rotate.statusCode, rotate.message]).toEqual([400, expect.stringContaining('admin token file')]);

    // A revoked value is reported, never revived.
    await tokens.revoke('bootstrap-admin');
    expect(await tokens.hasActiveAdmin()).toBe(false);
    const revoked = await tokens.ensureAdminFromSecretsFile(file);
    expect(revoked.status).toBe('unusable');
    expect(revoked.message).toContain('revoked');
    expect(await tokens.verify(next)).toBeNull();
  });

  it('refuses a secrets file without a token, without echoing its content', async () => {
    const file = path.join(tmp, 'not-a-token');
    await writeFile(file, 'hunter2-super-secret');
    const err = await tokens.ensureAdminFromSecretsFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('hunter2');
    await expect(tokens.ensureAdminFromSecretsFile(path.join(tmp, 'missing'))).rejects.toBeInstanceOf(ConfigError);
    expect(await query('SELECT 1 FROM api_tokens')).toHaveLength(0);
  });
});
