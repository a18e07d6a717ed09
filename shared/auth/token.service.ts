import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { ConfigError } from '../config/config.ts';
import { badRequest, conflict, notFound } from '../errors.ts';
import { notifiedCache } from '../stores/notified-cache.ts';
import type { PostgresConnection } from '../stores/postgres.connection.ts';

/**
 * API bearer tokens: `pk_mcp_` + 32 hex characters, shown once at creation and
 * stored only as their SHA-256. Each token carries scopes and the instances it
 * may use; rotation keeps the previous value valid for a grace period so
 * clients can switch without downtime.
 */

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** In a token's instances: every instance, including ones configured later. */
export const ALL_INSTANCES = '*';

/** Reserved for the token held in the admin token file (see `ensureAdminFromSecretsFile`). */
export const BOOTSTRAP_ADMIN_NAME = 'bootstrap-admin';

/** What the API prints at start when no admin token exists yet. */
export const FIRST_ADMIN_HINT =
  "no admin token exists yet: create one with `npx pk-mcp token create --name admin --scopes admin --instances '*'`";

const TOKEN_PREFIX = 'pk_mcp_';
const TOKEN_PATTERN = /^pk_mcp_[0-9a-f]{32}$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** admin ⊇ write ⊇ read: a token that may change things may also read them. */
const SCOPE_RANK: Record<Scope, number> = { read: 1, write: 2, admin: 3 };
const DEFAULT_LAST_USED_INTERVAL_MS = 60_000;

export interface Principal {
  /**
   * The token's id; for an OIDC principal a stable negative number derived from issuer and subject, so that
   * what is bound to "the token" (an MCP session) stays bound to the person across refreshed JWTs.
   */
  tokenId: number;
  /** A token's name, or `oidc:<subject>` for a JWT from the identity provider: what the audit trail records. */
  name: string;
  /** 'oidc' for a JWT from the configured issuer; absent for an API token. */
  kind?: 'oidc';
  /** The JWT's subject (OIDC only). */
  subject?: string;
  /** The scopes granted; check them with `hasScope`, which applies the hierarchy. */
  scopes: Scope[];
  /** Configured instances this token may use, with '*' already expanded. */
  instances: string[];
  expiresAt: Date | null;
}

export type TokenStatus = 'active' | 'expired' | 'revoked';

/** A token as `list` shows it: never its value or hash. */
export interface TokenRecord {
  id: number;
  name: string;
  scopes: Scope[];
  /** As granted: may be ['*']. */
  instances: string[];
  status: TokenStatus;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** Set for tokens marked for rotation: `secrets rotate` renews a value this old (shared/secrets/). */
  rotateEveryMs: number | null;
  /** Values this token had before a rotation that are still accepted, each until `validUntil`. */
  previousValues: { validUntil: Date; lastUsedAt: Date | null }[];
}

export interface NewToken {
  name: string;
  scopes: string[];
  instances: string[];
  expiresInMs?: number;
  /** Marks the token for rotation: `secrets rotate` gives it a new value once the current one is this old. */
  rotateEveryMs?: number;
  /** Who asks, for the audit log: the acting token's name, or 'cli'. Recorded as 'unknown' when left out. */
  actor?: string;
  /** Where the request came from, for the audit log (the client's address); null for the CLI. */
  source?: string | null;
}

export interface IssuedToken {
  /** The value: returned only here, never stored. */
  token: string;
  record: TokenRecord;
}

export interface BootstrapResult {
  status: 'created' | 'replaced' | 'exists' | 'unusable';
  message: string;
}

export interface TokenServiceOptions {
  /** The configured instance names; '*' in a token expands to these. */
  instances: string[];
  /** Injectable clock: every expiry, grace and last-used decision reads it. */
  now?: () => Date;
  /** last_used_at is written at most this often per token value, so reads do not turn into writes. */
  lastUsedIntervalMs?: number;
}

export type TokenService = ReturnType<typeof createTokenService>;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function isTokenFormat(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

export function hasScope(principal: Pick<Principal, 'scopes'>, scope: Scope): boolean {
  return principal.scopes.some((granted) => SCOPE_RANK[granted] >= SCOPE_RANK[scope]);
}

export function canUseInstance(principal: Pick<Principal, 'instances'>, instance: string): boolean {
  return principal.instances.includes(instance);
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/**
 * Parses `90m`, `24h`, `30d` (also `s`, `w`, and a bare `0`) into milliseconds.
 * Deliberately strict: `ms` (only a transitive dependency here) accepts
 * "1.5 hours" or "-1d" and answers undefined for typos; a token's lifetime
 * should never be guessed.
 */
export function parseDuration(text: string): number {
  const value = text.trim();
  if (value === '0') return 0;
  const match = /^(\d{1,9})([smhdw])$/.exec(value);
  if (!match) {
    throw badRequest(`invalid duration '${text}': use a whole number and a unit s, m, h, d or w (e.g. 90m, 24h, 30d)`);
  }
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

function validateName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw badRequest(`invalid token name '${name}': use 1-64 characters of letters, digits, '.', '_' or '-'`);
  }
  return name;
}

function validateScopes(scopes: string[]): Scope[] {
  if (scopes.length === 0) throw badRequest(`at least one scope is required: ${SCOPES.join(', ')}`);
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) {
      throw badRequest(`unknown scope '${scope}': valid scopes are ${SCOPES.join(', ')}`);
    }
  }
  return SCOPES.filter((s) => scopes.includes(s));
}

function validateInstances(instances: string[], configured: string[]): string[] {
  const valid = `${configured.join(', ')}, or '*' for all of them`;
  if (instances.length === 0) throw badRequest(`at least one instance is required: ${valid}`);
  if (instances.includes(ALL_INSTANCES)) {
    if (instances.some((i) => i !== ALL_INSTANCES)) {
      throw badRequest("'*' already means every instance: do not combine it with instance names");
    }
    return [ALL_INSTANCES];
  }
  for (const instance of instances) {
    if (!configured.includes(instance)) throw badRequest(`unknown instance '${instance}': valid instances are ${valid}`);
  }
  return configured.filter((i) => instances.includes(i));
}

function expiryFrom(now: Date, ms: number, what: string): Date {
  const at = new Date(now.getTime() + ms);
  if (!Number.isSafeInteger(ms) || ms <= 0 || Number.isNaN(at.getTime())) {
    throw badRequest(`${what} must be a positive duration within the representable date range`);
  }
  return at;
}

/** Channel the api_tokens trigger notifies on (migration `tokens_notify`), with the schema as payload. */
const TOKENS_CHANNEL = 'pk_tokens_changed';

const TOKEN_COLUMNS = 'id, name, scopes, instances, created_at, expires_at, last_used_at, revoked_at, rotate_every_ms';

function statusOf(row: Record<string, unknown>, now: Date): TokenStatus {
  if (row.revoked_at) return 'revoked';
  const expiresAt = row.expires_at as Date | null;
  return expiresAt && expiresAt <= now ? 'expired' : 'active';
}

function toRecord(row: Record<string, unknown>, now: Date): TokenRecord {
  const previous = (row.previous as { validUntil: string; lastUsedAt: string | null }[] | undefined) ?? [];
  return {
    id: Number(row.id),
    name: row.name as string,
    scopes: row.scopes as Scope[],
    instances: row.instances as string[],
    status: statusOf(row, now),
    createdAt: row.created_at as Date,
    expiresAt: row.expires_at as Date | null,
    lastUsedAt: row.last_used_at as Date | null,
    revokedAt: row.revoked_at as Date | null,
    rotateEveryMs: row.rotate_every_ms === null || row.rotate_every_ms === undefined ? null : Number(row.rotate_every_ms),
    previousValues: previous.map((p) => ({ validUntil: new Date(p.validUntil), lastUsedAt: p.lastUsedAt ? new Date(p.lastUsedAt) : null })),
  };
}

function isUniqueViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && e.constraint === constraint;
}

function nameTaken(name: string, expiresAt: Date | null, now: Date): Error {
  const state = expiresAt && expiresAt <= now ? ` (expired ${expiresAt.toISOString()})` : '';
  return conflict(
    `a token named '${name}' already exists${state}: revoke it first (\`pk-mcp token revoke --name ${name}\`) or choose another name`,
  );
}

function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(16).toString('hex');
}

type Queryable = Pick<pg.PoolClient, 'query'>;

export function createTokenService(pg: PostgresConnection, options: TokenServiceOptions) {
  const clock = options.now ?? (() => new Date());
  const lastUsedIntervalMs = options.lastUsedIntervalMs ?? DEFAULT_LAST_USED_INTERVAL_MS;
  const configured = [...options.instances];
  const tokenCache = notifiedCache<string, Record<string, unknown> | null>(pg, TOKENS_CHANNEL, { maxEntries: 10_000 });
  /** Writes go through here so this process sees them at once, not only when the notification arrives. */
  const transaction = <T>(fn: Parameters<typeof pg.transaction<T>>[0]) => pg.transaction(fn).finally(tokenCache.invalidate);

  async function audit(db: Queryable, at: Date, actor: string, action: string, target: string, details: Record<string, unknown>, source?: string | null) {
    await db.query(`INSERT INTO audit_log (at, actor, action, target, details, source) VALUES ($1, $2, $3, $4, $5, $6)`, [
      at,
      actor,
      action,
      target,
      JSON.stringify(details),
      source ?? null,
    ]);
  }

  /**
   * Current rows (not replaced by a rotation), each with the previous values
   * still in their grace period. Revoking revokes a name's whole chain, so
   * unrevoked rotated rows of a name belong to its one unrevoked current row.
   */
  async function selectRecords(db: Queryable, now: Date, name?: string): Promise<TokenRecord[]> {
    const { rows } = await db.query(
      `SELECT ${TOKEN_COLUMNS.split(', ').map((c) => `t.${c}`).join(', ')},
              CASE WHEN t.revoked_at IS NULL THEN (
                SELECT json_agg(json_build_object('validUntil', p.expires_at, 'lastUsedAt', p.last_used_at) ORDER BY p.expires_at)
                FROM api_tokens p
                WHERE p.name = t.name AND p.rotated_at IS NOT NULL AND p.revoked_at IS NULL AND p.expires_at > $1
              ) END AS previous
       FROM api_tokens t
       WHERE t.rotated_at IS NULL AND ($2::text IS NULL OR t.name = $2)
       ORDER BY t.name, t.created_at DESC`,
      [now, name ?? null],
    );
    return rows.map((row) => toRecord(row, now));
  }

  async function currentRecord(db: Queryable, now: Date, name: string): Promise<TokenRecord> {
    const records = await selectRecords(db, now, name);
    // Revoked rows keep the name for audit; the unrevoked one, if any, is the token.
    const record = records.find((r) => r.revokedAt === null) ?? records[0];
    if (!record) throw notFound(`no token named '${name}'`);
    return record;
  }

  async function insertToken(
    db: Queryable,
    values: { name: string; token: string; scopes: Scope[]; instances: string[]; createdAt: Date; expiresAt: Date | null; rotatedFrom?: number; rotateEveryMs?: number | null },
  ): Promise<number> {
    try {
      const { rows } = await db.query(
        `INSERT INTO api_tokens (name, token_hash, scopes, instances, created_at, expires_at, rotated_from, rotate_every_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
        [values.name, hashToken(values.token), values.scopes, values.instances, values.createdAt, values.expiresAt, values.rotatedFrom ?? null, values.rotateEveryMs ?? null],
      );
      return Number(rows[0].id);
    } catch (err) {
      // Two creators racing past the existence check: the partial unique index decides.
      if (isUniqueViolation(err, 'api_tokens_current_name_idx')) throw nameTaken(values.name, null, values.createdAt);
      throw err;
    }
  }

  async function create(input: NewToken): Promise<IssuedToken> {
    const name = validateName(input.name);
    if (name === BOOTSTRAP_ADMIN_NAME) {
      throw badRequest(`'${BOOTSTRAP_ADMIN_NAME}' is reserved for the token in the admin token file (ADMIN_TOKEN_FILE)`);
    }
    const scopes = validateScopes(input.scopes);
    const instances = validateInstances(input.instances, configured);
    const now = clock();
    const expiresAt = input.expiresInMs === undefined ? null : expiryFrom(now, input.expiresInMs, 'expiry');
    if (input.rotateEveryMs !== undefined) expiryFrom(now, input.rotateEveryMs, 'the rotation period');
    const token = generateToken();
    return transaction(async (client) => {
      const existing = await client.query(
        `SELECT expires_at FROM api_tokens WHERE name = $1 AND revoked_at IS NULL AND rotated_at IS NULL`,
        [name],
      );
      if (existing.rows[0]) throw nameTaken(name, existing.rows[0].expires_at as Date | null, now);
      const id = await insertToken(client, { name, token, scopes, instances, createdAt: now, expiresAt, rotateEveryMs: input.rotateEveryMs ?? null });
      await audit(client, now, input.actor ?? 'unknown', 'token.create', name, { tokenId: id, scopes, instances, expiresAt, ...(input.rotateEveryMs ? { rotateEveryMs: input.rotateEveryMs } : {}) }, input.source);
      return { token, record: await currentRecord(client, now, name) };
    });
  }

  async function list(): Promise<TokenRecord[]> {
    const records = await selectRecords(pg.pool, clock());
    const order: Record<TokenStatus, number> = { active: 0, expired: 1, revoked: 2 };
    // Stable sort keeps name order within each status.
    return records.sort((a, b) => order[a.status] - order[b.status]);
  }

  /** Revokes a token and every previous value still in its grace period; its name becomes free again. */
  async function revoke(name: string, opts: { actor?: string; source?: string | null } = {}): Promise<TokenRecord> {
    const now = clock();
    return transaction(async (client) => {
      const { rows } = await client.query(
        `UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING id, rotated_at`,
        [name, now],
      );
      const current = rows.find((r) => r.rotated_at === null);
      if (!current) throw notFound(`no active token named '${name}'`);
      await audit(client, now, opts.actor ?? 'unknown', 'token.revoke', name, { tokenId: Number(current.id), valuesRevoked: rows.length }, opts.source);
      return currentRecord(client, now, name);
    });
  }

  /**
   * Issues a new value for a token with the same scopes and instances. The old
   * value stays valid for `graceMs` (0: invalid at once), never beyond its own expiry. `beforeCommit` runs
   * with the new value inside the transaction: when it throws (the secrets file could not be written),
   * nothing changes.
   */
  async function rotate(
    name: string,
    opts: { graceMs?: number; expiresInMs?: number; actor?: string; source?: string | null; beforeCommit?: (token: string) => Promise<void> } = {},
  ): Promise<IssuedToken> {
    const graceMs = opts.graceMs ?? 0;
    if (!Number.isSafeInteger(graceMs) || graceMs < 0) throw badRequest('grace must be zero or a positive duration');
    if (name === BOOTSTRAP_ADMIN_NAME) {
      throw badRequest(`'${BOOTSTRAP_ADMIN_NAME}' comes from the admin token file: put a new token in that file and restart the API instead`);
    }
    const now = clock();
    const token = generateToken();
    return transaction(async (client) => {
      const { rows } = await client.query(
        `SELECT id, scopes, instances, expires_at, rotate_every_ms FROM api_tokens
         WHERE name = $1 AND revoked_at IS NULL AND rotated_at IS NULL FOR UPDATE`,
        [name],
      );
      const old = rows[0];
      if (!old) throw notFound(`no active token named '${name}'`);
      const oldExpiresAt = old.expires_at as Date | null;
      if (oldExpiresAt && oldExpiresAt <= now && opts.expiresInMs === undefined) {
        throw badRequest(`token '${name}' expired at ${oldExpiresAt.toISOString()}: give the new value a lifetime (--expires) or create a new token`);
      }
      const graceEnd = new Date(now.getTime() + graceMs);
      const validUntil = oldExpiresAt && oldExpiresAt < graceEnd ? oldExpiresAt : graceEnd;
      // The old row must leave the "current" set before the new one enters it: the partial unique index on name is not deferrable.
      await client.query(`UPDATE api_tokens SET rotated_at = $2, expires_at = $3 WHERE id = $1`, [old.id, now, validUntil]);
      const expiresAt = opts.expiresInMs === undefined ? oldExpiresAt : expiryFrom(now, opts.expiresInMs, 'expiry');
      const id = await insertToken(client, {
        name,
        token,
        scopes: old.scopes as Scope[],
        instances: old.instances as string[],
        createdAt: now,
        expiresAt,
        rotatedFrom: Number(old.id),
        rotateEveryMs: old.rotate_every_ms === null ? null : Number(old.rotate_every_ms),
      });
      await audit(client, now, opts.actor ?? 'unknown', 'token.rotate', name, {
        tokenId: id,
        previousTokenId: Number(old.id),
        previousValidUntil: validUntil,
        expiresAt,
      }, opts.source);
      await opts.beforeCommit?.(token);
      return { token, record: await currentRecord(client, now, name) };
    });
  }

  function expand(instances: string[]): string[] {
    // Instances dropped from the config are no longer grantable, even if a token names them.
    return instances.includes(ALL_INSTANCES) ? [...configured] : configured.filter((i) => instances.includes(i));
  }

  /**
   * The principal for a presented token, or null. No constant-time comparison
   * is needed: the lookup compares SHA-256(presented) with stored hashes, and an
   * attacker cannot steer a hash towards a prefix of a stored one, so the
   * index's early-exit comparisons reveal nothing about any stored value.
   */
  async function verify(token: string): Promise<Principal | null> {
    if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return null;
    const now = clock();
    const hash = hashToken(token);
    // Cached per hash while the table's notifications arrive (every change to api_tokens drops the
    // cache); expiry is checked against the clock on every call. Unknown hashes are not cached.
    const row = await tokenCache.get(hash, async () => {
      const { rows } = await pg.pool.query(
        `SELECT id, name, scopes, instances, expires_at, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`,
        [hash],
      );
      return rows[0] ?? null;
    });
    if (!row) {
      tokenCache.delete(hash);
      return null;
    }
    if (row.expires_at && (row.expires_at as Date) <= now) return null;
    const lastUsedAt = row.last_used_at as Date | null;
    const staleBefore = new Date(now.getTime() - lastUsedIntervalMs);
    if (!lastUsedAt || lastUsedAt <= staleBefore) {
      // The condition is repeated in SQL so that concurrent requests write once, not once each.
      await pg.pool.query(
        `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)`,
        [row.id, now, staleBefore],
      );
    }
    return {
      tokenId: Number(row.id),
      name: row.name as string,
      scopes: row.scopes as Scope[],
      instances: expand(row.instances as string[]),
      expiresAt: row.expires_at as Date | null,
    };
  }

  /** Whether a current, unexpired admin token exists (the API hints how to create one otherwise). */
  async function hasActiveAdmin(): Promise<boolean> {
    const { rows } = await pg.pool.query(
      `SELECT EXISTS (
         SELECT 1 FROM api_tokens
         WHERE 'admin' = ANY(scopes) AND revoked_at IS NULL AND rotated_at IS NULL AND (expires_at IS NULL OR expires_at > $1)
       ) AS found`,
      [clock()],
    );
    return rows[0].found === true;
  }

  /**
   * Makes sure the token in `file` exists as the admin token `bootstrap-admin`
   * (admin scope, every instance, no expiry). Idempotent. A new value in the
   * file replaces the previous bootstrap token; a value that was revoked or
   * rotated away is never brought back, only reported as unusable.
   */
  async function ensureAdminFromSecretsFile(file: string): Promise<BootstrapResult> {
    let value: string;
    try {
      value = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new ConfigError([`admin token file ${file}: ${(err as Error).message}`]);
    }
    // Never echo the file's content: it might be some other secret put there by mistake.
    if (!TOKEN_PATTERN.test(value)) {
      throw new ConfigError([
        `admin token file ${file} does not hold a pk-mcp token (pk_mcp_ followed by 32 lower-case hex characters)`,
      ]);
    }
    const hash = hashToken(value);
    const now = clock();
    return transaction(async (client) => {
      // API processes starting together would otherwise race to replace each other's insert.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`pk-mcp:bootstrap-admin:${pg.schema}`]);
      const { rows } = await client.query(
        `SELECT name, scopes, expires_at, revoked_at, rotated_at FROM api_tokens WHERE token_hash = $1`,
        [hash],
      );
      const known = rows[0];
      if (known) {
        const unusable = (why: string): BootstrapResult => ({ status: 'unusable', message: `the token in ${file} ${why}; put a new token in the file` });
        if (known.revoked_at) return unusable(`was revoked (token '${known.name}')`);
        if (known.rotated_at) return unusable(`was rotated away (token '${known.name}')`);
        if (known.expires_at && (known.expires_at as Date) <= now) return unusable(`expired (token '${known.name}')`);
        if (!(known.scopes as string[]).includes('admin')) return unusable(`belongs to token '${known.name}', which lacks the admin scope`);
        return { status: 'exists', message: `admin token '${known.name}' from ${file} is active` };
      }
      const replaced = await client.query(
        `UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING id`,
        [BOOTSTRAP_ADMIN_NAME, now],
      );
      const id = await insertToken(client, {
        name: BOOTSTRAP_ADMIN_NAME,
        token: value,
        scopes: ['admin'],
        instances: [ALL_INSTANCES],
        createdAt: now,
        expiresAt: null,
      });
      const status = replaced.rowCount ? 'replaced' : 'created';
      await audit(client, now, 'bootstrap', status === 'replaced' ? 'token.replace' : 'token.create', BOOTSTRAP_ADMIN_NAME, {
        tokenId: id,
        scopes: ['admin'],
        instances: [ALL_INSTANCES],
        source: file,
        valuesRevoked: replaced.rowCount ?? 0,
      });
      return {
        status,
        message: `admin token '${BOOTSTRAP_ADMIN_NAME}' ${status === 'replaced' ? 'replaced with the new value' : 'created'} from ${file}`,
      };
    });
  }

  return { create, list, revoke, rotate, verify, hasActiveAdmin, ensureAdminFromSecretsFile };
}
