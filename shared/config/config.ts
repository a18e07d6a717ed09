import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { LOCAL_MODEL_NAMES, type LocalModelName } from '../embeddings/local-models.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout (or installed package) this code runs from: the nearest folder
 * above this file with our package.json. Relative data paths resolve against
 * it, so an IDE that starts the MCP server from any folder finds the same
 * local stack as `npm start`.
 */
export const PACKAGE_ROOT = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (dir !== path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'personal-knowledge-mcp') return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
})();
import { z } from 'zod';
import { CronExpressionParser } from 'cron-parser';

/**
 * Every environment variable the platform reads, in one schema. Parsed once by
 * each composition root; tests build `Config` objects directly instead of
 * editing `process.env`. Keep `.env.example` in step with this file.
 */

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const optionalUrl = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .pipe(z.url().optional())
  .optional();
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => (v === '' ? undefined : ['true', '1', 'yes'].includes(v)))
  .optional();

/** A cron expression (5 or 6 fields), or empty for "off". */
const cron = z
  .string()
  .trim()
  .refine((v) => {
    if (v === '') return true;
    try {
      CronExpressionParser.parse(v);
      return v.split(/\s+/).length >= 5;
    } catch {
      return false;
    }
  }, 'is not a cron expression (e.g. "0 3 * * *"; empty turns it off)');

const optionalPath = z
  .string()
  .transform((v) => (v === '' ? undefined : v))
  .optional();
const DURATION_UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** `90m`, `24h`, `7d` (also s, w), in milliseconds. */
const duration = z
  .string()
  .trim()
  .regex(/^\d{1,9}[smhdw]$/, 'must be a whole number and a unit s, m, h, d or w (e.g. 24h, 7d)')
  .transform((v) => Number(v.slice(0, -1)) * DURATION_UNIT_MS[v.slice(-1) as keyof typeof DURATION_UNIT_MS]);

/** `host:port,host:port` (Sentinels, cluster nodes); empty: none. */
const hostList = z
  .string()
  .default('')
  .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
  .superRefine((entries, ctx) => {
    for (const entry of entries) {
      if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(entry) || Number(entry.split(':')[1]) > 65535) {
        ctx.addIssue({ code: 'custom', message: `each entry must be host:port (e.g. redis-0.redis:26379), not "${entry}"` });
      }
    }
  })
  .transform((entries) => entries.map((entry) => ({ host: entry.split(':')[0]!, port: Number(entry.split(':')[1]) })));

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: bool,
  PK_DATA_DIR: z.string().min(1).default('.data'),

  API_HOST: z.string().min(1).default('127.0.0.1'),
  API_PORT: port.default(3737),

  INSTANCES: z
    .string()
    .default('private,work,public')
    .transform((v) => [...new Set(v.split(',').map((x) => x.trim()).filter(Boolean))])
    .pipe(z.array(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'instance names are lower-case letters, digits, _ or -')).min(1)),
  MCP_STDIO_INSTANCES: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean)),
  ADMIN_TOKEN_FILE: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean)),
  RATE_LIMIT_PER_MINUTE: positiveInt.default(600),
  RATE_LIMIT_ANONYMOUS_PER_MINUTE: positiveInt.default(60),
  BODY_LIMIT_BYTES: positiveInt.default(1024 * 1024),
  WEBHOOK_SECRET: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  METRICS_PORT: z.preprocess((v) => (v === '' ? undefined : v), port.optional()),

  // Sign-in with an identity provider (OIDC) beside the API tokens: JWTs from OIDC_ISSUER are accepted when set.
  OIDC_ISSUER: optionalUrl,
  OIDC_AUDIENCE: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean)),
  OIDC_ALGORITHMS: z
    .string()
    .default('RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA')
    .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
    // Symmetric algorithms would let anyone holding a public JWK forge tokens; 'none' is no signature at all.
    .pipe(z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'], { error: 'only asymmetric JWS algorithms (RS*, PS*, ES*, EdDSA) are accepted' })).min(1)),
  OIDC_CLOCK_SKEW: duration.refine((ms) => ms <= 300_000, 'at most 5m: a larger skew keeps expired tokens alive').default(30_000),
  OIDC_SUBJECT_CLAIM: z.string().min(1).default('sub'),
  OIDC_SCOPES_CLAIM: z.string().default('scope'),
  OIDC_SCOPE_MAP: z.string().default(''),
  OIDC_INSTANCES_CLAIM: z.string().default('groups'),
  OIDC_INSTANCE_MAP: z.string().default(''),
  OIDC_DEFAULT_SCOPES: z.string().default(''),
  OIDC_DEFAULT_INSTANCES: z.string().default(''),
  OIDC_JWKS_REFRESH: duration.default(600_000),
  OIDC_JWKS_MAX_AGE: duration.default(86_400_000),
  OIDC_HTTP_TIMEOUT_MS: positiveInt.max(60_000).default(5000),
  OIDC_RESOURCE: optionalUrl,
  // The audit trail keeps rows this many days (0: for ever); the API deletes older ones every hour.
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(365),

  // Secrets read from files (Docker/Kubernetes secrets style): a file wins over the value in the URL or variable.
  SECRETS_DIR: optionalPath,
  DATABASE_PASSWORD_FILE: optionalPath,
  NEO4J_PASSWORD_FILE: optionalPath,
  REDIS_PASSWORD_FILE: optionalPath,
  WEBHOOK_SECRET_FILE: optionalPath,
  WEBHOOK_SECRET_GRACE: duration.default(7 * 86_400_000),
  TOKEN_ROTATION_GRACE: duration.default(24 * 3_600_000),
  SECRET_ROTATION_VERIFY_TIMEOUT_MS: positiveInt.min(1000).default(30000),

  REDIS_URL: optionalUrl,
  // Redis topology: one server (REDIS_URL); Sentinel (REDIS_SENTINELS and REDIS_SENTINEL_MASTER, REDIS_URL then
  // gives only user, password and database); Cluster (REDIS_CLUSTER_NODES, and QUEUE_PREFIX with a {hash tag}).
  REDIS_MODE: z.enum(['standalone', 'sentinel', 'cluster']).default('standalone'),
  REDIS_SENTINELS: hostList,
  REDIS_SENTINEL_MASTER: z.string().trim().default(''),
  REDIS_CLUSTER_NODES: hostList,
  DATABASE_URL: optionalUrl,
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier (a-z, 0-9, _)')
    .default('public'),
  CHROMA_URL: optionalUrl,
  CHROMA_COLLECTION_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,40}$/, 'must be letters, digits, _ or -, starting with a letter or digit')
    .default('pkmcp'),
  NEO4J_URI: optionalUrl,
  NEO4J_USER: z.string().min(1).default('neo4j'),
  NEO4J_PASSWORD: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  NEO4J_DATABASE: z.string().min(1).default('neo4j'),

  QUEUE_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_:{}-]{1,64}$/, 'must be 1-64 characters of letters, digits, _ - : { }')
    .default('pkmcp'),
  WORKER_CONCURRENCY: positiveInt.max(256).default(4),
  WORKER_LOCK_DURATION_MS: positiveInt.min(1000).default(30000),

  WORKSPACE_DIR: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  GIT_TOKEN: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  INDEX_MAX_FILE_BYTES: positiveInt.default(1024 * 1024),
  INDEX_BATCH_CHUNKS: positiveInt.max(5000).default(2000),
  CHUNK_MAX_CHARS: positiveInt.min(200).max(20000).default(1500),

  EMBEDDING_PROVIDER: z.enum(['auto', 'openai', 'local']).default('auto'),
  OPENAI_API_KEY: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  OPENAI_BASE_URL: optionalUrl,
  EMBEDDING_MODEL: z.string().min(1).default('text-embedding-3-small'),
  EMBEDDING_DIMENSIONS: z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().int().positive().max(8192).optional()),
  EMBEDDING_CONCURRENCY: positiveInt.max(64).default(4),
  EMBEDDING_MAX_RETRIES: z.coerce.number().int().min(0).max(20).default(6),
  LOCAL_EMBEDDING_DIMENSIONS: positiveInt.max(4096).default(384),
  // The local model that fills in meaningful vectors in the background when no API key is set ('none': off).
  SEMANTIC_MODEL: z.enum([...LOCAL_MODEL_NAMES, 'none']).default('bge-small-en-v1.5'),
  MODEL_DIR: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  // Threads one process gives the model; on two cores one leaves the other to searches and indexing.
  SEMANTIC_THREADS: z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().int().positive().max(64).optional()),
  SEMANTIC_BATCH: positiveInt.max(128).default(8),

  // Backups (sets of every store) and the schedules the workers keep (cron, in SCHEDULE_TZ; empty: off).
  BACKUP_DIR: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .optional(),
  BACKUP_KEEP_DAILY: z.coerce.number().int().min(0).max(366).default(7),
  BACKUP_KEEP_WEEKLY: z.coerce.number().int().min(0).max(520).default(4),
  BACKUP_CRON: cron.default('0 3 * * *'),
  BACKUP_PRUNE_CRON: cron.default('30 3 * * *'),
  BACKUP_VERIFY_CRON: cron.default('0 4 * * 0'),
  SECRET_ROTATION_CRON: cron.default(''),
  REPOSITORY_POLL_CRON: cron.default('*/15 * * * *'),
  SCHEDULE_TZ: z
    .string()
    .default('UTC')
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'is not a time zone (e.g. UTC, Europe/Berlin)'),

  READY_CHECK_TIMEOUT_MS: positiveInt.default(2000),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(10000),

  STACK_REDIS_PORT: port.default(6390),
  STACK_POSTGRES_PORT: port.default(5440),
  STACK_CHROMA_PORT: port.default(8010),
  STACK_NEO4J_BOLT_PORT: port.default(7690),
  STACK_AUTO_INSTALL: bool,
});

export type Env = z.infer<typeof envSchema>;

export interface HostPort {
  host: string;
  port: number;
}

/** How Redis is reached: one server at `redisUrl`, or through Sentinels, or a Cluster (credentials still from `redisUrl`). */
export type RedisTopology =
  | { mode: 'standalone' }
  | { mode: 'sentinel'; sentinels: HostPort[]; masterName: string }
  | { mode: 'cluster'; nodes: HostPort[] };

/** A BullMQ prefix whose keys a Redis Cluster keeps in one slot per queue: it carries a `{hash tag}`. */
export function hasHashTag(prefix: string): boolean {
  return /\{[^{}]+\}/.test(prefix);
}

export interface StoreUrls {
  redisUrl: string;
  /** Standalone unless REDIS_MODE says otherwise. */
  redisTopology?: RedisTopology;
  databaseUrl: string;
  chromaUrl: string;
  neo4jUri: string;
  neo4jUser: string;
  neo4jPassword: string;
}

export interface Config extends StoreUrls {
  env: Env['NODE_ENV'];
  /** Instances every repository belongs to one of; tokens name the ones they may use. */
  instances: string[];
  adminTokenFile: string | undefined;
  /** Instances the stdio MCP server serves (it has no token to say). */
  mcpStdioInstances: string[];
  http: { corsOrigins: string[]; rateLimitPerMinute: number; rateLimitAnonymousPerMinute: number; bodyLimitBytes: number };
  webhookSecret: string | undefined;
  /** Serve /metrics on this separate port (loopback) instead of the API port. */
  metricsPort: number | undefined;
  /** JWTs from an OIDC issuer accepted beside the tokens; null when OIDC_ISSUER is not set. */
  oidc: OidcConfig | null;
  audit: { retentionDays: number };
  logLevel: Env['LOG_LEVEL'];
  logPretty: boolean;
  dataDir: string;
  api: { host: string; port: number };
  databaseSchema: string;
  chromaCollectionPrefix: string;
  neo4jDatabase: string;
  queuePrefix: string;
  workerConcurrency: number;
  /** How long a job's lock lasts without renewal: a killed worker's job is taken over after about this long. */
  workerLockDurationMs: number;
  readyCheckTimeoutMs: number;
  shutdownTimeoutMs: number;
  workspaceDir: string;
  gitToken: string | undefined;
  index: { maxFileBytes: number; batchChunks: number; maxChunkChars: number };
  embedding: {
    provider: 'auto' | 'openai' | 'local';
    openaiApiKey: string | undefined;
    openaiBaseUrl: string | undefined;
    model: string;
    dimensions: number | undefined;
    concurrency: number;
    maxRetries: number;
    localDimensions: number;
  };
  backup: { dir: string; keepDaily: number; keepWeekly: number };
  /** Cron expressions of the workers' job schedulers ('' = off), in `timeZone`. */
  schedules: { timeZone: string; backup: string; prune: string; verify: string; secretRotation: string; repositoryPoll: string };
  /** Secrets read from files, and their rotation (shared/secrets/). */
  secrets: SecretsConfig;
  /** The background tier of model vectors; null when off (an API key is set, or SEMANTIC_MODEL=none). */
  semantic: {
    model: LocalModelName;
    modelDir: string;
    threads: number;
    batch: number;
    /** How long one job embeds a branch before it hands over to other branches (default two minutes). */
    sliceMs?: number;
  } | null;
}

export interface OidcConfig {
  issuer: string;
  /** Accepted `aud` values: a JWT must name at least one. */
  audiences: string[];
  algorithms: string[];
  clockSkewMs: number;
  subjectClaim: string;
  /** Claim (a dotted path: `realm_access.roles`) whose values become scopes; '' for none. */
  scopesClaim: string;
  /** Claim value → scopes; null: values named read, write or admin are taken as they are. */
  scopeMap: Record<string, string[]> | null;
  instancesClaim: string;
  /** Claim value → instances ('*': every one); null: values naming a configured instance are taken as they are. */
  instanceMap: Record<string, string[]> | null;
  defaultScopes: string[];
  defaultInstances: string[];
  /** How often the key set is fetched again (sooner for a key id it lacks). */
  jwksRefreshMs: number;
  /** Keys fetched this long ago are still used while the issuer cannot be reached; after that, JWTs get 503. */
  jwksMaxAgeMs: number;
  httpTimeoutMs: number;
  /** The protected resource (the MCP endpoint) named in /.well-known/oauth-protected-resource. */
  resource: string;
}

const SCOPE_NAMES = ['read', 'write', 'admin'];

/** `a:x,b:x,b:y` → { a: [x], b: [x, y] }, each value checked by `valid` (which returns a problem or undefined). */
function parseClaimMap(name: string, text: string, valid: (v: string) => string | undefined, problems: string[]): Record<string, string[]> | null {
  if (text.trim() === '') return null;
  const map: Record<string, string[]> = {};
  for (const pair of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    const at = pair.lastIndexOf(':');
    const key = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    if (at <= 0 || value === '') {
      problems.push(`${name}: '${pair}' is not claim-value:target (e.g. pk-admins:admin)`);
      continue;
    }
    const problem = valid(value);
    if (problem) problems.push(`${name}: ${problem}`);
    else (map[key] ??= []).push(value);
  }
  return map;
}

function oidcConfig(e: Env, problems: string[]): OidcConfig | null {
  if (!e.OIDC_ISSUER) {
    const stray = (['OIDC_AUDIENCE', 'OIDC_SCOPE_MAP', 'OIDC_INSTANCE_MAP'] as const).filter((k) => (Array.isArray(e[k]) ? e[k].length > 0 : e[k] !== ''));
    if (stray.length > 0) problems.push(`${stray.join(', ')} set without OIDC_ISSUER: set the issuer too, or remove them`);
    return null;
  }
  const issuer = new URL(e.OIDC_ISSUER);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(issuer.hostname);
  if (issuer.protocol !== 'https:' && !(issuer.protocol === 'http:' && loopback)) {
    problems.push(`OIDC_ISSUER must be an https URL (http only on localhost), not ${e.OIDC_ISSUER}`);
  }
  if (e.OIDC_AUDIENCE.length === 0) problems.push('OIDC_AUDIENCE is required with OIDC_ISSUER: the client id or API identifier your tokens are issued for');
  const scope = (v: string) => (SCOPE_NAMES.includes(v) ? undefined : `unknown scope '${v}' (read, write or admin)`);
  const instance = (v: string) => (v === '*' || e.INSTANCES.includes(v) ? undefined : `unknown instance '${v}' (INSTANCES is ${e.INSTANCES.join(',')}, or '*')`);
  const list = (name: string, text: string, valid: (v: string) => string | undefined) =>
    text.split(',').map((x) => x.trim()).filter(Boolean).filter((v) => {
      const problem = valid(v);
      if (problem) problems.push(`${name}: ${problem}`);
      return !problem;
    });
  const base = e.API_HOST.includes(':') ? `[${e.API_HOST}]` : e.API_HOST;
  return {
    // Compared with the `iss` claim and the discovery document exactly as configured (a trailing slash matters).
    issuer: e.OIDC_ISSUER,
    audiences: e.OIDC_AUDIENCE,
    algorithms: e.OIDC_ALGORITHMS,
    clockSkewMs: e.OIDC_CLOCK_SKEW,
    subjectClaim: e.OIDC_SUBJECT_CLAIM,
    scopesClaim: e.OIDC_SCOPES_CLAIM,
    scopeMap: parseClaimMap('OIDC_SCOPE_MAP', e.OIDC_SCOPE_MAP, scope, problems),
    instancesClaim: e.OIDC_INSTANCES_CLAIM,
    instanceMap: parseClaimMap('OIDC_INSTANCE_MAP', e.OIDC_INSTANCE_MAP, instance, problems),
    defaultScopes: list('OIDC_DEFAULT_SCOPES', e.OIDC_DEFAULT_SCOPES, scope),
    defaultInstances: list('OIDC_DEFAULT_INSTANCES', e.OIDC_DEFAULT_INSTANCES, instance),
    jwksRefreshMs: e.OIDC_JWKS_REFRESH,
    jwksMaxAgeMs: e.OIDC_JWKS_MAX_AGE,
    httpTimeoutMs: e.OIDC_HTTP_TIMEOUT_MS,
    resource: e.OIDC_RESOURCE ?? `http://${base}:${e.API_PORT}/mcp`,
  };
}

export interface SecretsConfig {
  /** One file per secret (SECRETS_DIR, default <PK_DATA_DIR>/secrets): rotation writes new values here. */
  dir: string;
  /** Files the connections read their current credential from (`*_FILE`); each wins over the URL's password. */
  files: { databasePassword?: string; neo4jPassword?: string; redisPassword?: string; webhookSecret?: string };
  /** How long a rotated webhook secret's old value is still accepted. */
  webhookGraceMs: number;
  /** How long a rotated API token's old value is still accepted. */
  tokenGraceMs: number;
  /** How long a rotation waits for every live process to load the new value before it rolls back. */
  verifyTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment, listing every problem at once. */
export function parseEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
    );
  }
  return result.data;
}

/**
 * Reads the checkout's `.env` into `process.env` when present.
 * Variables already set in the environment win over the file.
 */
export function loadDotEnv(file = path.join(PACKAGE_ROOT, '.env')): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

/** What `pk-mcp stack up` records so that the other commands find the services. */
export interface StackState {
  services: Partial<
    Record<'redis' | 'postgres' | 'chroma' | 'neo4j', { url: string; managed: boolean; pid?: number; user?: string; password?: string }>
  >;
}

export function stackStatePath(dataDir: string): string {
  return path.resolve(dataDir, 'stack.json');
}

export function readStackState(dataDir: string): StackState | undefined {
  const file = stackStatePath(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

/**
 * Builds the runtime config: URLs set in the environment win; otherwise the
 * ones recorded by the local stack are used. A store with neither is a
 * configuration error naming both ways out.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parseEnv(env);
  const dataDir = path.resolve(PACKAGE_ROOT, e.PK_DATA_DIR);
  const stack = readStackState(dataDir)?.services ?? {};
  const problems: string[] = [];
  const pick = (name: string, fromEnv: string | undefined, fromStack: string | undefined) => {
    const value = fromEnv ?? fromStack;
    if (!value) {
      problems.push(`${name} is not set and the local stack is not running: run \`npx pk-mcp stack up\` or set ${name}`);
    }
    return value ?? '';
  };
  let redisTopology: RedisTopology = { mode: 'standalone' };
  let redisUrl: string;
  if (e.REDIS_MODE === 'sentinel') {
    if (e.REDIS_SENTINELS.length === 0) problems.push('REDIS_SENTINELS is required with REDIS_MODE=sentinel (host:port of each Sentinel, comma-separated)');
    if (!e.REDIS_SENTINEL_MASTER) problems.push('REDIS_SENTINEL_MASTER is required with REDIS_MODE=sentinel (the master group name the Sentinels monitor)');
    redisTopology = { mode: 'sentinel', sentinels: e.REDIS_SENTINELS, masterName: e.REDIS_SENTINEL_MASTER };
    // Only user, password and database are read from it: the Sentinels say where the master is.
    redisUrl = e.REDIS_URL ?? `redis://${e.REDIS_SENTINEL_MASTER || 'sentinel-master'}`;
  } else if (e.REDIS_MODE === 'cluster') {
    if (e.REDIS_CLUSTER_NODES.length === 0) problems.push('REDIS_CLUSTER_NODES is required with REDIS_MODE=cluster (host:port of some cluster nodes, comma-separated)');
    if (!hasHashTag(e.QUEUE_PREFIX)) {
      problems.push(`QUEUE_PREFIX "${e.QUEUE_PREFIX}" has no hash tag: on a Redis Cluster each queue's keys must share one slot, e.g. QUEUE_PREFIX={${e.QUEUE_PREFIX.replace(/[{}]/g, '')}}`);
    }
    redisTopology = { mode: 'cluster', nodes: e.REDIS_CLUSTER_NODES };
    const first = e.REDIS_CLUSTER_NODES[0];
    redisUrl = e.REDIS_URL ?? (first ? `redis://${first.host}:${first.port}` : '');
  } else {
    if (e.REDIS_SENTINELS.length > 0 || e.REDIS_CLUSTER_NODES.length > 0) {
      problems.push('REDIS_SENTINELS and REDIS_CLUSTER_NODES need REDIS_MODE=sentinel or REDIS_MODE=cluster');
    }
    redisUrl = pick('REDIS_URL', e.REDIS_URL, stack.redis?.url);
  }
  const databaseUrl = pick('DATABASE_URL', e.DATABASE_URL, stack.postgres?.url);
  const chromaUrl = pick('CHROMA_URL', e.CHROMA_URL, stack.chroma?.url);
  const neo4jUri = pick('NEO4J_URI', e.NEO4J_URI, stack.neo4j?.url);
  const neo4jFromStack = !e.NEO4J_URI && stack.neo4j;
  const neo4jPassword = e.NEO4J_PASSWORD ?? (neo4jFromStack ? stack.neo4j?.password : undefined);
  // A `*_FILE` holds the credential as it is now; connections re-read it after a rotation (shared/secrets/).
  const fromFile = (name: string, file: string | undefined): string | undefined => {
    if (!file) return undefined;
    try {
      const value = readFileSync(path.resolve(PACKAGE_ROOT, file), 'utf8').replace(/\r?\n$/, '');
      if (value === '') problems.push(`${name} ${file} is empty`);
      return value;
    } catch (err) {
      problems.push(`${name} ${file}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const databasePassword = fromFile('DATABASE_PASSWORD_FILE', e.DATABASE_PASSWORD_FILE);
  const redisPassword = fromFile('REDIS_PASSWORD_FILE', e.REDIS_PASSWORD_FILE);
  const neo4jPasswordFromFile = fromFile('NEO4J_PASSWORD_FILE', e.NEO4J_PASSWORD_FILE);
  const webhookSecretFromFile = fromFile('WEBHOOK_SECRET_FILE', e.WEBHOOK_SECRET_FILE);
  if (neo4jPassword === undefined && neo4jPasswordFromFile === undefined && neo4jUri) problems.push('NEO4J_PASSWORD (or NEO4J_PASSWORD_FILE) is not set (required with NEO4J_URI)');
  const unknownStdio = e.MCP_STDIO_INSTANCES.filter((i) => !e.INSTANCES.includes(i));
  if (unknownStdio.length > 0) problems.push(`MCP_STDIO_INSTANCES: unknown instance(s) ${unknownStdio.join(', ')} (INSTANCES is ${e.INSTANCES.join(',')})`);
  const oidc = oidcConfig(e, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    env: e.NODE_ENV,
    instances: e.INSTANCES,
    adminTokenFile: e.ADMIN_TOKEN_FILE,
    mcpStdioInstances: e.MCP_STDIO_INSTANCES.length > 0 ? e.MCP_STDIO_INSTANCES : e.INSTANCES,
    http: {
      corsOrigins: e.CORS_ORIGINS,
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      rateLimitAnonymousPerMinute: e.RATE_LIMIT_ANONYMOUS_PER_MINUTE,
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
    },
    webhookSecret: webhookSecretFromFile ?? e.WEBHOOK_SECRET,
    metricsPort: e.METRICS_PORT,
    oidc,
    audit: { retentionDays: e.AUDIT_RETENTION_DAYS },
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY ?? Boolean(process.stdout.isTTY),
    dataDir,
    api: { host: e.API_HOST, port: e.API_PORT },
    redisUrl: withUrlPassword(redisUrl, redisPassword),
    redisTopology,
    databaseUrl: withUrlPassword(databaseUrl, databasePassword),
    databaseSchema: e.DATABASE_SCHEMA,
    chromaUrl,
    chromaCollectionPrefix: e.CHROMA_COLLECTION_PREFIX,
    neo4jUri,
    neo4jUser: neo4jFromStack ? (stack.neo4j?.user ?? e.NEO4J_USER) : e.NEO4J_USER,
    neo4jPassword: neo4jPasswordFromFile ?? neo4jPassword ?? '',
    neo4jDatabase: e.NEO4J_DATABASE,
    queuePrefix: e.QUEUE_PREFIX,
    workerConcurrency: e.WORKER_CONCURRENCY,
    workerLockDurationMs: e.WORKER_LOCK_DURATION_MS,
    readyCheckTimeoutMs: e.READY_CHECK_TIMEOUT_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    workspaceDir: path.resolve(PACKAGE_ROOT, e.WORKSPACE_DIR ?? path.join(dataDir, 'workspaces')),
    gitToken: e.GIT_TOKEN,
    index: { maxFileBytes: e.INDEX_MAX_FILE_BYTES, batchChunks: e.INDEX_BATCH_CHUNKS, maxChunkChars: e.CHUNK_MAX_CHARS },
    embedding: {
      provider: e.EMBEDDING_PROVIDER,
      openaiApiKey: e.OPENAI_API_KEY,
      openaiBaseUrl: e.OPENAI_BASE_URL,
      model: e.EMBEDDING_MODEL,
      dimensions: e.EMBEDDING_DIMENSIONS,
      concurrency: e.EMBEDDING_CONCURRENCY,
      maxRetries: e.EMBEDDING_MAX_RETRIES,
      localDimensions: e.LOCAL_EMBEDDING_DIMENSIONS,
    },
    backup: { dir: path.resolve(PACKAGE_ROOT, e.BACKUP_DIR ?? path.join(dataDir, 'backups')), keepDaily: e.BACKUP_KEEP_DAILY, keepWeekly: e.BACKUP_KEEP_WEEKLY },
    schedules: {
      timeZone: e.SCHEDULE_TZ,
      backup: e.BACKUP_CRON,
      prune: e.BACKUP_PRUNE_CRON,
      verify: e.BACKUP_VERIFY_CRON,
      secretRotation: e.SECRET_ROTATION_CRON,
      repositoryPoll: e.REPOSITORY_POLL_CRON,
    },
    semantic: semanticConfig(e, dataDir),
    secrets: {
      dir: path.resolve(PACKAGE_ROOT, e.SECRETS_DIR ?? path.join(dataDir, 'secrets')),
      files: {
        ...(e.DATABASE_PASSWORD_FILE ? { databasePassword: path.resolve(PACKAGE_ROOT, e.DATABASE_PASSWORD_FILE) } : {}),
        ...(e.NEO4J_PASSWORD_FILE ? { neo4jPassword: path.resolve(PACKAGE_ROOT, e.NEO4J_PASSWORD_FILE) } : {}),
        ...(e.REDIS_PASSWORD_FILE ? { redisPassword: path.resolve(PACKAGE_ROOT, e.REDIS_PASSWORD_FILE) } : {}),
        ...(e.WEBHOOK_SECRET_FILE ? { webhookSecret: path.resolve(PACKAGE_ROOT, e.WEBHOOK_SECRET_FILE) } : {}),
      },
      webhookGraceMs: e.WEBHOOK_SECRET_GRACE,
      tokenGraceMs: e.TOKEN_ROTATION_GRACE,
      verifyTimeoutMs: e.SECRET_ROTATION_VERIFY_TIMEOUT_MS,
    },
  };
}

/** `url` with its password replaced by `password` (the URL as it is when there is none). */
export function withUrlPassword(url: string, password: string | undefined): string {
  if (password === undefined || url === '') return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/**
 * The local model runs only where vectors would otherwise know spelling, not meaning: with OpenAI (or any
 * OpenAI-compatible server) configured, the index's own vectors already carry meaning.
 */
export function semanticConfig(e: Env, dataDir: string): Config['semantic'] {
  const usesApi = e.EMBEDDING_PROVIDER === 'openai' || (e.EMBEDDING_PROVIDER === 'auto' && !!e.OPENAI_API_KEY);
  if (usesApi || e.SEMANTIC_MODEL === 'none') return null;
  return {
    model: e.SEMANTIC_MODEL,
    modelDir: path.resolve(PACKAGE_ROOT, e.MODEL_DIR ?? path.join(dataDir, 'models')),
    threads: e.SEMANTIC_THREADS ?? Math.max(1, Math.floor(availableParallelism() / 2)),
    batch: e.SEMANTIC_BATCH,
  };
}
