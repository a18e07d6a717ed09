import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli as pkMcp, type CliRun as Run } from '../helpers/cli.ts';
import { testConfig } from '../helpers/context.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';

/** A failure is one `error: …` line on stderr and a non-zero exit. */
function expectOneLineError(run: Run, message: string | RegExp): void {
  expect(run.code, run.stdout + run.stderr).not.toBe(0);
  expect(run.code).not.toBeNull();
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(message);
}

describe('pk-mcp CLI against the real stores', () => {
  let tp: TestPlatform;
  let fixture: GitFixture;
  let head: string;
  let env: NodeJS.ProcessEnv;
  let freshSchema: string;
  const name = 'cli-fixture';

  beforeAll(async () => {
    fixture = createGitFixture();
    fixture.write({
      'src/retry.ts': [
        'export function computeBackoffDelay(attempt: number, baseMs: number): number {',
        '  return Math.min(baseMs * 2 ** attempt, 30_000);',
        '}',
        '',
      ].join('\n'),
      'src/greeting.ts': 'export function greetVisitor(name: string): string {\n  return `hello ${name}`;\n}\n',
      'README.md': '# fixture\n\nA small repository the CLI test indexes.\n',
    });
    head = fixture.commit('initial');
    const base = testConfig();
    tp = await openTestPlatform({ embedding: { ...base.embedding, provider: 'local', openaiApiKey: undefined } });
    await tp.startWorkers();
    env = cliEnv(tp.config);
    freshSchema = `${tp.config.databaseSchema}_fresh`;
  });

  afterAll(async () => {
    await tp?.platform.stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${freshSchema} CASCADE`).catch(() => undefined);
    await tp?.cleanup();
    fixture?.cleanup();
  });

  it('repo list migrates a schema that does not exist yet', async () => {
    const run = await pkMcp({ ...env, DATABASE_SCHEMA: freshSchema }, 'repo', 'list');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^no repositories yet/);
  });

  it('repo add, index --wait, search and repo list work end to end', async () => {
    const added = await pkMcp(env, 'repo', 'add', fixture.dir, '--name', name);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`added ${name} (${fixture.dir}, branch main)`);

    const indexed = await pkMcp(env, 'index', name, '--wait');
    expect(indexed.code, indexed.stderr).toBe(0);
    // The index enqueued by `repo add` may finish first: then this run finds it up to date.
    expect(indexed.stdout).toMatch(new RegExp(`^indexing ${name}@main: job .+\\n(indexed|up to date at) ${head.slice(0, 12)}`));

    const searched = await pkMcp(env, 'search', 'computeBackoffDelay', '--repo', name, '--json');
    expect(searched.code, searched.stderr).toBe(0);
    const { hits } = JSON.parse(searched.stdout) as { hits: Array<{ repository: string; path: string; commit: string }> };
    expect(hits[0]).toMatchObject({ repository: name, path: 'src/retry.ts', commit: head });

    const listed = await pkMcp(env, 'repo', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const repos = JSON.parse(listed.stdout) as Array<{ name: string; branches: Array<{ branch: string; status: string; indexedCommit: string | null }> }>;
    expect(repos.map((r) => r.name)).toEqual([name]);
    expect(repos[0]!.branches).toContainEqual(expect.objectContaining({ branch: 'main', indexedCommit: head }));
  });

  it('a failing index exits non-zero with the reason, and jobs --failed lists it', async () => {
    const failed = await pkMcp(env, 'index', name, '--branch', 'nope', '--wait');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`error: indexing failed: branch "nope" does not exist in ${fixture.dir}`);

    const jobs = await pkMcp(env, 'jobs', '--failed', '--json');
    expect(jobs.code, jobs.stderr).toBe(0);
    const rows = JSON.parse(jobs.stdout) as Array<{ queue: string; name: string; state: string; failedReason?: string }>;
    expect(rows).toEqual([
      expect.objectContaining({ queue: 'index', name: 'index-repository', state: 'failed', failedReason: expect.stringContaining('branch "nope" does not exist') }),
    ]);
  });

  it('jobs --limit must be a whole number from 1 to 1000', async () => {
    for (const bad of ['abc', '0', '2.5', '1001']) {
      const run = await pkMcp(env, 'jobs', '--limit', bad);
      expectOneLineError(run, `--limit must be a whole number from 1 to 1000, not "${bad}"`);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
    }
    const one = await pkMcp(env, 'jobs', '--limit', '1', '--json');
    expect(one.code, one.stderr).toBe(0);
    // One per queue at most: the index queue holds a completed and a failed job by now.
    expect((JSON.parse(one.stdout) as Array<{ queue: string }>).filter((r) => r.queue === 'index')).toHaveLength(1);
  });

  it('errors are one line on stderr with a non-zero exit', async () => {
    expectOneLineError(await pkMcp(env, 'index', 'no-such-repo'), /no-such-repo/);
    expectOneLineError(await pkMcp(env, 'repo', 'remove', 'no-such-repo'), /no-such-repo/);
    const missing = path.join(fixture.dir, 'does-not-exist');
    expectOneLineError(await pkMcp(env, 'repo', 'add', missing, '--name', 'bad-path'), /does-not-exist/);
  });

  it('repo remove takes it out of repo list', async () => {
    const removed = await pkMcp(env, 'repo', 'remove', name);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe(`removed ${name}\n`);

    const listed = await pkMcp(env, 'repo', 'list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain(name);
    expect(listed.stdout).toMatch(/^no repositories yet/);
  });
});
