import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditRepository, scheduleAuditRetention, type AuditRepository } from '../../shared/stores/audit.repository.ts';
import { cliEnv, runCli } from '../helpers/cli.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';

/**
 * The audit trail as an operator reads it (`pk-mcp audit`, through the real CLI) and as retention keeps
 * it: rows carry the source address; rows past the retention period go, the rest stay.
 */

const DAY = 86_400_000;
let t: TestStores;
let audit: AuditRepository;

beforeAll(async () => {
  t = await openTestStores();
  audit = createAuditRepository(t.stores.postgres);
});

afterAll(async () => {
  await t?.cleanup();
});

describe('audit trail', () => {
  it('keeps callers of record() that know nothing of the source working', async () => {
    await audit.record({ actor: 'cli', action: 'backup.prune', target: '/backups', result: 'ok', durationMs: 12 });
    const [row] = await audit.list({ action: 'backup.prune' });
    expect(row).toMatchObject({ actor: 'cli', action: 'backup.prune', result: 'ok', source: null, durationMs: 12 });
  });

  it('`pk-mcp audit` shows who, what, the result, where from and why; filters by principal, action and result', async () => {
    await audit.record({ actor: 'anonymous', action: 'auth.authenticate', target: 'GET /api/v1/tokens', result: 'refused', source: '203.0.113.9', details: { reason: 'invalid, expired or revoked token', credential: 'token' } });
    await audit.record({ actor: 'oidc:alice', action: 'auth.session.create', target: 'oidc:alice', result: 'ok', source: '203.0.113.10' });
    const env = cliEnv(t.config);

    const human = await runCli(env, 'audit', '--action', 'auth');
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\S+Z {2}oidc:alice {2}auth\.session\.create oidc:alice {2}ok {2}from 203\.0\.113\.10$/);
    expect(lines[1]).toMatch(/^\S+Z {2}anonymous {2}auth\.authenticate GET \/api\/v1\/tokens {2}refused {2}from 203\.0\.113\.9 — invalid, expired or revoked token$/);

    const json = await runCli(env, 'audit', '--principal', 'anonymous', '--result', 'refused', '--json');
    expect(json.code, json.stderr).toBe(0);
    const entries = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: 'anonymous', action: 'auth.authenticate', result: 'refused', source: '203.0.113.9', details: { credential: 'token' } });

    const bad = await runCli(env, 'audit', '--result', 'maybe');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--result must be ok, failed or refused, not "maybe"');
  });

  it('deletes rows past the retention period and keeps the rest; 0 keeps everything', async () => {
    const now = new Date();
    await audit.record({ actor: 'old', action: 'retention.test', at: new Date(now.getTime() - 400 * DAY) });
    await audit.record({ actor: 'older', action: 'retention.test', at: new Date(now.getTime() - 31 * DAY) });
    await audit.record({ actor: 'recent', action: 'retention.test', at: new Date(now.getTime() - 29 * DAY) });
    await audit.record({ actor: 'now', action: 'retention.test' });

    const forever = scheduleAuditRetention(audit, { retentionDays: 0 });
    expect(await forever.run()).toBe(0);
    forever.close();
    expect(await audit.list({ action: 'retention.test' })).toHaveLength(4);

    const pruned: number[] = [];
    const month = scheduleAuditRetention(audit, { retentionDays: 30, onPruned: (count) => pruned.push(count) });
    month.close();
    await month.run();
    expect((await audit.list({ action: 'retention.test' })).map((r) => r.actor).sort()).toEqual(['now', 'recent']);
    expect(pruned.reduce((a, b) => a + b, 0)).toBe(2);
  });
});
