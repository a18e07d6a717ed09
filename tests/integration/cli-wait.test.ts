import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { cliEnv, runCli } from '../helpers/cli.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { startThrowawayRedis } from '../helpers/processes.ts';

/**
 * The CLI fails clearly: a command that waits gives up, in one line and with exit code 3, when the
 * platform (no worker) or a store (Redis) stays away for --give-up-after; every command has --help;
 * `repo add` registers into the first configured instance.
 */
describe('pk-mcp waits boundedly and explains itself', () => {
  let t: TestPlatform;
  let fixture: GitFixture;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // No worker runs in this file: nothing takes the jobs the commands enqueue.
    t = await openTestPlatform({ instances: ['work', 'public'] });
    env = { ...cliEnv(t.config), INSTANCES: 'work,public' };
    fixture = createGitFixture();
    fixture.write({ 'src/a.ts': 'export const a = 1;\n' });
    fixture.commit('one file');
    const added = await runCli(env, 'repo', 'add', fixture.dir, '--name', 'waiting', '--no-index');
    expect(added.code, added.stderr).toBe(0);
  });
  afterAll(async () => {
    await t?.cleanup();
    fixture?.cleanup();
  });

  it('repo add registers into the first configured instance when none is given', async () => {
    const listed = await runCli(env, 'repo', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: 'waiting', instance: 'work' })]);
  });

  it('index --wait gives up when no worker comes, in one line, exit 3', async () => {
    const started = Date.now();
    const run = await runCli(env, 'index', 'waiting', '--wait', '--give-up-after', '2');
    expect(run.code, run.stderr).toBe(3);
    expect(Date.now() - started).toBeLessThan(20_000);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(
      /^error: gave up waiting after 2 s: no worker is running on the index queue \(start the platform with `npm start`\); job \S+ is left as it is \(follow it with `pk-mcp jobs`\)$/,
    );
    expect(lines.filter((l) => l.startsWith('error:'))).toHaveLength(1);
  });

  it('index --wait gives up when Redis goes away, naming it and why, without printing reconnect errors', async () => {
    const redis = await startThrowawayRedis();
    let killed = false;
    try {
      const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'scripts/pk-mcp.js'), 'index', 'waiting', '--wait'], {
        cwd: PROJECT_ROOT,
        // The bound from the environment this time.
        env: { ...env, REDIS_URL: redis.url, PK_MCP_GIVE_UP_AFTER: '3' },
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      // Redis dies once the job is enqueued, while the command waits on it.
      const enqueued = await Promise.race([
        new Promise<boolean>((resolve) =>
          child.stdout.on('data', (d) => {
            stdout += d;
            if (stdout.includes('indexing waiting@main: job')) resolve(true);
          }),
        ),
        exited.then(() => false),
      ]);
      expect(enqueued, stdout + stderr).toBe(true);
      await redis.kill();
      killed = true;
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      expect(code, stderr).toBe(3);
      const errors = stderr.trimEnd().split('\n').filter((l) => !l.startsWith('note:'));
      expect(errors, stderr).toHaveLength(1);
      expect(errors[0]).toMatch(new RegExp(`^error: gave up waiting after 3 s: Redis at ${redis.url.replace(/[.]/g, '\\.')} is unreachable \\(.+\\); job \\S+ is left as it is`));
    } finally {
      // Once only: the helper's kill waits for an exit that a second call would never see.
      if (!killed) await redis.kill();
    }
  });

  it('every command and subcommand has --help', async () => {
    const commandsOf = (help: string) =>
      help
        .slice(help.indexOf('Commands:'))
        .split('\n')
        .slice(1)
        .map((l) => /^ {2}(\S+)/.exec(l)?.[1])
        .filter((c): c is string => c !== undefined && c !== 'help');
    const root = await runCli(env, '--help');
    expect(root.code).toBe(0);
    const top = commandsOf(root.stdout);
    expect(top).toEqual(expect.arrayContaining(['start', 'stack', 'test', 'repo', 'index', 'search', 'jobs', 'graph', 'token', 'secrets', 'backup', 'audit', 'tools', 'mcp']));
    const checked: string[] = [];
    for (const name of top) {
      const help = await runCli(env, name, '--help');
      expect(help.code, `${name}: ${help.stderr}`).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: pk-mcp ${name}`));
      checked.push(name);
      for (const sub of help.stdout.includes('Commands:') ? commandsOf(help.stdout) : []) {
        const subHelp = await runCli(env, name, sub, '--help');
        expect(subHelp.code, `${name} ${sub}: ${subHelp.stderr}`).toBe(0);
        expect(subHelp.stdout).toMatch(new RegExp(`^Usage: pk-mcp ${name} ${sub}`));
        checked.push(`${name} ${sub}`);
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['repo add', 'graph architecture', 'token rotate', 'backup create', 'stack up']));
  });
});
