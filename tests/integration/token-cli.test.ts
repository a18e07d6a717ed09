import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { cliEnv, runCli, type CliRun } from '../helpers/cli.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';

/** The README's token commands through the real `pk-mcp` process, checked against the token service that the API verifies with. */
describe('pk-mcp token commands', () => {
  let t: TestStores;
  let env: NodeJS.ProcessEnv;
  const tokenLine = /^pk_mcp_[0-9a-f]{32}\n$/;
  // A fresh service per check: verified tokens are cached per process until Postgres says they changed.
  const verify = (token: string) => createTokenService(t.stores.postgres, { instances: t.config.instances }).verify(token);
  const cli = (...args: string[]) => runCli(env, 'token', ...args);

  beforeAll(async () => {
    t = await openTestStores();
    env = cliEnv(t.config);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  function oneLineError(run: CliRun, message: RegExp): void {
    expect(run.code, run.stdout + run.stderr).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
  }

  let admin = '';
  let laptop = '';

  it('create prints the value alone on stdout, once, and it verifies with the scopes and instances asked for', async () => {
    const created = await cli('create', '--name', 'admin', '--scopes', 'admin', '--instances', '*');
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(tokenLine);
    expect(created.stderr).toContain("created token 'admin' (scopes admin; instances *; no expiry)");
    expect(created.stderr).toContain('shown only once');
    admin = created.stdout.trim();
    expect(await verify(admin)).toMatchObject({ name: 'admin', scopes: ['admin'] });

    const second = await cli('create', '--name', 'laptop', '--scopes', 'read,write', '--instances', 'work,public', '--expires', '30d');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(tokenLine);
    expect(second.stderr).toMatch(/created token 'laptop' \(scopes read,write; instances work,public; expires \d{4}-\d\d-\d\dT/);
    laptop = second.stdout.trim();
    expect(await verify(laptop)).toMatchObject({ name: 'laptop', instances: ['work', 'public'] });
  });

  it('list shows names, scopes and instances, never a value', async () => {
    const listed = await cli('list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+STATUS\s+SCOPES\s+INSTANCES\s+CREATED\s+EXPIRES\s+LAST USED\n/);
    expect(listed.stdout).toMatch(/\nadmin\s+active\s+admin\s+\*/);
    expect(listed.stdout).toMatch(/\nlaptop\s+active\s+read,write\s+work,public/);
    const json = await cli('list', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as Array<{ name: string }>).map((r) => r.name).sort()).toEqual(['admin', 'laptop']);
    for (const run of [listed, json]) {
      expect(run.stdout).not.toContain(admin.slice(7));
      expect(run.stdout).not.toContain(laptop.slice(7));
    }
  });

  it('rotate issues a new value and keeps the old one for the grace period; revoke ends both', async () => {
    const rotated = await cli('rotate', '--name', 'laptop', '--grace', '24h');
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(tokenLine);
    const fresh = rotated.stdout.trim();
    expect(fresh).not.toBe(laptop);
    expect(rotated.stderr).toMatch(/the old value works until \d{4}-/);
    expect(await verify(fresh)).toMatchObject({ name: 'laptop' });
    expect(await verify(laptop)).toMatchObject({ name: 'laptop' });
    expect((await cli('list')).stdout).toMatch(/previous value still accepted until/);

    const revoked = await cli('revoke', '--name', 'laptop');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toBe("revoked token 'laptop'\n");
    expect(await verify(fresh)).toBeNull();
    expect(await verify(laptop)).toBeNull();
    expect(await verify(admin)).toMatchObject({ name: 'admin' });
  });

  it('bad input is one line on stderr and a non-zero exit, and creates nothing', async () => {
    oneLineError(await cli('create', '--name', 'admin', '--scopes', 'read', '--instances', '*'), /admin/);
    oneLineError(await cli('create', '--name', 'x', '--scopes', 'root', '--instances', '*'), /scope/i);
    oneLineError(await cli('create', '--name', 'y', '--scopes', 'read', '--instances', 'nowhere'), /nowhere/);
    oneLineError(await cli('create', '--name', 'z', '--scopes', 'read', '--instances', '*', '--expires', 'soon'), /soon/);
    oneLineError(await cli('revoke', '--name', 'nobody'), /nobody/);
    const names = (JSON.parse((await cli('list', '--json')).stdout) as Array<{ name: string }>).map((r) => r.name).sort();
    expect(names).toEqual(['admin', 'laptop']);
  });

  it('every token command has --help', async () => {
    for (const sub of ['create', 'list', 'revoke', 'rotate']) {
      const help = await cli(sub, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: pk-mcp token ${sub}`));
    }
  });
});
