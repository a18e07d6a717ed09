import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { waitUntil } from '../../scripts/stack/process.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';
import { makeKey, startLocalIssuer, type LocalIssuer } from '../helpers/local-oidc-issuer.ts';
import { spawnEntry, type Spawned } from '../helpers/processes.ts';

/**
 * The README's OIDC set-up as written: its settings (with the local issuer's URL for OIDC_ISSUER) given
 * to the real API process, then its curl commands run by a shell with a JWT from that issuer (only the
 * port is the test's own).
 */

const README = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
const section = README.slice(README.indexOf('### Signing in with an identity provider (OIDC)'));

/** The n-th ```sh block of the section. */
function shBlock(n: number): string {
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks[n]!;
}

let issuer: LocalIssuer;
let t: TestStores;
let api: Spawned;
let port = 0;
let work = '';

beforeAll(async () => {
  issuer = await startLocalIssuer([await makeKey('k1', 'RS256')]);
  t = await openTestStores();
  port = await getPort({ host: '127.0.0.1' });
  const settings: Record<string, string> = {};
  for (const line of shBlock(0).split('\n')) {
    const match = /^([A-Z_]+)=(\S*)/.exec(line);
    if (match) settings[match[1]!] = match[2]!;
  }
  expect(Object.keys(settings)).toEqual(['OIDC_ISSUER', 'OIDC_AUDIENCE', 'OIDC_SCOPES_CLAIM', 'OIDC_SCOPE_MAP', 'OIDC_INSTANCES_CLAIM', 'OIDC_INSTANCE_MAP']);
  api = spawnEntry('api/server.ts', {
    ...settings,
    OIDC_ISSUER: issuer.url,
    QUEUE_PREFIX: t.config.queuePrefix,
    DATABASE_SCHEMA: t.config.databaseSchema,
    API_PORT: String(port),
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
  });
  try {
    await waitUntil('api', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.status !== 200) throw new Error(`status ${res.status}`);
    }, 60_000, () => api.child.exitCode === null);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${api.output()}`);
  }
  work = mkdtempSync(path.join(tmpdir(), 'pk-oidc-readme-'));
}, 90_000);

afterAll(async () => {
  await api?.stop('SIGTERM');
  await t?.cleanup();
  await issuer?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('README: signing in with an identity provider', () => {
  it('its curl commands work as written against the real API', async () => {
    // Members of pk-admins are admins of every instance under the README's maps.
    const jwt = await issuer.sign({ sub: 'alice@example.com', groups: ['pk-admins', 'eng'] });
    const commands = shBlock(1).split('\n').filter((l) => l.startsWith('curl '));
    expect(commands).toHaveLength(4);
    // Asynchronously, one after the other: the issuer answers the API from this process.
    const outputs: string[] = [];
    for (const command of commands) {
      const run = await promisify(execFile)('bash', ['-c', command.replaceAll('127.0.0.1:3737', `127.0.0.1:${port}`)], { cwd: work, env: { ...process.env, JWT: jwt } });
      outputs.push(run.stdout);
    }
    expect(JSON.parse(outputs[0]!)).toMatchObject({ authorization_servers: [issuer.url], resource: `http://127.0.0.1:${port}/mcp` });
    expect(JSON.parse(outputs[1]!).instances.map((i: { name: string }) => i.name)).toEqual(['private', 'work', 'public']);
    expect(JSON.parse(outputs[2]!)).toMatchObject({ name: 'oidc:alice@example.com', scopes: ['write', 'admin'] });
    expect(JSON.parse(outputs[3]!)).toHaveProperty('queues');

    // A member of eng only: write on work, per the same maps; not an admin.
    const eng = await issuer.sign({ sub: 'bob', groups: ['eng'] });
    const instances = await fetch(`http://127.0.0.1:${port}/api/v1/instances`, { headers: { authorization: `Bearer ${eng}` } });
    expect(((await instances.json()) as { instances: Array<{ name: string }> }).instances.map((i: { name: string }) => i.name)).toEqual(['work']);
    const tokens = await fetch(`http://127.0.0.1:${port}/api/v1/tokens`, { headers: { authorization: `Bearer ${eng}` } });
    expect(tokens.status).toBe(403);
    expect(((await tokens.json()) as { message: string }).message).toBe("OIDC subject 'bob' lacks the 'admin' scope");
  });
});
