import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import getPort from 'get-port';
import { parseEnv, readStackState, stackStatePath, type Env, type StackState } from '../../shared/config/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { checkReadiness } from '../../shared/health/readiness.ts';
import { createChromaConnection } from '../../shared/stores/chroma.connection.ts';
import { createNeo4jConnection } from '../../shared/stores/neo4j.connection.ts';
import { createPostgresConnection } from '../../shared/stores/postgres.connection.ts';
import { createRedisConnection } from '../../shared/stores/redis.connection.ts';
import type { StoreConnection, StoreName } from '../../shared/stores/store.ts';
import { isAlive, stopProcess, waitUntil } from './process.ts';
import { PrerequisiteError, type LocalService, type StackContext } from './service.ts';
import { chromaService } from './services/chroma.service.ts';
import { neo4jService } from './services/neo4j.service.ts';
import { postgresService } from './services/postgres.service.ts';
import { redisService } from './services/redis.service.ts';

export const SERVICES: readonly LocalService[] = [redisService, postgresService, chromaService, neo4jService];

const PORT_VARS: Record<StoreName, keyof Env> = {
  redis: 'STACK_REDIS_PORT',
  postgres: 'STACK_POSTGRES_PORT',
  chroma: 'STACK_CHROMA_PORT',
  neo4j: 'STACK_NEO4J_BOLT_PORT',
};

type ServiceRecord = NonNullable<StackState['services'][StoreName]>;

export interface ServiceReport {
  name: StoreName;
  url: string;
  state: 'started' | 'running' | 'external' | 'stopped';
  pid?: number;
}

const quiet = createLogger({ logLevel: 'silent', logPretty: false });

/** A throwaway connection used only to ask a server whether it answers. */
function probe(name: StoreName, record: Pick<ServiceRecord, 'url' | 'user' | 'password'>): StoreConnection {
  switch (name) {
    case 'redis':
      return createRedisConnection(record.url, quiet);
    case 'postgres':
      return createPostgresConnection({ url: record.url, schema: 'public', max: 1 }, quiet);
    case 'chroma':
      return createChromaConnection({ url: record.url, collectionPrefix: 'probe' });
    case 'neo4j':
      return createNeo4jConnection({ uri: record.url, user: record.user ?? 'neo4j', password: record.password ?? '', database: 'neo4j' });
  }
}

async function answers(name: StoreName, record: ServiceRecord, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const conn = probe(name, record);
  try {
    await waitUntil(name, () => conn.ping(), timeoutMs, alive);
  } finally {
    await conn.close();
  }
}

function writeState(dataDir: string, state: StackState): void {
  const file = stackStatePath(dataDir);
  // Write-then-rename: a reader never sees half a file. 0600: it holds local passwords.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export interface StackOptions {
  env?: NodeJS.ProcessEnv;
  projectRoot: string;
  log?: (message: string) => void;
  /** Limit `down` to these stores (what one `start` or `test` run started). */
  only?: StoreName[];
}

function context(options: StackOptions): { env: Env; ctx: StackContext } {
  const env = parseEnv(options.env ?? process.env);
  const dataDir = path.resolve(options.projectRoot, env.PK_DATA_DIR);
  mkdirSync(path.join(dataDir, 'logs'), { recursive: true });
  return {
    env,
    ctx: {
      projectRoot: options.projectRoot,
      dataDir,
      autoInstall: env.STACK_AUTO_INSTALL ?? true,
      log: options.log ?? ((m) => process.stderr.write(`${m}\n`)),
    },
  };
}

/**
 * Starts every store whose URL is not configured, as local processes on
 * loopback, and records their URLs. Idempotent: a recorded server that still
 * answers is kept; one that died is started again on the same data.
 */
export async function stackUp(options: StackOptions): Promise<ServiceReport[]> {
  const { env, ctx } = context(options);
  const state: StackState = readStackState(ctx.dataDir) ?? { services: {} };
  const reports: ServiceReport[] = [];
  let writing = Promise.resolve();
  const record = (name: StoreName, value: ServiceRecord | undefined) =>
    (writing = writing.then(() => {
      if (value) state.services[name] = value;
      else delete state.services[name];
      writeState(ctx.dataDir, state);
    }));

  const wanted = SERVICES.filter((s) => {
    const external = env[s.envVar];
    if (external) reports.push({ name: s.name, url: external, state: 'external' });
    return !external;
  });

  // Prerequisites first, all of them, so one run reports every missing piece.
  const problems: string[] = [];
  for (const service of wanted) {
    try {
      await service.prepare(ctx);
    } catch (err) {
      if (err instanceof PrerequisiteError) problems.push(`${service.name}: ${err.message}`);
      else throw err;
    }
  }
  if (problems.length > 0) throw new PrerequisiteError(problems.join('\n'));

  const results = await Promise.allSettled(
    wanted.map(async (service) => {
      const existing = state.services[service.name];
      if (existing?.managed && isAlive(existing.pid)) {
        await answers(service.name, existing, service.startTimeoutMs, () => isAlive(existing.pid));
        reports.push({ name: service.name, url: existing.url, state: 'running', pid: existing.pid });
        return;
      }
      const wantedPort = Number(env[PORT_VARS[service.name]]);
      const port = await getPort({ port: wantedPort, host: '127.0.0.1' });
      if (port !== wantedPort) {
        ctx.log(`${service.name}: port ${wantedPort} is already in use, using free port ${port} instead (set ${PORT_VARS[service.name]} to choose)`);
      }
      const started = await service.start(ctx, port);
      const entry: ServiceRecord = { managed: true, ...started };
      await record(service.name, entry);
      try {
        await answers(service.name, entry, service.startTimeoutMs, () => isAlive(started.pid));
      } catch (err) {
        await stopProcess(started.pid, service.stopSignal, 10_000);
        await record(service.name, undefined);
        const log = path.join(ctx.dataDir, 'logs', `${service.name}.log`);
        throw new Error(`${service.name} failed to start: ${(err as Error).message} (see ${log})`);
      }
      reports.push({ name: service.name, url: started.url, state: 'started', pid: started.pid });
    }),
  );
  await writing;
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failures.length > 0) throw new Error(failures.join('\n'));
  return order(reports);
}

/** Stops only the servers `stackUp` started; data stays in the data directory. */
export async function stackDown(options: StackOptions): Promise<ServiceReport[]> {
  const { ctx } = context(options);
  const state = readStackState(ctx.dataDir) ?? { services: {} };
  const reports: ServiceReport[] = [];
  await Promise.all(
    SERVICES.map(async (service) => {
      const entry = state.services[service.name];
      if (!entry?.managed || (options.only && !options.only.includes(service.name))) return;
      if (entry.pid) await stopProcess(entry.pid, service.stopSignal);
      delete state.services[service.name];
      reports.push({ name: service.name, url: entry.url, state: 'stopped' });
    }),
  );
  writeState(ctx.dataDir, state);
  return order(reports);
}

export interface StatusReport {
  name: StoreName;
  url?: string;
  source: 'local stack' | 'environment' | 'not configured';
  pid?: number;
  status: 'ok' | 'error' | 'not running';
  error?: string;
}

export async function stackStatus(options: StackOptions): Promise<StatusReport[]> {
  const { env, ctx } = context(options);
  const state = readStackState(ctx.dataDir) ?? { services: {} };
  return Promise.all(
    SERVICES.map(async (service): Promise<StatusReport> => {
      const external = env[service.envVar];
      const entry: ServiceRecord | undefined = external
        ? { url: external, managed: false, user: env.NEO4J_USER, password: env.NEO4J_PASSWORD ?? '' }
        : state.services[service.name];
      if (!entry) return { name: service.name, source: 'not configured', status: 'not running' };
      const source = external ? 'environment' : 'local stack';
      if (!external && !isAlive(entry.pid)) return { name: service.name, url: entry.url, source, status: 'not running' };
      const conn = probe(service.name, entry);
      try {
        const report = await checkReadiness({ [service.name]: conn }, 3000);
        const s = report.stores[service.name]!;
        return {
          name: service.name,
          url: entry.url,
          source,
          ...(entry.pid ? { pid: entry.pid } : {}),
          status: s.status,
          ...(s.status === 'error' ? { error: s.error } : {}),
        };
      } finally {
        await conn.close();
      }
    }),
  );
}

function order<T extends { name: StoreName }>(reports: T[]): T[] {
  const rank = (n: StoreName) => SERVICES.findIndex((s) => s.name === n);
  return reports.sort((a, b) => rank(a.name) - rank(b.name));
}

export { displayUrl } from '../display-url.ts';
