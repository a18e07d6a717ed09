import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndexResult } from '../../workers/jobs/index-repository.job.ts';
import { sleep } from '../../scripts/stack/process.ts';
import { closedPort, startFakeGitHost, type FakeGitHost } from '../helpers/fake-git-host.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

const SETTINGS = `def parse_settings(path):
    """Reads the settings file."""
    with open(path) as handle:
        return handle.read()
`;

/** Every file under a folder, as text (Git mirrors are small here). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    const stat = statSync(full);
    if (stat.isDirectory()) out.push(...filesUnder(full));
    else out.push(readFileSync(full, 'latin1'));
  }
  return out;
}

describe('private repositories over HTTPS-style Git hosting (a local host that wants a token, as GitHub does)', () => {
  const TOKEN = `ghp_${randomBytes(18).toString('hex')}`;
  let host: FakeGitHost;
  let repo: GitFixture;
  let t: TestPlatform;
  const logLines: string[] = [];

  async function index(name: string): Promise<IndexResult> {
    const { jobId } = await t.repos.requestIndex(name);
    return (await waitForJob(t.platform.queues.queues.index, jobId)) as IndexResult;
  }

  beforeAll(async () => {
    host = await startFakeGitHost({ token: TOKEN });
    repo = createGitFixture();
    repo.write({ 'tools/settings.py': SETTINGS, 'README.md': '# Settings\n\nHow settings are read.\n' });
    repo.commit('initial');
    host.serve('settings', path.join(repo.dir, '.git'));
    // Everything the platform logs, at every level, to check that the token is never among it.
    const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
    t = await openTestPlatform({ gitToken: TOKEN }, { logger });
    await t.startWorkers();
  });

  afterAll(async () => {
    await t?.cleanup();
    await host?.close();
    repo?.cleanup();
  });

  it('registers and indexes with the token from GIT_TOKEN, which reaches no job, row, mirror or log', async () => {
    const added = await t.repos.add({ source: host.url('settings') });
    expect(added).toMatchObject({ name: 'settings', defaultBranch: 'main' });
    const result = await index('settings');
    expect(result.commit).toBe(repo.head());
    const { hits } = await t.search.search({ query: 'parse_settings', repositories: ['settings'] });
    expect(hits[0]).toMatchObject({ path: 'tools/settings.py', commit: repo.head() });

    // Every request carried the token: none went out without it first.
    expect(host.requests.length).toBeGreaterThan(0);
    expect(host.requests.filter((r) => r.credentials !== 'accepted')).toEqual([]);

    // Redis: every key of this platform's queues (job data, return values, logs, events).
    const redis = t.platform.stores.redis.client;
    const keys = await redis.keys(`${t.config.queuePrefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      const type = await redis.type(key);
      const value =
        type === 'string' ? await redis.get(key)
        : type === 'hash' ? JSON.stringify(await redis.hgetall(key))
        : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1))
        : type === 'zset' ? JSON.stringify(await redis.zrange(key, '0', '-1'))
        : type === 'set' ? JSON.stringify(await redis.smembers(key))
        : type === 'stream' ? JSON.stringify(await redis.xrange(key, '-', '+'))
        : '';
      expect(value, key).not.toContain(TOKEN);
    }
    // Postgres: every row of every table of this platform's schema.
    const pg = t.platform.stores.postgres.pool;
    const tables = await pg.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, [t.config.databaseSchema]);
    expect(tables.rows.length).toBeGreaterThan(3);
    for (const { table_name } of tables.rows) {
      const rows = await pg.query<{ row: string }>(`SELECT t::text AS row FROM ${t.config.databaseSchema}."${table_name}" t`);
      for (const { row } of rows.rows) expect(row, table_name).not.toContain(TOKEN);
    }
    // The Git mirror on disk (its config, refs, packs) and every log line.
    const mirrorFiles = filesUnder(t.config.workspaceDir);
    expect(mirrorFiles.length).toBeGreaterThan(0);
    for (const content of mirrorFiles) expect(content).not.toContain(TOKEN);
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(line).not.toContain(TOKEN);
  });

  it('a token the host no longer accepts fails the run saying so, and the last good index stays searchable', async () => {
    const settings = (await t.platform.repositories.findByName('settings'))!;
    const good = repo.head();
    host.setToken(`ghp_${randomBytes(18).toString('hex')}`); // the configured token was revoked
    try {
      repo.write({ 'tools/loader.py': 'def load_everything():\n    return 1\n' });
      repo.commit('second');
      const refused = new RegExp(`access to ${host.url('settings').replace(/[.]/g, '\\.')} was refused: check the token \\(GIT_TOKEN\\)`);
      await expect(index('settings')).rejects.toThrow(refused);
      expect(await t.platform.repositories.getBranch(settings.id, 'main')).toMatchObject({ indexedCommit: good, status: 'failed' });
      const { hits } = await t.search.search({ query: 'parse_settings', repositories: ['settings'] });
      expect(hits[0]).toMatchObject({ path: 'tools/settings.py', commit: good });

      // Registering another private repository with it is refused with the same reason, and nothing is stored.
      host.serve('other', path.join(repo.dir, '.git'));
      await expect(t.repos.add({ source: host.url('other') })).rejects.toMatchObject({ statusCode: 422, message: expect.stringMatching(/was refused: check the token/) });
      expect(await t.platform.repositories.findByName('other')).toBeNull();
    } finally {
      host.setToken(TOKEN);
    }
    // With the token accepted again, the next run catches up.
    expect((await index('settings')).commit).toBe(repo.head());
  });

  it('without any token, the host refuses and the registration says why', async () => {
    const anonymous = await openTestPlatform({ gitToken: undefined });
    try {
      await expect(anonymous.repos.add({ source: host.url('settings'), name: 'anonymous' })).rejects.toMatchObject({
        statusCode: 422,
        message: expect.stringMatching(/was refused: check the token \(GIT_TOKEN\)/),
      });
      expect(host.requests.at(-1)?.credentials).toBe('none');
    } finally {
      await anonymous.cleanup();
    }
  });

  it('a host that does not exist is refused at registration; a host that refuses connections is retried with backoff', async () => {
    await expect(t.repos.add({ source: 'https://git.pk-mcp-test.invalid/team/app.git' })).rejects.toMatchObject({
      statusCode: 422,
      message: 'cannot reach https://git.pk-mcp-test.invalid/team/app.git: host not found',
    });

    // Registered while the host was up (branch known), then the host went away: connection refused may pass, so
    // the run is retried with backoff; the first attempt's reason says what happened.
    const url = `http://127.0.0.1:${await closedPort()}/offline.git`;
    const offline = await t.platform.repositories.create({ name: 'offline', sourceUrl: url, defaultBranch: 'main' });
    const { jobId } = await t.repos.requestIndex('offline');
    const queue = t.platform.queues.queues.index;
    let job = await queue.getJob(jobId);
    for (let i = 0; i < 100 && !job?.failedReason; i++) {
      await sleep(100);
      job = await queue.getJob(jobId);
    }
    expect(job?.failedReason).toMatch(new RegExp(`^cannot connect to ${url.replace(/[.]/g, '\\.')} \\(.*(Failed to connect|Couldn't connect)`));
    expect(await job!.getState()).toBe('delayed');
    expect(job!.attemptsMade).toBe(1);
    await job!.remove();
    expect(await t.platform.repositories.getBranch(offline!.id, 'main')).toMatchObject({ indexedCommit: null });
  });
});
