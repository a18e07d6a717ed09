import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { runTool } from '../helpers/deploy-tools.ts';
import { inlineCommands, readmeSection, shellBlocks, shellWords } from '../helpers/readme.ts';

/**
 * The README's "Production with Docker" steps, run as written in a copy of the
 * checkout: shell lines (cp, mkdir, openssl, echo, chmod) by sh, and each
 * `docker compose …` line loaded by compose-go, the loader Docker Compose
 * itself uses (its flags: --env-file, -f, --profile; `run` enables the
 * service it names), with interpolation from the env file exactly as Compose
 * does. Then the loaded models are checked against what production needs.
 */

interface ComposeService {
  image?: string;
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  ports?: Array<{ host_ip?: string; target: number; published?: string }>;
  healthcheck?: { disable?: boolean; test?: string[]; start_period?: string; interval?: string };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number; resources?: { limits?: { cpus?: number; memory?: string }; reservations?: { cpus?: number; memory?: string } } };
  volumes?: Array<{ type: string; source: string; target: string }>;
  networks?: Record<string, unknown>;
  logging?: { driver?: string; options?: Record<string, string> };
  security_opt?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  secrets?: Array<{ source: string; target: string }>;
  restart?: string;
  container_name?: string;
  profiles?: string[];
  cap_drop?: string[];
  build?: { context: string; dockerfile: string };
}
interface ComposeModel {
  services: Record<string, ComposeService>;
  networks: Record<string, { internal?: boolean }>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file?: string; environment?: string }>;
}

const APP = ['api', 'worker', 'migrate'];
const STORES = ['redis', 'postgres', 'chroma', 'neo4j'];
/** Passwords with every character a URL would break on. */
const PASSWORDS = { POSTGRES_PASSWORD: 'pg@pass/word:1#x', NEO4J_PASSWORD: 'neo:4j/p@ss', REDIS_PASSWORD: 'r"ed\\is@p/w:' };

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh clone's compose files: what git tracks of them (no compose/.env, no compose/secrets). */
function freshCheckout(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pk-compose-'));
  dirs.push(dir);
  const files = execFileSync('git', ['ls-files', '-z', '--', 'docker-compose*.yml', 'compose', '.dockerignore'], { cwd: PROJECT_ROOT, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    copyFileSync(path.join(PROJECT_ROOT, f), path.join(dir, f));
  }
  expect(existsSync(path.join(dir, 'docker-compose.yml'))).toBe(true);
  expect(existsSync(path.join(dir, 'compose', '.env'))).toBe(false);
  return dir;
}

/** Loads a `docker compose …` line's project as Compose would; the loader's error when it refuses. */
function loadCompose(dir: string, line: string): { model?: ComposeModel; error?: string; subcommand: string; args: string[] } {
  const words = shellWords(line);
  expect(words.slice(0, 2)).toEqual(['docker', 'compose']);
  const toolArgs = ['-C', dir];
  let i = 2;
  for (; i < words.length && words[i]!.startsWith('-'); i++) {
    const flag = words[i]!;
    if (flag === '--env-file' || flag === '-f' || flag === '--profile') toolArgs.push(flag, words[++i]!);
    else throw new Error(`the README's compose line uses a global flag this test does not model: ${flag}`);
  }
  const subcommand = words[i]!;
  const args = words.slice(i + 1);
  if (subcommand === 'run') {
    const service = args.find((a) => !a.startsWith('-'))!;
    toolArgs.push('--profile', service);
  }
  const r = runTool('compose-model', toolArgs);
  if (r.status !== 0) return { error: r.stderr.trim(), subcommand, args };
  return { model: JSON.parse(r.stdout) as ComposeModel, subcommand, args };
}

/** Runs a README shell line (not a docker line) in the checkout copy. */
function sh(dir: string, line: string): void {
  execFileSync('sh', ['-c', line], { cwd: dir, stdio: 'pipe', env: { PATH: process.env.PATH } });
}

function setPasswords(dir: string): void {
  const file = path.join(dir, 'compose', '.env');
  let text = readFileSync(file, 'utf8');
  for (const [k, v] of Object.entries(PASSWORDS)) {
    expect(text).toMatch(new RegExp(`^${k}=$`, 'm'));
    // Single quotes: the dotenv format Compose reads takes the value literally.
    text = text.replace(new RegExp(`^${k}=$`, 'm'), `${k}='${v}'`);
  }
  writeFileSync(file, text);
}

const section = readmeSection('Production with Docker');
const [mainSteps, prodSteps] = shellBlocks(section);

function checkCommon(model: ComposeModel): void {
  const s = model.services;
  for (const name of [...APP, ...STORES]) expect(s[name], `service ${name}`).toBeDefined();

  for (const [name, svc] of Object.entries(s)) {
    // Exact image tags: major.minor.patch (Postgres releases are major.minor; the app image's tag is the product's version).
    expect(svc.image, `${name} image`).toMatch(name === 'postgres' ? /^postgres:\d+\.\d+-[a-z]+$/ : /^[a-z0-9./_-]+:v?\d+\.\d+\.\d+(-[a-z0-9.]+)?$/);
    expect(svc.image, `${name} image`).not.toMatch(/:latest$/);
    expect(svc.logging?.driver, `${name} logging`).toBe('json-file');
    expect(svc.logging?.options?.['max-size'], `${name} log rotation`).toBeTruthy();
    expect(svc.logging?.options?.['max-file'], `${name} log rotation`).toBeTruthy();
    expect(svc.security_opt, `${name} security_opt`).toContain('no-new-privileges:true');
    expect(svc.deploy?.resources?.limits?.memory, `${name} memory limit`).toBeTruthy();
    expect(svc.deploy?.resources?.limits?.cpus, `${name} cpu limit`).toBeGreaterThan(0);
  }

  // Long-running services: health checks with a start period; reservations.
  for (const name of ['api', ...STORES]) {
    const hc = s[name]!.healthcheck!;
    expect(hc.disable ?? false, `${name} healthcheck`).toBe(false);
    expect(hc.test?.length, `${name} healthcheck test`).toBeGreaterThan(0);
    expect(hc.start_period, `${name} start_period`).toBeTruthy();
    expect(s[name]!.deploy?.resources?.reservations?.memory, `${name} memory reservation`).toBeTruthy();
  }
  expect(s.api!.healthcheck!.test!.join(' ')).toContain('/health');
  // Workers and the migration serve no HTTP: the image's /health check is turned off for them.
  expect(s.worker!.healthcheck?.disable).toBe(true);
  expect(s.migrate!.healthcheck?.disable).toBe(true);

  // Start order: the stores healthy, the migration done.
  for (const name of ['api', 'worker']) {
    const deps = s[name]!.depends_on!;
    expect(deps.migrate?.condition, `${name} waits for migrate`).toBe('service_completed_successfully');
    for (const store of STORES) expect(deps[store]?.condition, `${name} waits for ${store}`).toBe('service_healthy');
  }
  expect(s.migrate!.depends_on!.postgres!.condition).toBe('service_healthy');
  expect(s.migrate!.command).toEqual(['migrate']);
  expect(s.migrate!.restart).toBe('no');
  expect(s.api!.command).toEqual(['api']);
  expect(s.worker!.command).toEqual(['worker']);

  // Only the API is published, and only on the host's loopback.
  for (const [name, svc] of Object.entries(s)) {
    for (const p of svc.ports ?? []) expect(p.host_ip, `${name} publishes ${p.target} beyond loopback`).toBe('127.0.0.1');
    if (!['api', 'prometheus'].includes(name)) expect(svc.ports ?? [], `${name} is published`).toEqual([]);
  }
  expect(s.api!.ports!.map((p) => p.target)).toEqual([3737]);

  // Workers scale with --scale: no fixed name, no host port.
  expect(s.worker!.container_name).toBeUndefined();
  expect(s.worker!.ports ?? []).toEqual([]);

  // The stores' network has no route out; stores are on it alone; the app joins it and an egress network.
  expect(model.networks.stores!.internal).toBe(true);
  for (const store of STORES) expect(Object.keys(s[store]!.networks!)).toEqual(['stores']);
  for (const name of ['api', 'worker']) expect(Object.keys(s[name]!.networks!).sort()).toEqual(['egress', 'stores']);

  // Named volumes for every store's data.
  const dataPath: Record<string, string> = { redis: '/data', postgres: '/var/lib/postgresql/data', chroma: '/data', neo4j: '/data' };
  for (const store of STORES) {
    const v = s[store]!.volumes!.find((x) => x.target === dataPath[store]);
    expect(v?.type, `${store} data volume`).toBe('volume');
    expect(model.volumes[v!.source]).toBeDefined();
  }

  // The app: read-only root, /tmp on tmpfs, no capabilities, passwords only as secret files.
  for (const name of APP) {
    const svc = s[name]!;
    expect(svc.read_only, `${name} read_only`).toBe(true);
    expect(svc.tmpfs?.some((t) => t.startsWith('/tmp')), `${name} tmpfs /tmp`).toBe(true);
    expect(svc.cap_drop).toEqual(['ALL']);
    const env = svc.environment!;
    const mounted = new Set((svc.secrets ?? []).map((x) => x.target));
    for (const [k, file] of [['DATABASE_PASSWORD_FILE', 'postgres_password'], ['NEO4J_PASSWORD_FILE', 'neo4j_password'], ['REDIS_PASSWORD_FILE', 'redis_password']] as const) {
      expect(env[k], `${name} ${k}`).toBe(`/run/secrets/${file}`);
      expect(mounted.has(`/run/secrets/${file}`), `${name} mounts ${file}`).toBe(true);
    }
    expect(new URL(env.DATABASE_URL!).password).toBe('');
    expect(new URL(env.REDIS_URL!).password).toBe('');
    expect(env.NEO4J_PASSWORD).toBeUndefined();
    for (const value of Object.values(env)) {
      for (const pw of Object.values(PASSWORDS)) expect(value ?? '').not.toContain(pw);
    }
  }
  // The stores take their passwords from the same secret files.
  expect(s.postgres!.environment!.POSTGRES_PASSWORD_FILE).toBe('/run/secrets/postgres_password');
  expect(JSON.stringify(s.neo4j!.entrypoint)).toContain('/run/secrets/neo4j_password');
  const redisCommand = (s.redis!.command ?? []).join(' ');
  expect(redisCommand).toContain('/run/secrets/redis_password');
  expect(redisCommand).toContain('--appendonly yes');
  expect(redisCommand).toContain('--maxmemory-policy noeviction');
  expect(s.redis!.healthcheck!.test!.join(' ')).toContain('REDISCLI_AUTH');
  expect(s.chroma!.environment!.ANONYMIZED_TELEMETRY).toBe('FALSE');
  expect(s.neo4j!.image).toMatch(/^neo4j:5\.26\.\d+-community$/);
  for (const store of STORES) {
    for (const value of Object.values(s[store]!.environment ?? {})) {
      for (const pw of Object.values(PASSWORDS)) expect(value ?? '').not.toContain(pw);
    }
  }

  // The image is built from this checkout's Dockerfile.
  expect(s.api!.build!.dockerfile).toBe('compose/Dockerfile');
}

describe("README's Production with Docker, loaded by the real Compose loader", () => {
  it('finds the steps in the README', () => {
    expect(mainSteps?.[0]).toBe('cp compose/env.example compose/.env');
    expect(mainSteps!.some((l) => l.startsWith('docker compose --env-file compose/.env up -d'))).toBe(true);
    expect(prodSteps!.some((l) => l.includes('-f docker-compose.prod.yml'))).toBe(true);
  });

  it('with the passwords not yet set, stops naming the variable to set', () => {
    const dir = freshCheckout();
    sh(dir, mainSteps![0]!);
    const firstCompose = mainSteps!.find((l) => l.startsWith('docker compose'))!;
    const r = loadCompose(dir, firstCompose);
    expect(r.model).toBeUndefined();
    expect(r.error).toContain('POSTGRES_PASSWORD');
    expect(r.error).toContain('compose/.env');
  });

  it('every step of the README loads, and the project is what production needs', () => {
    const dir = freshCheckout();
    const [cp, ...rest] = mainSteps!;
    sh(dir, cp!);
    setPasswords(dir); // "then set POSTGRES_PASSWORD, NEO4J_PASSWORD and REDIS_PASSWORD in it"
    const composeLines = [...rest, ...inlineCommands(section, 'docker compose')].filter((l) => !l.includes('docker-compose.prod.yml'));
    expect(composeLines.length).toBeGreaterThanOrEqual(4);
    for (const line of composeLines) {
      if (!line.startsWith('docker compose')) {
        sh(dir, line);
        continue;
      }
      const r = loadCompose(dir, line);
      expect(r.error, line).toBeUndefined();
      checkCommon(r.model!);
      // The passwords are secrets taken from compose/.env's variables.
      for (const [secret, variable] of [['postgres_password', 'POSTGRES_PASSWORD'], ['neo4j_password', 'NEO4J_PASSWORD'], ['redis_password', 'REDIS_PASSWORD']]) {
        expect(r.model!.secrets[secret!]!.environment).toBe(variable);
      }
      if (r.subcommand === 'run') {
        const service = r.args.find((a) => !a.startsWith('-'))!;
        expect(r.model!.services[service], `run ${service}`).toBeDefined();
        expect(r.model!.services[service]!.entrypoint?.join(' ')).toContain('pk-mcp cli');
      }
      if (r.args.includes('--scale')) {
        const [service] = r.args[r.args.indexOf('--scale') + 1]!.split('=');
        expect(r.model!.services[service!], `--scale ${service}`).toBeDefined();
      }
    }
  });

  it("the metrics profile adds Prometheus on loopback, scraping the API with a token file", () => {
    const dir = freshCheckout();
    sh(dir, mainSteps![0]!);
    setPasswords(dir);
    const r = loadCompose(dir, 'docker compose --env-file compose/.env --profile metrics config');
    expect(r.error).toBeUndefined();
    const p = r.model!.services.prometheus!;
    expect(p.ports!.map((x) => x.host_ip)).toEqual(['127.0.0.1']);
    expect(p.secrets!.map((x) => x.source)).toEqual(['metrics_token']);
    expect(readFileSync(path.join(dir, 'compose', 'prometheus.yml'), 'utf8')).toContain('credentials_file: /run/secrets/metrics_token');
    // Without the profile there is no Prometheus.
    const plain = loadCompose(dir, 'docker compose --env-file compose/.env config');
    expect(plain.model!.services.prometheus).toBeUndefined();
  });

  it("the production overlay, set up as the README says, takes every password from a file and needs none in compose/.env", () => {
    const dir = freshCheckout();
    sh(dir, mainSteps![0]!); // cp compose/env.example compose/.env: passwords left empty
    for (const line of prodSteps!) {
      if (!line.startsWith('docker compose')) {
        sh(dir, line);
        continue;
      }
      const r = loadCompose(dir, line);
      expect(r.error, line).toBeUndefined();
      const model = r.model!;
      for (const secret of ['postgres_password', 'neo4j_password', 'redis_password', 'admin_token']) {
        const file = model.secrets[secret]!.file!;
        expect(file, secret).toBe(path.join(dir, 'compose', 'secrets', secret));
        expect(readFileSync(file, 'utf8').trim().length, `${secret} has a value`).toBeGreaterThan(10);
        // Readable by the app's user only (bind mounts keep the host's owner and mode).
        const st = statSync(file);
        expect([st.uid, st.mode & 0o777], `${secret} owner and mode`).toEqual([10001, 0o400]);
      }
      expect(readFileSync(model.secrets.admin_token!.file!, 'utf8').trim()).toMatch(/^pk_mcp_[0-9a-f]{32}$/);
      expect(model.services.api!.environment!.ADMIN_TOKEN_FILE).toBe('/run/secrets/admin_token');
      expect(model.services.api!.secrets!.map((x) => x.source)).toContain('admin_token');
      for (const name of ['api', 'worker', ...STORES]) expect(model.services[name]!.restart, name).toBe('always');
      // Same invariants, with the file-based passwords.
      checkCommon(model);
    }
    // The secrets never enter the image's build context, and git ignores them.
    const ignored = execFileSync('git', ['check-ignore', '--no-index', 'compose/.env', 'compose/secrets/postgres_password'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(ignored.trim().split('\n')).toEqual(['compose/.env', 'compose/secrets/postgres_password']);
  });

  it('the development overlay publishes the stores on loopback only', () => {
    const dir = freshCheckout();
    sh(dir, mainSteps![0]!);
    setPasswords(dir);
    const r = loadCompose(dir, 'docker compose --env-file compose/.env -f docker-compose.yml -f docker-compose.dev.yml config');
    expect(r.error).toBeUndefined();
    for (const store of STORES) {
      const ports = r.model!.services[store]!.ports!;
      expect(ports.length, store).toBe(1);
      expect(ports[0]!.host_ip).toBe('127.0.0.1');
    }
  });
});
