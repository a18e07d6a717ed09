import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tar from 'tar';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { holdPublishBarrier } from '../../shared/backup/barrier.ts';
import { createBackupService, type BackupService } from '../../shared/backup/backup.service.ts';
import { createGraphQueryService } from '../../shared/graph/graph-query.service.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';
import { silentLogger } from '../helpers/context.ts';
import { sleep } from '../../scripts/stack/process.ts';

/**
 * Backup → wipe → restore on indexed repositories of two instances, against the real stores: every store
 * comes back with the same counts and the same answers, byte for byte; damaged, truncated and foreign sets
 * are refused before anything changes; a verification restores into a scratch namespace and drops it; and
 * a publish waits while a backup takes its set.
 */
const FILES: Record<string, string> = {
  'src/ids.ts': [
    "import { clamp } from './math';",
    'export function requestIdFactory(prefix: string) {',
    '  let next = 0;',
    '  return () => `${prefix}-${clamp(next++, 0, 1e9)}`;',
    '}',
    '',
  ].join('\n'),
  'src/math.ts': ['export function clamp(value: number, low: number, high: number) {', '  return Math.min(high, Math.max(low, value));', '}', ''].join('\n'),
  'src/redact.ts': [
    "import { requestIdFactory } from './ids';",
    'const HIDDEN = ["password", "token", "secret"];',
    'export function censorRecord(record: Record<string, unknown>) {',
    '  const id = requestIdFactory("log")();',
    '  const out: Record<string, unknown> = { ...record, id };',
    '  for (const key of Object.keys(out)) if (HIDDEN.includes(key)) out[key] = "[hidden]";',
    '  return out;',
    '}',
    '',
  ].join('\n'),
  'README.md': '# Fixture\n\nIds for requests and redaction of secrets in logs.\n',
};

describe('backups and restores of every store', () => {
  let t: TestPlatform;
  let backups: BackupService;
  let one: GitFixture;
  let two: GitFixture;
  let backupDir: string;

  /** Everything a reader can see, as one string: rows per table, vectors, graph, search and graph answers. */
  async function answers(): Promise<string> {
    const pool = t.platform.stores.postgres.pool;
    const tables: Record<string, unknown> = {};
    for (const table of ['repositories', 'repository_branches', 'files', 'chunks', 'chunk_model_vectors', 'embedding_cache', 'api_tokens']) {
      const { rows } = await pool.query(`SELECT * FROM ${table} ORDER BY 1, 2`);
      tables[table] = rows;
    }
    const repos = (await pool.query<{ id: string; name: string }>('SELECT id, name FROM repositories ORDER BY id')).rows;
    const vectors: Record<string, unknown> = {};
    for (const r of repos) {
      const ref = { repositoryId: Number(r.id), branch: 'main' };
      vectors[r.name] = (await t.platform.vectors.ids({ repositoryBranches: [ref] })).sort();
    }
    const graph = await t.platform.graph.read(
      `MATCH (n) WHERE n.repoId IN $keys OR n.id IN $keys
       OPTIONAL MATCH (n)-[r]->(m) RETURN labels(n) AS l, properties(n) AS p, type(r) AS t, properties(r) AS rp, coalesce(m.key, m.id) AS m
       ORDER BY coalesce(n.key, n.id), t, m`,
      { keys: repos.map((r) => t.platform.graph.repoKey(Number(r.id))) },
    );
    const search = [];
    for (const query of ['censorRecord', 'clamp a value between low and high', 'requestIdFactory']) {
      search.push((await t.search.search({ query, limit: 5 })).hits.map((h) => ({ r: h.repository, p: h.path, s: h.symbol, l: h.startLine })));
    }
    const graphQueries = createGraphQueryService(t.platform);
    const symbols = await graphQueries.findSymbol('clamp', {});
    const deps = await graphQueries.dependents('src/math.ts', { repository: 'one' }).catch((err: Error) => err.message);
    return JSON.stringify({ tables, vectors, graph, search, symbols: symbols.results, deps });
  }

  beforeAll(async () => {
    backupDir = mkdtempSync(path.join(tmpdir(), 'pk-backups-'));
    one = createGitFixture();
    one.write(FILES);
    one.commit('one');
    two = createGitFixture();
    two.write({ 'lib/queue.py': 'def drain_queue(items):\n    """Empty a work queue."""\n    while items:\n        items.pop()\n' });
    two.commit('two');
    t = await openTestPlatform({ instances: ['private', 'work'], backup: { dir: backupDir, keepDaily: 7, keepWeekly: 4 } });
    await t.startWorkers(['index', 'embed', 'graph']);
    for (const [fixture, name, instance] of [
      [one, 'one', 'private'],
      [two, 'two', 'work'],
    ] as const) {
      const { jobId } = await t.repos.addAndIndex({ source: fixture.dir, name, instance });
      await waitForJob(t.platform.queues.queues.index, jobId);
    }
    await createTokenService(t.platform.stores.postgres, { instances: t.config.instances }).create({ name: 'ci', scopes: ['read'], instances: ['*'], actor: 'test' });
    backups = createBackupService(t.platform, silentLogger);
  }, 120_000);

  afterAll(async () => {
    await t?.cleanup();
    one?.cleanup();
    two?.cleanup();
    rmSync(backupDir, { recursive: true, force: true });
  });

  let fullSet = '';
  let before = '';

  it('takes a set of every store with counts and checksums in its manifest', async () => {
    before = await answers();
    const made = await backups.create({ actor: 'test' });
    fullSet = made.file;
    expect(made.file).toMatch(/^pkmcp-all-\d{8}T\d{6}Z\.tar\.gz$/);
    const counts = Object.fromEntries(made.manifest.parts.map((p) => [p.name, p.count]));
    const pool = t.platform.stores.postgres.pool;
    const n = async (sql: string) => Number((await pool.query<{ n: string }>(sql)).rows[0]!.n);
    expect(counts['postgres:repositories']).toBe(2);
    expect(counts['postgres:chunks']).toBe(await n('SELECT count(*) AS n FROM chunks'));
    expect(counts['postgres:api_tokens']).toBe(1);
    expect(counts['neo4j:nodes']).toBeGreaterThan(8);
    expect(counts['neo4j:relationships']).toBeGreaterThan(6);
    const vectors = made.manifest.parts.filter((p) => p.store === 'chroma').reduce((s, p) => s + p.count, 0);
    expect(vectors).toBe(await n('SELECT count(*) AS n FROM chunks'));
    expect(made.manifest.branches.map((b) => b.repository).sort()).toEqual(['one', 'two']);
    expect(made.manifest.branches.find((b) => b.repository === 'one')!.commit).toBe(one.head());
    expect(made.manifest.probes.length).toBeGreaterThan(0);
    // Nothing but whole sets (and their sidecars) in the folder.
    const listing = backups.list();
    expect(listing.map((l) => l.file)).toEqual([made.file]);
    expect(listing[0]!.counts.vectors).toBe(vectors);
    expect(listing[0]!.verification).toBeNull();
  });

  it('restores exactly what was there after every store was wiped', async () => {
    await t.repos.remove('one');
    await t.repos.remove('two');
    await t.platform.stores.postgres.pool.query('DELETE FROM api_tokens');
    expect(await answers()).not.toBe(before);
    const restored = await backups.restore(fullSet, { replace: false, actor: 'test' });
    expect(restored.problems).toEqual([]);
    expect(restored.probes.every((p) => p.search && p.graph)).toBe(true);
    expect(await answers()).toBe(before);
  });

  it('refuses to replace what is there without --yes, and replaces it with', async () => {
    await expect(backups.restore(fullSet, { replace: false, actor: 'test' })).rejects.toThrow(/would replace 2 repositories and 1 tokens of every instance: pass --yes/);
    const restored = await backups.restore(fullSet, { replace: true, actor: 'test' });
    expect(restored.problems).toEqual([]);
    expect(await answers()).toBe(before);
  });

  const damaged = (label: string, change: (file: string) => void) => {
    const file = path.join(backupDir, `pkmcp-all-2020010${label}T000000Z.tar.gz`);
    writeFileSync(file, readFileSync(path.join(backupDir, fullSet)));
    change(file);
    return path.basename(file);
  };

  it('refuses a flipped byte, a truncated file and a changed or foreign manifest before touching anything', async () => {
    const flipped = damaged('1', (f) => {
      const bytes = readFileSync(f);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      writeFileSync(f, bytes);
    });
    const truncated = damaged('2', (f) => truncateSync(f, Math.floor(statSync(f).size * 0.7)));
    // A manifest edited by hand (a count changed), repacked: its own checksum no longer matches.
    const edited = damaged('3', (f) => {
      const work = mkdtempSync(path.join(tmpdir(), 'pk-edit-'));
      execFileSync('tar', ['-xzf', f, '-C', work]);
      const manifest = JSON.parse(readFileSync(path.join(work, 'manifest.json'), 'utf8'));
      manifest.parts[0].count += 1;
      writeFileSync(path.join(work, 'manifest.json'), JSON.stringify(manifest));
      execFileSync('tar', ['-czf', f, '-C', work, '.']);
      rmSync(work, { recursive: true });
    });
    const foreign = damaged('4', (f) => {
      const work = mkdtempSync(path.join(tmpdir(), 'pk-foreign-'));
      writeFileSync(path.join(work, 'manifest.json'), JSON.stringify({ product: 'something-else', parts: [] }));
      tar.create({ gzip: true, cwd: work, file: f, sync: true }, ['manifest.json']);
      rmSync(work, { recursive: true });
    });
    const partChanged = damaged('5', (f) => {
      const work = mkdtempSync(path.join(tmpdir(), 'pk-part-'));
      execFileSync('tar', ['-xzf', f, '-C', work]);
      writeFileSync(path.join(work, 'postgres/chunks.copy'), 'tampered\n', { flag: 'a' });
      execFileSync('tar', ['-czf', f, '-C', work, '.']);
      rmSync(work, { recursive: true });
    });
    await t.repos.remove('two');
    const state = await answers();
    await expect(backups.restore(flipped, { replace: true, actor: 'test' })).rejects.toThrow(/damaged or truncated and was not restored/);
    await expect(backups.restore(truncated, { replace: true, actor: 'test' })).rejects.toThrow(/damaged or truncated and was not restored/);
    await expect(backups.restore(edited, { replace: true, actor: 'test' })).rejects.toThrow(/refused and nothing was changed: its manifest was changed after the set was made/);
    await expect(backups.restore(foreign, { replace: true, actor: 'test' })).rejects.toThrow(/refused and nothing was changed: it is not a personal-knowledge-mcp backup/);
    await expect(backups.restore(partChanged, { replace: true, actor: 'test' })).rejects.toThrow(/part postgres\/chunks\.copy does not match its checksum/);
    await expect(backups.restore('../../etc/passwd.tar.gz', { replace: true, actor: 'test' })).rejects.toThrow(/no backup named/);
    expect(await answers()).toBe(state);
    // No scratch folders left behind by the refusals.
    expect(execFileSync('ls', ['-A', backupDir], { encoding: 'utf8' })).not.toMatch(/\.tmp-/);
    for (const f of [flipped, truncated, edited, foreign, partChanged]) rmSync(path.join(backupDir, f));
    await backups.restore(fullSet, { replace: true, actor: 'test' });
    expect(await answers()).toBe(before);
  });

  it('restores one instance from its own set, leaving the others as they are', async () => {
    const work = await backups.create({ instance: 'work', actor: 'test', now: new Date(Date.now() + 1000) });
    expect(work.manifest.instance).toBe('work');
    expect(work.manifest.parts.find((p) => p.name === 'postgres:repositories')!.count).toBe(1);
    expect(work.manifest.parts.some((p) => p.name === 'postgres:api_tokens')).toBe(false);
    await t.repos.remove('two');
    const restored = await backups.restore(work.file, { replace: false, actor: 'test' });
    expect(restored.problems).toEqual([]);
    expect(await answers()).toBe(before);
    await expect(backups.restore(work.file, { instance: 'private', replace: true, actor: 'test' })).rejects.toThrow(/holds instance work only/);
    rmSync(path.join(backupDir, work.file));
    rmSync(path.join(backupDir, work.file.replace('.tar.gz', '.json')));
  });

  it('verifies a set in a scratch namespace, records it, and leaves nothing of the scratch copy', async () => {
    const result = await backups.verify(fullSet, { actor: 'test' });
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.counts.find((c) => c.part === 'postgres:chunks')!.found).toBeGreaterThan(0);
    expect(backups.list()[0]!.verification).toMatchObject({ ok: true, problems: [] });
    const schemas = await t.platform.stores.postgres.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pk_verify_%'`);
    expect(schemas.rows).toEqual([]);
    const collections = await t.platform.stores.chroma.client.listCollections({ limit: 1000 });
    expect(collections.filter((c) => c.name.startsWith('pkverify-'))).toEqual([]);
    expect(await answers()).toBe(before);
  }, 60_000);

  it('holds publishes back while a set is taken, and lets them through after', async () => {
    const barrier = await holdPublishBarrier(t.platform.stores.postgres);
    let released = false;
    try {
      one.write({ 'src/extra.ts': 'export function addedLater() { return 1; }\n' });
      const head = one.commit('later');
      const { jobId } = await t.repos.requestIndex('one');
      const finished = waitForJob(t.platform.queues.queues.index, jobId);
      await sleep(2500);
      expect((await t.platform.repositories.getBranch((await t.platform.repositories.findByName('one'))!.id, 'main'))!.indexedCommit).not.toBe(head);
      await barrier.release();
      released = true;
      await finished;
      expect((await t.platform.repositories.getBranch((await t.platform.repositories.findByName('one'))!.id, 'main'))!.indexedCommit).toBe(head);
    } finally {
      if (!released) await barrier.release();
    }
  }, 60_000);

  it('prunes to the retention policy, never the newest verified set', async () => {
    const sets = backups.list();
    expect(sets).toHaveLength(1);
    // What a process that died mid-set left behind: removed once it is a day old, never while it may be in use.
    const leftover = path.join(backupDir, '.tmp-backup-dead');
    mkdirSync(path.join(leftover, 'postgres'), { recursive: true });
    backups.prune({ now: new Date(Date.now() + 3600_000) });
    expect(existsSync(leftover)).toBe(true);
    // Far in the future, every set is past the daily and weekly windows: only the newest verified one stays.
    const result = backups.prune({ now: new Date(Date.now() + 400 * 86_400_000) });
    expect(result).toEqual({ kept: [fullSet], removed: [] });
    expect(existsSync(path.join(backupDir, fullSet))).toBe(true);
    expect(existsSync(leftover)).toBe(false);
  });
});
