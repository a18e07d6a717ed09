import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { PACKAGE_ROOT, type Config } from '../config/config.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { AppError, badRequest, notFound } from '../errors.ts';
import { createGraphQueryService } from '../graph/graph-query.service.ts';
import type { Logger } from '../logger.ts';
import { createPlatform, type Platform } from '../platform.ts';
import { createSearchService } from '../search/hybrid-search.ts';
import { filesUnder, packSet, scratchDir, unpackSet } from './archive.ts';
import { holdPublishBarrier } from './barrier.ts';
import { collectionsOfRepositories, countChroma, dropCollections, exportChroma, importChroma } from './chroma-part.ts';
import { countGraph, exportGraph, graphSchema, importGraph } from './graph-part.ts';
import {
  BACKUP_FORMAT,
  MANIFEST_FILE,
  PRODUCT,
  manifestChecksum,
  manifestSchema,
  summaryOf,
  type Manifest,
  type ManifestPart,
  type Probe,
} from './manifest.ts';
import { checkPostgresColumns, countPostgres, existingRows, exportPostgres, importPostgres } from './postgres-part.ts';
import { setsToKeep } from './retention.ts';
import { sha256OfFile } from './streams.ts';

export interface BackupProgress {
  phase: 'waiting for publishes' | 'postgres' | 'chroma' | 'neo4j' | 'packing' | 'checking' | 'restoring' | 'verifying' | 'done';
  step?: string;
  done?: number;
  total?: number;
}
type OnProgress = (p: BackupProgress) => void | Promise<void>;

export interface BackupListing {
  file: string;
  bytes: number;
  createdAt: string;
  instance: string | null;
  counts: ReturnType<typeof summaryOf>;
  /** Outcome of the newest verification (a restore into a scratch namespace), if any. */
  verification: { at: string; ok: boolean; problems: string[] } | null;
}

export interface CheckResult {
  /** The part (`postgres:chunks`, `chroma:…`, `neo4j:nodes`) and the counts expected and found. */
  counts: Array<{ part: string; expected: number; found: number }>;
  probes: Array<Probe & { search: boolean; graph: boolean }>;
  problems: string[];
}

const FILE_NAME = /^[A-Za-z0-9._-]+\.tar\.gz$/;
const PRODUCT_VERSION = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** `2026-12-04T17:03:09.123Z` → `20261204T170309Z`. */
const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');

function sidecarOf(file: string): string {
  return `${file.slice(0, -'.tar.gz'.length)}.json`;
}

function writeAtomically(file: string, content: string): void {
  const temp = `${path.dirname(file)}/.tmp-${path.basename(file)}-${process.pid}`;
  writeFileSync(temp, content, { mode: 0o600 });
  renameSync(temp, file);
}

/**
 * Backups of every store — Postgres rows, Chroma vectors, the Neo4j graph — as one `.tar.gz` per set with a
 * manifest of counts and checksums; restore (checked before anything changes), verification (a restore into
 * a scratch namespace), listing and pruning. Sets are files: they outlive the stores they describe.
 */
export function createBackupService(platform: Platform, logger: Logger) {
  const { config, stores } = platform;
  const dir = config.backup.dir;

  function resolveFile(file: string): string {
    // A name means a set in BACKUP_DIR; a path (CLI only) may point anywhere.
    const full = file.includes('/') ? path.resolve(file) : path.join(dir, file);
    if (!file.includes('/') && !FILE_NAME.test(file)) throw badRequest(`"${file}" is not a backup file name (<name>.tar.gz)`, 'invalid_backup_file');
    if (!existsSync(full)) throw notFound(`no backup named ${path.basename(full)} in ${path.dirname(full)}`, 'backup_not_found');
    return full;
  }

  async function storeVersions(): Promise<Manifest['stores']> {
    const pgVersion = (await stores.postgres.pool.query<{ v: string }>('SHOW server_version')).rows[0]?.v ?? 'unknown';
    const chromaVersion = await stores.chroma.client.version().catch(() => 'unknown');
    const neo = await stores.neo4j.driver
      .executeQuery('CALL dbms.components() YIELD name, versions, edition RETURN name, versions[0] AS v, edition', {}, { database: stores.neo4j.database })
      .then((r) => `${r.records[0]?.get('v')} ${r.records[0]?.get('edition')}`)
      .catch(() => 'unknown');
    return { postgres: pgVersion, chroma: chromaVersion, neo4j: neo };
  }

  async function appliedMigrations(client: pg.ClientBase): Promise<string[]> {
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM pgmigrations ORDER BY run_on, id`);
    return rows.map((r) => r.name);
  }

  /** Symbols to search for and look up after a restore: two per branch, from up to five branches. */
  async function probesOf(client: pg.ClientBase, instance: string | null): Promise<Probe[]> {
    const { rows } = await client.query<{ repository_id: string; name: string; branch: string; symbol: string; path: string }>(
      `SELECT p.repository_id, r.name, p.branch, p.symbol, p.path FROM (
         SELECT c.repository_id, c.branch, c.symbol, c.path,
                row_number() OVER (PARTITION BY c.repository_id, c.branch ORDER BY length(c.content) DESC, c.id) AS n
           FROM chunks c JOIN repository_branches b ON b.repository_id = c.repository_id AND b.branch = c.branch AND b.indexed_commit IS NOT NULL
          WHERE c.symbol ~ '^[A-Za-z_][A-Za-z0-9_]{3,}$' AND c.kind <> 'text'
       ) p JOIN repositories r ON r.id = p.repository_id
       WHERE p.n <= 2 AND ($1::text IS NULL OR r.instance = $1)
       ORDER BY p.repository_id, p.branch, p.n LIMIT 10`,
      [instance],
    );
    return rows.map((r) => ({ repositoryId: Number(r.repository_id), repository: r.name, branch: r.branch, symbol: r.symbol, path: r.path }));
  }

  async function create(options: { instance?: string; actor: string; onProgress?: OnProgress; now?: Date }): Promise<{ file: string; manifest: Manifest; durationMs: number }> {
    const instance = options.instance ?? null;
    if (instance !== null && !config.instances.includes(instance)) {
      throw badRequest(`unknown instance "${instance}" (configured: ${config.instances.join(', ')})`, 'unknown_instance');
    }
    const progress = options.onProgress ?? (() => undefined);
    const started = performance.now();
    const createdAt = options.now ?? new Date();
    const name = `pkmcp-${instance ?? 'all'}-${stamp(createdAt)}.tar.gz`;
    const work = scratchDir(dir, 'backup');
    for (const sub of ['postgres', 'chroma', 'neo4j']) mkdirSync(path.join(work, sub));
    await progress({ phase: 'waiting for publishes' });
    const barrier = await holdPublishBarrier(stores.postgres);
    const snapshot = await stores.postgres.pool.connect();
    let snapshotOpen = false;
    try {
      await snapshot.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      snapshotOpen = true;
      const tables: ManifestPart[] = await exportPostgres(snapshot, work, instance, (table) => void progress({ phase: 'postgres', step: table }));
      const { rows: repoRows } = await snapshot.query<{ id: string }>(`SELECT id FROM repositories WHERE $1::text IS NULL OR instance = $1`, [instance]);
      const repoIds = new Set(repoRows.map((r) => Number(r.id)));
      const { rows: branchRows } = await snapshot.query<{ repository_id: string; name: string; branch: string; indexed_commit: string | null }>(
        `SELECT b.repository_id, r.name, b.branch, b.indexed_commit FROM repository_branches b JOIN repositories r ON r.id = b.repository_id
          WHERE $1::text IS NULL OR r.instance = $1 ORDER BY r.name, b.branch`,
        [instance],
      );
      const semanticModels = new Set((await snapshot.query<{ model_id: string }>(`SELECT DISTINCT model_id FROM chunk_model_vectors`)).rows.map((r) => r.model_id));
      const collections = await collectionsOfRepositories(stores.chroma, repoIds);
      const vectors = await exportChroma(stores.chroma, snapshot, work, collections, semanticModels, (done, total) => void progress({ phase: 'chroma', done, total }));
      await progress({ phase: 'neo4j' });
      const graph = await exportGraph(stores.neo4j, work, [...repoIds].map((id) => platform.graph.repoKey(id)));
      const probes = await probesOf(snapshot, instance);
      const migrations = await appliedMigrations(snapshot);
      await snapshot.query('COMMIT');
      snapshotOpen = false;
      await barrier.release();

      const body: Omit<Manifest, 'checksum'> = {
        product: PRODUCT,
        format: BACKUP_FORMAT,
        productVersion: PRODUCT_VERSION,
        createdAt: createdAt.toISOString(),
        instance,
        source: { schema: config.databaseSchema, collectionPrefix: config.chromaCollectionPrefix, host: os.hostname() },
        stores: await storeVersions(),
        migrations,
        branches: branchRows.map((b) => ({ repositoryId: Number(b.repository_id), repository: b.name, branch: b.branch, commit: b.indexed_commit })),
        graphSchema: graph.schema,
        probes,
        parts: [...tables, ...vectors, ...graph.parts],
      };
      const manifest: Manifest = { ...body, checksum: manifestChecksum(body) };
      writeFileSync(path.join(work, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
      await progress({ phase: 'packing' });
      const target = path.join(dir, name);
      await packSet(work, manifest.parts.map((p) => p.file), target);
      writeAtomically(sidecarOf(target), `${JSON.stringify({ manifest: { ...manifest, parts: manifest.parts.map(({ columns: _c, ...p }) => p) }, verification: null }, null, 2)}\n`);
      await progress({ phase: 'done' });
      return { file: name, manifest, durationMs: Math.round(performance.now() - started) };
    } finally {
      if (snapshotOpen) await snapshot.query('ROLLBACK').catch(() => undefined);
      snapshot.release();
      await barrier.release();
      rmSync(work, { recursive: true, force: true });
    }
  }

  /**
   * Unpacks a set into a scratch folder and checks it whole before anything is touched: the archive itself,
   * the manifest (its own checksum, product, format, migrations), that the files are exactly the manifest's
   * parts, and every part's size and SHA-256. Refusals are AppErrors (400) with one line saying why.
   */
  async function open(file: string): Promise<{ manifest: Manifest; dir: string; close(): void }> {
    const full = resolveFile(file);
    const work = scratchDir(dir, 'check');
    const close = () => rmSync(work, { recursive: true, force: true });
    try {
      const entries = await unpackSet(full, work);
      const name = path.basename(full);
      const refuse = (why: string, code = 'backup_damaged') => new AppError(400, code, `${name} was refused and nothing was changed: ${why}`);
      if (!entries.includes(MANIFEST_FILE)) throw refuse('it has no manifest.json (not a Personal Knowledge MCP backup)', 'backup_foreign');
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(path.join(work, MANIFEST_FILE), 'utf8'));
      } catch {
        throw refuse('its manifest.json is not valid JSON');
      }
      if ((raw as { product?: unknown })?.product !== PRODUCT) throw refuse(`it is not a ${PRODUCT} backup (product ${JSON.stringify((raw as { product?: unknown })?.product ?? null)})`, 'backup_foreign');
      const parsed = manifestSchema.safeParse(raw);
      if (!parsed.success) throw refuse(`its manifest does not read as one: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
      const manifest = parsed.data;
      if (manifestChecksum(manifest) !== manifest.checksum) throw refuse('its manifest was changed after the set was made (checksum mismatch)');
      if (manifest.format > BACKUP_FORMAT) throw refuse(`it is format ${manifest.format}, newer than this version reads (${BACKUP_FORMAT}): upgrade first`, 'backup_newer');
      const listed = new Set([MANIFEST_FILE, ...manifest.parts.map((p) => p.file)]);
      const found = new Set(filesUnder(work));
      const missing = [...listed].filter((f) => !found.has(f));
      const extra = [...found].filter((f) => !listed.has(f));
      if (missing.length > 0) throw refuse(`parts are missing: ${missing.slice(0, 3).join(', ')}`);
      if (extra.length > 0) throw refuse(`it holds files its manifest does not list: ${extra.slice(0, 3).join(', ')}`);
      for (const part of manifest.parts) {
        const actual = await sha256OfFile(path.join(work, part.file));
        if (actual.bytes !== part.bytes || actual.sha256 !== part.sha256) throw refuse(`part ${part.file} does not match its checksum`);
      }
      const client = await stores.postgres.pool.connect();
      try {
        const here = new Set(await appliedMigrations(client));
        const newer = manifest.migrations.filter((m) => !here.has(m));
        if (newer.length > 0) throw refuse(`it was made by a newer version (migration ${newer[0]} is not applied here): upgrade first`, 'backup_newer');
        await checkPostgresColumns(
          client,
          manifest.parts.filter((p) => p.store === 'postgres'),
        ).catch((err: unknown) => {
          throw err instanceof AppError ? refuse(err.message, err.code) : err;
        });
      } finally {
        client.release();
      }
      return { manifest, dir: work, close };
    } catch (err) {
      close();
      throw err;
    }
  }

  /** Live counts of a scope (every part the manifest lists), and whether the probes answer. */
  async function check(target: Platform, manifest: Manifest, instance: string | null, expected: Record<string, number>): Promise<CheckResult> {
    const client = await target.stores.postgres.pool.connect();
    let found: Record<string, number>;
    let repoIds: Set<number>;
    try {
      found = await countPostgres(client, instance);
      repoIds = new Set((await client.query<{ id: string }>(`SELECT id FROM repositories WHERE $1::text IS NULL OR instance = $1`, [instance])).rows.map((r) => Number(r.id)));
    } finally {
      client.release();
    }
    Object.assign(found, await countChroma(target.stores.chroma, repoIds), await countGraph(target.stores.neo4j, [...repoIds].map((id) => target.graph.repoKey(id))));
    const problems: string[] = [];
    const counts = [...new Set([...Object.keys(expected), ...Object.keys(found).filter((k) => !k.startsWith('postgres:'))])].map((part) => ({
      part,
      expected: expected[part] ?? 0,
      found: found[part] ?? 0,
    }));
    for (const c of counts) {
      // A content-addressed table may hold more than the set brought (it merges); never fewer.
      const merged = c.part === 'postgres:embedding_cache' || c.part === 'postgres:webhook_deliveries' || c.part === 'postgres:audit_log';
      if (merged ? c.found < c.expected : c.found !== c.expected) problems.push(`${c.part}: ${c.found} found, ${c.expected} expected`);
    }
    const search = createSearchService(target, { retrievers: ['text'] });
    const graphQueries = createGraphQueryService(target);
    const probes: CheckResult['probes'] = [];
    for (const probe of manifest.probes.filter((p) => repoIds.has(p.repositoryId))) {
      const hits = await search
        .search({ query: probe.symbol, repositories: [probe.repository], limit: 20 })
        .then((r) => r.hits.some((h) => h.path === probe.path && h.branch === probe.branch))
        .catch(() => false);
      const inGraph = await graphQueries
        .findSymbol(probe.symbol, { repositories: [probe.repository], limit: 50 })
        .then((r) => r.results.some((s) => (s as { path?: string }).path === probe.path))
        .catch(() => false);
      probes.push({ ...probe, search: hits, graph: inGraph });
      if (!hits) problems.push(`search for ${probe.symbol} in ${probe.repository} did not find ${probe.path}`);
      if (!inGraph) problems.push(`the graph has no symbol ${probe.symbol} in ${probe.repository}/${probe.path}`);
    }
    const schema = new Set(await graphSchema(target.stores.neo4j));
    for (const name of manifest.graphSchema) if (!schema.has(name)) problems.push(`graph constraint or index ${name} is missing`);
    return { counts, probes, problems };
  }

  /**
   * Restores a checked set into `target` (this deployment, or a scratch namespace): Chroma and Neo4j first,
   * Postgres last in one transaction — Postgres decides what readers see, so until it commits they see the
   * old state, and a failure there leaves it whole. Re-running a failed restore finishes it.
   */
  async function restoreInto(
    target: Platform,
    opened: { manifest: Manifest; dir: string },
    instance: string | null,
    replace: boolean,
    progress: OnProgress,
  ): Promise<CheckResult> {
    const { manifest } = opened;
    const client = await target.stores.postgres.pool.connect();
    const barrier = await holdPublishBarrier(target.stores.postgres);
    let setRepoIds = new Set<number>();
    try {
      await client.query('BEGIN');
      const existing = await existingRows(client, instance);
      if ((existing.repositories > 0 || existing.tokens > 0) && !replace) {
        throw new AppError(
          409,
          'backup_would_replace',
          `restoring would replace ${existing.repositories} repositories${existing.tokens > 0 ? ` and ${existing.tokens} tokens` : ''} of ${instance === null ? 'every instance' : `instance ${instance}`}: pass --yes to replace them`,
        );
      }
      const nowRepoIds = new Set((await client.query<{ id: string }>(`SELECT id FROM repositories WHERE $1::text IS NULL OR instance = $1`, [instance])).rows.map((r) => Number(r.id)));
      await progress({ phase: 'restoring', step: 'postgres' });
      const written = await importPostgres(client, opened.dir, manifest.parts.filter((p) => p.store === 'postgres'), instance, (table) => void progress({ phase: 'restoring', step: `postgres ${table}` }));
      setRepoIds = written.repositoryIds;
      const setKeys = new Set([...setRepoIds].map((id) => target.graph.repoKey(id)));
      // Vectors: the set's collections of the scope; collections of repositories or branches it does not have go.
      const vectorParts = manifest.parts.filter((p) => p.store === 'chroma' && setRepoIds.has(Number(p.collection?.metadata?.repository_id)));
      const keepNames = new Set(vectorParts.map((p) => `${target.stores.chroma.collectionPrefix}${p.collection!.suffix}`));
      const present = await collectionsOfRepositories(target.stores.chroma, new Set([...nowRepoIds, ...setRepoIds]));
      await dropCollections(target.stores.chroma, present.filter((c) => !keepNames.has(c.name)).map((c) => c.name));
      await importChroma(target.stores.chroma, opened.dir, vectorParts, (done, total) => void progress({ phase: 'restoring', step: 'chroma', done, total }));
      for (const id of new Set([...nowRepoIds, ...setRepoIds])) await target.graph.deleteRepository(id);
      await importGraph(target.stores.neo4j, opened.dir, manifest.source.schema, target.config.databaseSchema, (repoKey) => setKeys.has(repoKey), (step) => void progress({ phase: 'restoring', step }));
      await target.graph.ensureSchema();
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
      await barrier.release();
    }
    await progress({ phase: 'verifying' });
    const expected: Record<string, number> = {};
    const whole = instance === manifest.instance;
    for (const part of manifest.parts) {
      if (part.store === 'chroma' && !setRepoIds.has(Number(part.collection?.metadata?.repository_id))) continue;
      if (!whole && part.store !== 'chroma') continue;
      expected[part.name] = part.count;
    }
    return check(target, manifest, instance, expected);
  }

  async function restore(file: string, options: { instance?: string; replace: boolean; actor: string; onProgress?: OnProgress }): Promise<CheckResult & { manifest: Manifest; durationMs: number }> {
    const started = performance.now();
    const progress = options.onProgress ?? (() => undefined);
    await progress({ phase: 'checking' });
    const opened = await open(file);
    try {
      const instance = options.instance ?? opened.manifest.instance;
      if (instance !== null && !config.instances.includes(instance)) {
        throw badRequest(`unknown instance "${instance}" (configured: ${config.instances.join(', ')})`, 'unknown_instance');
      }
      if (opened.manifest.instance !== null && instance !== opened.manifest.instance) {
        throw badRequest(`the set holds instance ${opened.manifest.instance} only, not ${instance}`, 'backup_wrong_instance');
      }
      const result = await restoreInto(platform, opened, instance, options.replace, progress);
      await progress({ phase: 'done' });
      return { ...result, manifest: opened.manifest, durationMs: Math.round(performance.now() - started) };
    } finally {
      opened.close();
    }
  }

  /**
   * Restores a set into a scratch namespace (a Postgres schema, a Chroma prefix, a graph namespace of its
   * own), compares every part's count with the manifest and runs its probes, then drops the scratch copy.
   * The outcome is kept beside the set (its sidecar), so `backup list` shows which sets are known good.
   */
  async function verify(file: string, options: { actor: string; onProgress?: OnProgress }): Promise<CheckResult & { file: string; ok: boolean; durationMs: number }> {
    const started = performance.now();
    const progress = options.onProgress ?? (() => undefined);
    await progress({ phase: 'checking' });
    const full = resolveFile(file);
    const opened = await open(file);
    const id = randomBytes(5).toString('hex');
    const scratchConfig: Config = { ...config, databaseSchema: `pk_verify_${id}`, chromaCollectionPrefix: `pkverify-${id}`, semantic: null };
    const scratch = createPlatform(scratchConfig, logger, { embeddings: platform.embeddings });
    try {
      await migrateDatabase({ databaseUrl: scratchConfig.databaseUrl, schema: scratchConfig.databaseSchema }, logger);
      const result = await restoreInto(scratch, opened, opened.manifest.instance, true, progress);
      const ok = result.problems.length === 0;
      const sidecar = sidecarOf(full);
      const previous = existsSync(sidecar) ? (JSON.parse(readFileSync(sidecar, 'utf8')) as Record<string, unknown>) : { manifest: opened.manifest };
      writeAtomically(sidecar, `${JSON.stringify({ ...previous, verification: { at: new Date().toISOString(), ok, problems: result.problems } }, null, 2)}\n`);
      await progress({ phase: 'done' });
      return { ...result, file: path.basename(full), ok, durationMs: Math.round(performance.now() - started) };
    } finally {
      opened.close();
      const ids = await scratch.stores.postgres.pool
        .query<{ id: string }>(`SELECT id FROM ${scratchConfig.databaseSchema}.repositories`)
        .then((r) => r.rows.map((x) => Number(x.id)))
        .catch(() => [] as number[]);
      for (const repoId of ids) await scratch.graph.deleteRepository(repoId).catch(() => undefined);
      const collections = await collectionsOfRepositories(scratch.stores.chroma, new Set(ids)).catch(() => []);
      await dropCollections(scratch.stores.chroma, collections.map((c) => c.name)).catch(() => undefined);
      await scratch.stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${scratchConfig.databaseSchema} CASCADE`).catch(() => undefined);
      await scratch.close();
    }
  }

  function list(): BackupListing[] {
    if (!existsSync(dir)) return [];
    const out: BackupListing[] = [];
    for (const name of readdirSync(dir).filter((f) => FILE_NAME.test(f) && !f.startsWith('.tmp-'))) {
      const full = path.join(dir, name);
      const sidecar = sidecarOf(full);
      let info: { manifest?: Manifest; verification?: BackupListing['verification'] } = {};
      try {
        info = JSON.parse(readFileSync(sidecar, 'utf8')) as typeof info;
      } catch {
        // A set copied in without its sidecar: listed with what its name says; `backup verify` fills it in.
      }
      const fromName = /(\d{8}T\d{6}Z)\.tar\.gz$/.exec(name)?.[1];
      const createdAt = info.manifest?.createdAt ?? (fromName ? `${fromName.slice(0, 4)}-${fromName.slice(4, 6)}-${fromName.slice(6, 8)}T${fromName.slice(9, 11)}:${fromName.slice(11, 13)}:${fromName.slice(13, 15)}Z` : statSync(full).mtime.toISOString());
      out.push({
        file: name,
        bytes: statSync(full).size,
        createdAt,
        instance: info.manifest?.instance ?? null,
        counts: summaryOf({ parts: info.manifest?.parts ?? [] }),
        verification: info.verification ?? null,
      });
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Removes the sets the retention policy does not keep (with their sidecars). */
  function prune(options: { now?: Date } = {}): { kept: string[]; removed: string[] } {
    const sets = list();
    const keep = setsToKeep(
      sets.map((s) => ({ file: s.file, createdAt: new Date(s.createdAt), verified: s.verification?.ok === true })),
      { keepDaily: config.backup.keepDaily, keepWeekly: config.backup.keepWeekly, now: options.now ?? new Date(), timeZone: config.schedules.timeZone },
    );
    const removed: string[] = [];
    for (const s of sets) {
      if (keep.has(s.file)) continue;
      const full = path.join(dir, s.file);
      rmSync(full, { force: true });
      rmSync(sidecarOf(full), { force: true });
      removed.push(s.file);
    }
    // Scratch folders and half-written files of a process that died mid-set: gone after a day.
    const stale = (options.now ?? new Date()).getTime() - 24 * 3600_000;
    for (const name of existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('.tmp-')) : []) {
      const full = path.join(dir, name);
      if (statSync(full).mtimeMs < stale) rmSync(full, { recursive: true, force: true });
    }
    return { kept: sets.filter((s) => keep.has(s.file)).map((s) => s.file), removed };
  }

  return { dir, create, open, restore, verify, list, prune, resolveFile };
}

export type BackupService = ReturnType<typeof createBackupService>;
