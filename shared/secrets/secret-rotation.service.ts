import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { createTokenService } from '../auth/token.service.ts';
import { badRequest, errorMessage, notFound } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Platform } from '../platform.ts';
import { liveProcesses, publishReload, storeCheckers, type ProcessReport } from './secret-agent.ts';
import { fingerprint, generateSecret, pendingPath, readSecretFileSync, removeSecretFile, writeSecretFile, type FileSecret } from './secret-file.ts';
import { SOURCE_SECRET_NAMES, type SourceKind } from './secret-sources.ts';

/**
 * Rotation of the secrets the platform manages:
 *
 * - `database-password`, `neo4j-password`, `redis-password`: the store credential the connections read from a
 *   `*_FILE`, changed in the store with the platform's own connection (Postgres `ALTER ROLE`, Neo4j
 *   `ALTER CURRENT USER`, Redis `ACL SETUSER`);
 * - `webhook-secret`: the global webhook secret (WEBHOOK_SECRET_FILE); the old value is accepted until
 *   WEBHOOK_SECRET_GRACE has passed;
 * - `repo-webhook-<repository>`: a repository's own webhook secret, likewise;
 * - `token-<name>`: API tokens marked for rotation (`token create --rotate-every`), with TOKEN_ROTATION_GRACE.
 *
 * A store credential goes: generate → keep the new value (and the old) beside the file (`<file>.next`,
 * `<file>.previous`) → apply it in the store alongside the old one (Redis holds two passwords; Postgres and
 * Neo4j hold one, so there the change is the switch, and a connection refused in between takes the `.next`
 * value: see FileSecret.authFailed) → replace the file → publish a reload → wait until every live process
 * reports the new value's fingerprint (secret-agent.ts) → retire the old value (Redis) → drop the side files.
 * A failure rolls back: the store and the file get the old value again. The side files are also the journal:
 * a rotation interrupted by a crash is finished or undone by the next one (the job is re-run when its worker dies).
 */

export type SecretKind = SourceKind | 'repo-webhook' | 'token';

export interface SecretEntry {
  name: string;
  kind: SecretKind;
  /** Whether `secrets rotate` may rotate it; `reason` says why not. */
  managed: boolean;
  reason?: string;
  /** Where the current value is (a file), or where a rotation writes it for the operator to hand on. */
  file?: string;
  /** Tokens: when the current value falls due (rotated by `all` only from then on). */
  dueAt?: string;
}

export interface RotatedSecret {
  name: string;
  fingerprint: string;
  file: string;
  /** Until when the old value is still accepted (webhooks, tokens); absent: the old value is gone. */
  previousValidUntil?: string;
  /** Processes that confirmed they use the new value. */
  processes?: number;
  /** What the operator should know (a value to hand on, an ACL not persisted). */
  notes?: string[];
}

export interface RotationResult {
  rotated: RotatedSecret[];
  skipped: Array<{ name: string; reason: string }>;
  failed: Array<{ name: string; error: string; rolledBack: boolean }>;
}

export type RotationStep = 'resume' | 'generate' | 'apply' | 'write' | 'reload' | 'verify' | 'retire' | 'rollback' | 'done';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$/;
const STORE_LABEL: Record<SourceKind, string> = { postgres: 'Postgres', neo4j: 'Neo4j', redis: 'Redis', webhook: 'webhook' };
const FILE_VARIABLE: Record<SourceKind, string> = {
  postgres: 'DATABASE_PASSWORD_FILE',
  neo4j: 'NEO4J_PASSWORD_FILE',
  redis: 'REDIS_PASSWORD_FILE',
  webhook: 'WEBHOOK_SECRET_FILE',
};

class Skip extends Error {}

/** Postgres's SCRAM-SHA-256 verifier of `password`: ALTER ROLE gets this, so the password is never in a statement (or a server log). */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** How one store holds, changes and checks its credential. */
interface StoreStrategy {
  /** Throws Skip when the platform cannot change this credential. */
  check(): Promise<void>;
  /** Whether the store accepts old and new at once (then `retire` removes the old one). */
  dual: boolean;
  apply(previous: string, next: string): Promise<void>;
  retire(previous: string, next: string): Promise<string[] | void>;
  rollback(previous: string, next: string): Promise<void>;
  /** Resolves when the store accepts `value` on a fresh connection. */
  accepts(value: string): Promise<void>;
}

export interface SecretRotationOptions {
  platform: Platform;
  logger: Logger;
  /** Called at each step (the job mirrors it into its progress). */
  onStep?: (secret: string, step: RotationStep) => void | Promise<void>;
  now?: () => Date;
}

export function createSecretRotationService(options: SecretRotationOptions) {
  const { platform, logger } = options;
  const { config, stores } = platform;
  const clock = options.now ?? (() => new Date());
  const log = logger.child({ component: 'secret-rotation' });
  const tokens = createTokenService(stores.postgres, { instances: config.instances });
  const checkers = storeCheckers(config);
  const redisUser = decodeURIComponent(new URL(config.redisUrl).username) || 'default';
  const step = async (secret: string, s: RotationStep) => {
    log.info({ secret, step: s }, 'secret rotation step');
    await options.onStep?.(secret, s);
  };

  const strategies: Record<Exclude<SourceKind, 'webhook'>, StoreStrategy> = {
    postgres: {
      dual: false,
      async check() {
        const { rows } = await stores.postgres.pool.query<{ user: string; login: boolean }>(
          `SELECT current_user AS user, rolcanlogin AS login FROM pg_roles WHERE rolname = current_user`,
        );
        if (!rows[0]?.login) throw new Skip(`Postgres role ${rows[0]?.user ?? '?'} cannot log in`);
      },
      async apply(_previous, next) {
        await stores.postgres.pool.query(`ALTER ROLE CURRENT_USER PASSWORD ${pg.escapeLiteral(scramVerifier(next))}`);
      },
      async retire() {
        // Postgres held one password all along: the old one went with the ALTER ROLE.
      },
      async rollback(previous) {
        await stores.postgres.pool.query(`ALTER ROLE CURRENT_USER PASSWORD ${pg.escapeLiteral(scramVerifier(previous))}`);
      },
      accepts: checkers.postgres,
    },
    neo4j: {
      dual: false,
      async check() {
        await stores.neo4j.driver.executeQuery('SHOW CURRENT USER', {}, { database: 'system' }).catch((err: unknown) => {
          throw new Skip(`Neo4j user ${config.neo4jUser} cannot use the system database: ${errorMessage(err)}`);
        });
      },
      async apply(previous, next) {
        await stores.neo4j.driver.executeQuery('ALTER CURRENT USER SET PASSWORD FROM $previous TO $next', { previous, next }, { database: 'system' });
      },
      async retire() {
        // One password per user: the old one went with the change.
      },
      async rollback(previous, next) {
        // Whichever value the user has now, it goes back to `previous` (an interrupted apply may not have happened).
        await stores.neo4j.driver
          .executeQuery('ALTER CURRENT USER SET PASSWORD FROM $next TO $previous', { previous, next }, { database: 'system' })
          .catch(async (err: unknown) => {
            if (await checkers.neo4j(previous).then(() => true, () => false)) return;
            throw err;
          });
      },
      accepts: checkers.neo4j,
    },
    redis: {
      dual: true,
      async check() {
        let flags: string[];
        try {
          const info = (await stores.redis.client.call('ACL', 'GETUSER', redisUser)) as unknown[] | null;
          if (!info) throw new Skip(`Redis has no ACL user ${redisUser}`);
          flags = (info[info.indexOf('flags') + 1] as string[]) ?? [];
        } catch (err) {
          if (err instanceof Skip) throw err;
          throw new Skip(`Redis user ${redisUser} may not read or change ACL users (${errorMessage(err)}): grant it +acl, or rotate the password by hand`);
        }
        if (flags.includes('nopass')) throw new Skip(`Redis user ${redisUser} needs no password (nopass): there is nothing to rotate`);
      },
      async apply(_previous, next) {
        await stores.redis.client.call('ACL', 'SETUSER', redisUser, `>${next}`);
        await persistAcl();
      },
      async retire(previous) {
        await stores.redis.client.call('ACL', 'SETUSER', redisUser, `<${previous}`);
        return persistAcl();
      },
      async rollback(_previous, next) {
        await stores.redis.client.call('ACL', 'SETUSER', redisUser, `<${next}`);
        await persistAcl();
      },
      accepts: checkers.redis,
    },
  };

  /** ACL SETUSER lives in memory: with an ACL file, save it, so a Redis restart does not bring the old password back. */
  async function persistAcl(): Promise<string[]> {
    try {
      await stores.redis.client.call('ACL', 'SAVE');
      return [];
    } catch (err) {
      return [`Redis did not save its ACL (${errorMessage(err)}): unless the users are defined where Redis reads them at start, update that definition before Redis restarts`];
    }
  }

  async function writable(file: string): Promise<string | undefined> {
    try {
      await access(path.dirname(file), constants.W_OK);
      return undefined;
    } catch {
      return `${file}'s folder is not writable (a mounted secret?): rotate it where it comes from`;
    }
  }

  /** Every secret the platform knows of, managed or not, and why not. */
  async function catalog(): Promise<SecretEntry[]> {
    const entries: SecretEntry[] = [];
    for (const kind of ['postgres', 'neo4j', 'redis', 'webhook'] as const) {
      const source = platform.secrets[kind];
      const name = SOURCE_SECRET_NAMES[kind];
      if (!source) {
        const unset = `${FILE_VARIABLE[kind]} is not set: the ${STORE_LABEL[kind]} ${kind === 'webhook' ? 'secret' : 'password'} is not read from a file, so a rotation could not reach the running processes`;
        entries.push({ name, kind, managed: false, reason: unset });
        continue;
      }
      const reason = await writable(source.file);
      entries.push({ name, kind, managed: reason === undefined, file: source.file, ...(reason ? { reason } : {}) });
    }
    const repos = await stores.postgres.pool.query<{ name: string }>(`SELECT name FROM repositories WHERE webhook_secret IS NOT NULL ORDER BY name`);
    for (const r of repos.rows) entries.push({ name: `repo-webhook-${r.name}`, kind: 'repo-webhook', managed: true, file: path.join(config.secrets.dir, `repo-webhook-${r.name}`) });
    const marked = await stores.postgres.pool.query<{ name: string; due_at: Date }>(
      `SELECT name, created_at + rotate_every_ms * interval '1 millisecond' AS due_at FROM api_tokens
        WHERE rotate_every_ms IS NOT NULL AND revoked_at IS NULL AND rotated_at IS NULL ORDER BY name`,
    );
    for (const t of marked.rows) {
      entries.push({ name: `token-${t.name}`, kind: 'token', managed: true, file: path.join(config.secrets.dir, `token-${t.name}`), dueAt: t.due_at.toISOString() });
    }
    return entries;
  }

  /** The entry `name` stands for: a 400 for a malformed name, a 404 for an unknown one, a 400 naming why for an unmanaged one. */
  async function resolve(name: string): Promise<SecretEntry[]> {
    if (name === 'all') return catalog();
    if (!NAME_PATTERN.test(name)) throw badRequest(`invalid secret name '${name}': use 'all' or a name such as database-password, repo-webhook-<repository>, token-<name>`);
    const entries = await catalog();
    const entry = entries.find((e) => e.name === name);
    if (!entry) {
      const hint = name.startsWith('token-')
        ? ` (no active token named '${name.slice(6)}' is marked for rotation: create it with --rotate-every, or use \`pk-mcp token rotate\`)`
        : name.startsWith('repo-webhook-')
          ? ` (no repository named '${name.slice(13)}' has a webhook secret of its own)`
          : '';
      throw notFound(`unknown secret '${name}'${hint}: known secrets are ${entries.map((e) => e.name).join(', ')}, or 'all'`);
    }
    if (!entry.managed) throw badRequest(`secret '${name}' is not managed by the platform: ${entry.reason}`);
    return [entry];
  }

  /** Waits until every live process reports `expected` for `secret`; a process that cannot use it fails the wait. */
  async function waitForProcesses(secret: string, expected: string): Promise<ProcessReport[]> {
    const deadline = Date.now() + config.secrets.verifyTimeoutMs;
    let lastPublish = 0;
    for (;;) {
      if (Date.now() - lastPublish > 2000) {
        await publishReload(stores.redis.client, config.queuePrefix, secret);
        lastPublish = Date.now();
      }
      const live = await liveProcesses(stores.redis.client, config.queuePrefix);
      const users = live.filter((p) => secret in p.secrets);
      const refused = users.find((p) => p.errors[secret] && p.secrets[secret] !== expected);
      if (refused) throw new Error(`process ${refused.id} cannot use the new value: ${refused.errors[secret]}`);
      const behind = users.filter((p) => p.secrets[secret] !== expected);
      if (behind.length === 0) return users;
      if (Date.now() > deadline) {
        throw new Error(`${behind.map((p) => p.id).join(', ')} did not load the new value within ${config.secrets.verifyTimeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Live processes that reach this store with a fixed password: changing it would cut them off. */
  async function fixedUsers(secret: string): Promise<string[]> {
    const live = await liveProcesses(stores.redis.client, config.queuePrefix);
    return live.filter((p) => p.fixed.includes(secret as ProcessReport['fixed'][number])).map((p) => p.id);
  }

  /** The file-backed secrets: a store credential, or the global webhook secret. */
  async function rotateFileSecret(kind: SourceKind, source: FileSecret): Promise<RotatedSecret> {
    const name = source.name;
    const next = pendingPath(source.file);
    const prev = `${source.file}.previous`;
    const strategy: StoreStrategy =
      kind === 'webhook'
        ? {
            dual: true,
            check: async () => undefined,
            apply: async (previous) => {
              const until = new Date(clock().getTime() + config.secrets.webhookGraceMs);
              await stores.postgres.pool.query(
                `INSERT INTO secret_grace (name, previous_value, valid_until, rotated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET previous_value = excluded.previous_value, valid_until = excluded.valid_until, rotated_at = excluded.rotated_at`,
                [name, previous, until, clock()],
              );
            },
            // The old value stays accepted until its deadline: the senders need time to be given the new one.
            retire: async () => undefined,
            rollback: async (previous) => {
              await stores.postgres.pool.query(`DELETE FROM secret_grace WHERE name = $1 AND previous_value = $2`, [name, previous]);
            },
            accepts: checkers.webhook,
          }
        : strategies[kind];

    const fixed = kind === 'webhook' ? [] : await fixedUsers(name);
    if (fixed.length > 0) throw new Skip(`${fixed.join(', ')} read the ${STORE_LABEL[kind]} password from the URL or variable, not ${FILE_VARIABLE[kind]}: they would lose their connections`);
    await strategy.check();

    // An earlier rotation of this secret was interrupted (its worker died): finish it or undo it first.
    let previous: string | undefined;
    let value: string | undefined;
    const pending = readSecretFileSync(next);
    if (pending) {
      await step(name, 'resume');
      const onDisk = source.peek();
      const old = readSecretFileSync(prev) ?? (onDisk !== pending ? onDisk : undefined);
      if (onDisk === pending && old) {
        previous = old;
        value = pending;
        log.warn({ secret: name }, 'resuming an interrupted rotation: the file already holds the new value');
      } else if (old && !strategy.dual && (await strategy.accepts(pending).then(() => true, () => false))) {
        previous = old;
        value = pending;
        await writeSecretFile(source.file, value);
        log.warn({ secret: name }, 'resuming an interrupted rotation: the store had the new value, now the file has it too');
      } else {
        if (old && strategy.dual) await strategy.rollback(old, pending).catch(() => undefined);
        await removeSecretFile(next);
        await removeSecretFile(prev);
        log.warn({ secret: name }, 'undid an interrupted rotation that had not reached the file');
      }
    }

    let changedStore = value !== undefined;
    let wroteFile = value !== undefined;
    if (value === undefined) {
      await step(name, 'generate');
      previous = source.peek() ?? source.value;
      value = generateSecret();
      // Durable before the store changes: the `.next` value is what connections try when the store refuses the file's.
      await writeSecretFile(prev, previous);
      await writeSecretFile(next, value);
    }
    const old = previous!;
    const fresh = value;
    let processes = 0;
    try {
      if (!changedStore) {
        await step(name, 'apply');
        changedStore = true;
        await strategy.apply(old, fresh);
        // A store with one password takes only the new one from now on: this process switches at once.
        if (!strategy.dual) source.adopt(fresh);
        await strategy.accepts(fresh);
      }
      if (!wroteFile) {
        await step(name, 'write');
        await writeSecretFile(source.file, fresh);
        wroteFile = true;
      }
      // This process first: it has just seen the store take the value.
      source.adopt(fresh);
      await step(name, 'reload');
      await publishReload(stores.redis.client, config.queuePrefix, name);
      await step(name, 'verify');
      processes = (await waitForProcesses(name, fingerprint(fresh))).length;
    } catch (err) {
      await step(name, 'rollback');
      const undo = await rollback(kind, source, strategy, { old, fresh, changedStore, wroteFile }).then(
        () => undefined,
        (e: unknown) => errorMessage(e),
      );
      if (undo) throw new RotationFailed(`${errorMessage(err)}; the rollback failed too: ${undo}`, false);
      throw new RotationFailed(errorMessage(err), true);
    }
    await step(name, 'retire');
    const notes = (await strategy.retire(old, fresh)) ?? [];
    await removeSecretFile(next);
    await removeSecretFile(prev);
    const graceUntil =
      kind === 'webhook' ? new Date(clock().getTime() + config.secrets.webhookGraceMs).toISOString() : undefined;
    if (kind === 'webhook') notes.push(`give GitHub/GitLab the new value (in ${source.file}) before ${graceUntil}, when the old one stops working`);
    return { name, fingerprint: fingerprint(fresh), file: source.file, processes, ...(graceUntil ? { previousValidUntil: graceUntil } : {}), ...(notes.length ? { notes } : {}) };
  }

  async function rollback(
    kind: SourceKind,
    source: FileSecret,
    strategy: StoreStrategy,
    state: { old: string; fresh: string; changedStore: boolean; wroteFile: boolean },
  ): Promise<void> {
    if (state.changedStore) await strategy.rollback(state.old, state.fresh);
    if (state.wroteFile) await writeSecretFile(source.file, state.old);
    source.adopt(state.old);
    await removeSecretFile(pendingPath(source.file));
    await removeSecretFile(`${source.file}.previous`);
    if (state.wroteFile) {
      // Processes that took the new value go back to the file's (old) one; the store refuses the new one by now anyway.
      await publishReload(stores.redis.client, config.queuePrefix, source.name);
      await waitForProcesses(source.name, fingerprint(state.old)).catch((err: unknown) =>
        log.warn({ secret: source.name, kind, err: errorMessage(err) }, 'after a rollback, not every process reported the old value yet'),
      );
    }
  }

  async function rotateRepositoryWebhook(entry: SecretEntry): Promise<RotatedSecret> {
    const repo = entry.name.slice('repo-webhook-'.length);
    const file = entry.file!;
    const value = generateSecret();
    const until = new Date(clock().getTime() + config.secrets.webhookGraceMs);
    await step(entry.name, 'apply');
    await stores.postgres.transaction(async (client) => {
      const { rowCount } = await client.query(
        `UPDATE repositories SET previous_webhook_secret = webhook_secret, previous_webhook_secret_until = $2, webhook_secret = $3
          WHERE name = $1 AND webhook_secret IS NOT NULL`,
        [repo, until, value],
      );
      if (!rowCount) throw new Error(`repository ${repo} no longer has a webhook secret`);
      // Inside the transaction: when the file cannot be written, the secret stays as it was.
      await step(entry.name, 'write');
      await writeSecretFile(file, value);
    });
    return {
      name: entry.name,
      fingerprint: fingerprint(value),
      file,
      previousValidUntil: until.toISOString(),
      notes: [`give the repository's webhook at GitHub/GitLab the new value (in ${file}) before ${until.toISOString()}, when the old one stops working`],
    };
  }

  async function rotateToken(entry: SecretEntry): Promise<RotatedSecret> {
    const tokenName = entry.name.slice('token-'.length);
    const file = entry.file!;
    const before = readSecretFileSync(file);
    let wrote = false;
    await step(entry.name, 'apply');
    let issued;
    try {
      issued = await tokens.rotate(tokenName, {
        graceMs: config.secrets.tokenGraceMs,
        actor: 'secret-rotation',
        beforeCommit: async (token) => {
          await step(entry.name, 'write');
          await writeSecretFile(file, token);
          wrote = true;
        },
      });
    } catch (err) {
      // The commit failed after the file was written: the file goes back to the value that still works.
      if (wrote) await (before === undefined ? removeSecretFile(file) : writeSecretFile(file, before)).catch(() => undefined);
      throw err;
    }
    await step(entry.name, 'verify');
    if (!(await tokens.verify(issued.token))) throw new Error(`token ${tokenName}'s new value is not accepted`);
    const previous = issued.record.previousValues.at(-1);
    return { name: entry.name, fingerprint: fingerprint(issued.token), file, ...(previous ? { previousValidUntil: previous.validUntil.toISOString() } : {}) };
  }

  async function rotateEntry(entry: SecretEntry): Promise<RotatedSecret> {
    if (entry.kind === 'repo-webhook') return rotateRepositoryWebhook(entry);
    if (entry.kind === 'token') return rotateToken(entry);
    return rotateFileSecret(entry.kind, platform.secrets[entry.kind]!);
  }

  /**
   * Rotates `name` (or every managed secret: 'all', where tokens are rotated only once due), one at a time,
   * each recorded in the audit log. Concurrent rotations in other workers wait for this one.
   */
  async function rotate(name: string, actor: string): Promise<RotationResult> {
    const result: RotationResult = { rotated: [], skipped: [], failed: [] };
    let entries: SecretEntry[];
    try {
      entries = await resolve(name);
    } catch (err) {
      // A named secret that cannot be rotated: refused, and recorded as such.
      await platform.audit.record({ actor, action: 'secret.rotate', target: name, result: 'refused', details: { error: errorMessage(err) } });
      throw err;
    }
    const lock = await stores.postgres.pool.connect();
    try {
      await acquireLock(lock);
      for (const entry of entries) {
        if (!entry.managed) {
          result.skipped.push({ name: entry.name, reason: entry.reason ?? 'not managed' });
          continue;
        }
        if (name === 'all' && entry.dueAt && new Date(entry.dueAt) > clock()) {
          result.skipped.push({ name: entry.name, reason: `not due until ${entry.dueAt}` });
          continue;
        }
        const started = performance.now();
        const durationMs = () => Math.round(performance.now() - started);
        try {
          const rotated = await rotateEntry(entry);
          await step(entry.name, 'done');
          result.rotated.push(rotated);
          await platform.audit.record({
            actor,
            action: 'secret.rotate',
            target: entry.name,
            result: 'ok',
            durationMs: durationMs(),
            details: { fingerprint: rotated.fingerprint, file: rotated.file, ...(rotated.previousValidUntil ? { previousValidUntil: rotated.previousValidUntil } : {}), ...(rotated.processes !== undefined ? { processes: rotated.processes } : {}) },
          });
        } catch (err) {
          if (err instanceof Skip) {
            result.skipped.push({ name: entry.name, reason: err.message });
            if (name !== 'all') {
              await platform.audit.record({ actor, action: 'secret.rotate', target: entry.name, result: 'refused', durationMs: durationMs(), details: { error: err.message } });
            }
            continue;
          }
          const rolledBack = err instanceof RotationFailed ? err.rolledBack : true;
          log.error({ secret: entry.name, err: errorMessage(err), rolledBack }, 'secret rotation failed');
          result.failed.push({ name: entry.name, error: errorMessage(err), rolledBack });
          await platform.audit.record({ actor, action: 'secret.rotate', target: entry.name, result: 'failed', durationMs: durationMs(), details: { error: errorMessage(err), rolledBack } });
        }
      }
    } finally {
      await lock.query(`SELECT pg_advisory_unlock_all()`).catch(() => undefined);
      lock.release();
    }
    return result;
  }

  /** One rotation at a time per deployment: a session lock, so a worker that dies lets go of it at once. */
  async function acquireLock(client: pg.PoolClient): Promise<void> {
    const key = `pk-mcp:secret-rotate:${config.databaseSchema}`;
    const deadline = Date.now() + 5 * 60_000;
    for (;;) {
      const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [key]);
      if (rows[0]!.ok) return;
      if (Date.now() > deadline) throw new Error('another secret rotation has been running for over 5 minutes');
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  return { catalog, resolve, rotate };
}

export type SecretRotationService = ReturnType<typeof createSecretRotationService>;

class RotationFailed extends Error {
  constructor(
    message: string,
    readonly rolledBack: boolean,
  ) {
    super(message);
  }
}

/** What the workers' job scheduler needs for the scheduled rotation (SECRET_ROTATION_CRON; off when empty). */
export function secretRotationSchedule(cron: string | undefined, timeZone?: string) {
  if (!cron) return null;
  return {
    schedulerId: 'secret-rotate',
    repeat: { pattern: cron, ...(timeZone ? { tz: timeZone } : {}) },
    job: { name: 'secret-rotate' as const, data: { name: 'all', actor: 'schedule:secret-rotate' } },
  };
}
