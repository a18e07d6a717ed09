import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { upsertSchedules } from '../../workers/schedules.ts';
import { cliEnv, runCli } from '../helpers/cli.ts';
import { silentLogger } from '../helpers/context.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';
import { waitUntil } from '../helpers/polling.ts';

/**
 * Backups as an operator runs them: through the admin API (queued on the maintenance queue, followed by job
 * id), on a schedule the workers keep, from the CLI, and in the audit trail — against the real stores and
 * the real BullMQ workers.
 */
describe('backup operations: API, schedules, CLI and audit', () => {
  let t: TestPlatform;
  let app: FastifyInstance;
  let repo: GitFixture;
  let backupDir: string;
  const tokens: Record<string, string> = {};
  const auth = (name: string) => ({ authorization: `Bearer ${tokens[name]}` });
  const maintenance = () => t.platform.queues.queues.maintenance;

  beforeAll(async () => {
    backupDir = mkdtempSync(path.join(tmpdir(), 'pk-backup-ops-'));
    repo = createGitFixture();
    repo.write({ 'src/ledger.ts': 'export function reconcileLedger(entries: number[]) {\n  return entries.reduce((a, b) => a + b, 0);\n}\n' });
    repo.commit('ledger');
    t = await openTestPlatform({ instances: ['private', 'work'], backup: { dir: backupDir, keepDaily: 7, keepWeekly: 4 } });
    await t.startWorkers();
    app = await buildApp({ logger: silentLogger, platform: t.platform });
    const service = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
    tokens.admin = (await service.create({ name: 'ops-admin', scopes: ['admin'], instances: ['*'] })).token;
    tokens.workAdmin = (await service.create({ name: 'work-admin', scopes: ['admin'], instances: ['work'] })).token;
    tokens.reader = (await service.create({ name: 'reader', scopes: ['read'], instances: ['*'] })).token;
    const { jobId } = await t.repos.addAndIndex({ source: repo.dir, name: 'ledger', instance: 'work' });
    await waitForJob(t.platform.queues.queues.index, jobId);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await t?.cleanup();
    repo?.cleanup();
    rmSync(backupDir, { recursive: true, force: true });
  });

  let file = '';

  it('queues a backup through the admin API and follows it to a listed set', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers: auth('admin'), payload: {} });
    expect(res.statusCode, res.body).toBe(202);
    const { jobId } = res.json() as { jobId: string };
    expect(jobId).toMatch(/^backup-create-/);
    const result = (await waitForJob(maintenance(), jobId)) as { file: string; parts: Array<{ name: string; count: number }> };
    file = result.file;
    expect(result.parts.find((p) => p.name === 'postgres:repositories')!.count).toBe(1);
    const job = await app.inject({ method: 'GET', url: `/api/v1/jobs/${jobId}`, headers: auth('admin') });
    expect(job.json()).toMatchObject({ id: jobId, queue: 'maintenance', state: 'completed', progress: { phase: 'done' } });
    const list = await app.inject({ method: 'GET', url: '/api/v1/admin/backups', headers: auth('admin') });
    expect(list.json().backups).toEqual([expect.objectContaining({ file, instance: null, verification: null })]);
  });

  it('refuses what a token may not do, and bad input, with precise 4xx answers', async () => {
    const reader = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers: auth('reader'), payload: {} });
    expect(reader.statusCode).toBe(403);
    // An admin of one instance may back up that instance, not every one.
    const all = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers: auth('workAdmin'), payload: {} });
    expect(all.statusCode).toBe(403);
    expect(all.json().message).toMatch(/may not use instance 'private'/);
    const unknown = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers: auth('admin'), payload: { instance: 'nope' } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toBe('unknown instance "nope" (configured: private, work)');
    const traversal = await app.inject({ method: 'POST', url: `/api/v1/admin/backups/${encodeURIComponent('../x.tar.gz')}/verify`, headers: auth('admin') });
    expect(traversal.statusCode).toBe(400);
    const missing = await app.inject({ method: 'POST', url: '/api/v1/admin/backups/pkmcp-all-20200101T000000Z.tar.gz/restore', headers: auth('admin'), payload: { replace: true } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toMatch(/^no backup named pkmcp-all-20200101T000000Z\.tar\.gz/);
    const extra = await app.inject({ method: 'POST', url: `/api/v1/admin/backups/${file}/restore`, headers: auth('admin'), payload: { replace: true, force: 1 } });
    expect(extra.statusCode).toBe(400);
  });

  it('an instance admin backs up their instance; verification and a refused restore run as jobs', async () => {
    const mine = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers: auth('workAdmin'), payload: { instance: 'work' } });
    expect(mine.statusCode, mine.body).toBe(202);
    const made = (await waitForJob(maintenance(), mine.json().jobId)) as { file: string; instance: string };
    expect(made.instance).toBe('work');

    const verify = await app.inject({ method: 'POST', url: `/api/v1/admin/backups/${file}/verify`, headers: auth('admin') });
    expect(verify.statusCode).toBe(202);
    expect(await waitForJob(maintenance(), verify.json().jobId, 90_000)).toMatchObject({ file, ok: true, problems: [] });

    // Without `replace`, a restore over the live repository is refused (and fails at once, not retried).
    const refused = await app.inject({ method: 'POST', url: `/api/v1/admin/backups/${file}/restore`, headers: auth('admin'), payload: {} });
    await expect(waitForJob(maintenance(), refused.json().jobId)).rejects.toThrow(/would replace 1 repositories and 3 tokens of every instance: pass --yes/);
    const restored = await app.inject({ method: 'POST', url: `/api/v1/admin/backups/${made.file}/restore`, headers: auth('admin'), payload: { replace: true } });
    expect(await waitForJob(maintenance(), restored.json().jobId, 90_000)).toMatchObject({ problems: [] });
  }, 120_000);

  it('writes every backup action to the audit trail, with who, result and duration', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/admin/audit?action=backup', headers: auth('admin') });
    expect(res.statusCode).toBe(200);
    const entries = res.json().entries as Array<{ actor: string; action: string; result: string; durationMs: number; target: string }>;
    const seen = entries.map((e) => `${e.actor} ${e.action} ${e.result}`);
    expect(seen).toEqual(
      expect.arrayContaining(['ops-admin backup.create ok', 'work-admin backup.create ok', 'ops-admin backup.verify ok', 'ops-admin backup.restore refused', 'ops-admin backup.restore ok']),
    );
    expect(entries.every((e) => e.durationMs >= 0)).toBe(true);
    const bad = await app.inject({ method: 'GET', url: '/api/v1/admin/audit?since=yesterday', headers: auth('admin') });
    expect(bad.statusCode).toBe(400);
  });

  it('keeps one schedule per id however many workers upsert it, runs it on its own, and removes it when turned off', async () => {
    const everyTwoSeconds = { ...t.config, schedules: { ...t.config.schedules, backup: '*/2 * * * * *', prune: '', verify: '', secretRotation: '', repositoryPoll: '' } };
    // Two workers starting together.
    await Promise.all([upsertSchedules(t.platform.queues, everyTwoSeconds, silentLogger), upsertSchedules(t.platform.queues, everyTwoSeconds, silentLogger)]);
    const schedulers = await maintenance().getJobSchedulers();
    expect(schedulers.map((s) => [s.key, s.pattern])).toEqual([['backup', '*/2 * * * * *']]);
    const before = readdirSync(backupDir).filter((f) => f.endsWith('.tar.gz')).length;
    await waitUntil(async () => (await t.platform.audit.list({ actor: 'schedule:backup', action: 'backup.create' })).length > 0, 20_000);
    expect((await t.platform.audit.list({ actor: 'schedule:backup', action: 'backup.create' }))[0]).toMatchObject({ result: 'ok' });
    expect(readdirSync(backupDir).filter((f) => f.endsWith('.tar.gz')).length).toBeGreaterThan(before);
    // A changed cron replaces the schedule; an empty one removes it.
    await upsertSchedules(t.platform.queues, { ...everyTwoSeconds, schedules: { ...everyTwoSeconds.schedules, backup: '0 3 * * *' } }, silentLogger);
    expect((await maintenance().getJobSchedulers()).map((s) => s.pattern)).toEqual(['0 3 * * *']);
    await upsertSchedules(t.platform.queues, { ...everyTwoSeconds, schedules: { ...everyTwoSeconds.schedules, backup: '' } }, silentLogger);
    expect(await maintenance().getJobSchedulers()).toEqual([]);
  }, 60_000);

  it('polls repositories no webhook has reached: an incremental run for each indexed branch', async () => {
    repo.write({ 'src/extra.ts': 'export function addedWithoutWebhook() { return 2; }\n' });
    const head = repo.commit('no webhook for this one');
    const poll = await t.platform.queues.enqueue('repository-poll', { actor: 'test' });
    expect(await waitForJob(maintenance(), poll.id)).toEqual({ queued: 1 });
    const id = (await t.platform.repositories.findByName('ledger'))!.id;
    await waitUntil(async () => (await t.platform.repositories.getBranch(id, 'main'))?.indexedCommit === head, 30_000);
    // A delivery in the last day means a webhook keeps it current: not polled.
    await t.platform.stores.postgres.pool.query(
      `INSERT INTO webhook_deliveries (provider, delivery_id, event, repository_id, outcome) VALUES ('github', 'poll-test', 'push', $1, 'queued')`,
      [id],
    );
    const again = await t.platform.queues.enqueue('repository-poll', { actor: 'test' });
    expect(await waitForJob(maintenance(), again.id)).toEqual({ queued: 0 });
  }, 60_000);

  it('lists, verifies and restores from the CLI, refusing a restore over live data without --yes in one line', async () => {
    const env = cliEnv(t.config, { BACKUP_DIR: backupDir, INSTANCES: 'private,work' });
    const list = await runCli(env, 'backup', 'list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^FILE\s+CREATED\s+SCOPE\s+SIZE\s+ROWS\s+VECTORS\s+GRAPH\s+VERIFIED/);
    expect(list.stdout).toContain(file);
    const refused = await runCli(env, 'backup', 'restore', file);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/^error: restoring would replace 1 repositories and 3 tokens of every instance: pass --yes/);
    const restored = await runCli(env, 'backup', 'restore', file, '--yes');
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/restored pkmcp-all-\S+ \(every instance, taken /);
    const damaged = await runCli(env, 'backup', 'verify', path.join(tmpdir(), 'no-such-set.tar.gz'));
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(/^error: no backup named no-such-set\.tar\.gz/);
    const audit = await runCli(env, 'audit', '--action', 'backup.restore', '--principal', 'cli');
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toMatch(/cli {2}backup\.restore pkmcp-all-\S+ {2}ok \d+\.\ds/);
    expect(audit.stdout).toMatch(/cli {2}backup\.restore pkmcp-all-\S+ {2}refused/);
    expect(existsSync(path.join(backupDir, file))).toBe(true);

    // The README's commands, as written there (with this test's set names).
    const created = await runCli(env, 'backup', 'create', '--wait');
    expect(created.code, created.stderr).toBe(0);
    const made = /^wrote (pkmcp-all-\d{8}T\d{6}Z\.tar\.gz) in \d+\.\d s \(\d+ parts\) to /m.exec(created.stdout)?.[1];
    expect(made, created.stdout).toBeDefined();
    const verified = await runCli(env, 'backup', 'verify', made!);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/postgres:chunks\s+\d+\n/);
    expect(verified.stdout).toContain(`${made} verified in `);
    expect((await runCli(env, 'backup', 'list')).stdout).toMatch(new RegExp(`${made!.replaceAll('.', '\\.')}.*yes \\d{4}-\\d{2}-\\d{2}`));
    const pruned = await runCli(env, 'backup', 'prune');
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/kept \d+ set\(s\), removed \d+/);
    const trail = await runCli(env, 'audit', '--action', 'backup');
    expect(trail.stdout).toMatch(/cli {2}backup\.verify /);
    expect(trail.stdout).toMatch(/cli {2}backup\.create all {2}ok/);
    const badSince = await runCli(env, 'audit', '--since', 'last tuesday');
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toBe('error: --since must be a date or time (ISO 8601), not "last tuesday"\n');
  }, 120_000);
});
