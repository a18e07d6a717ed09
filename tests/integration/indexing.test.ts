import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndexResult } from '../../workers/jobs/index-repository.job.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';
import { fullTextQuery } from '../../shared/search/hybrid-search.ts';
import { createChunker } from '../../shared/indexing/chunker.ts';
import { prepareRun } from '../../shared/indexing/index-run.ts';
import { silentLogger } from '../helpers/context.ts';

const TS_SERVICE = `import { db } from './db';

export class InvoiceService {
  async totalFor(customerId: string): Promise<number> {
    const rows = await db.query('select amount from invoices where customer = $1', [customerId]);
    return rows.reduce((sum, r) => sum + r.amount, 0);
  }

  async markPaid(invoiceId: string): Promise<void> {
    await db.query('update invoices set paid = true where id = $1', [invoiceId]);
  }
}
`;
const PY_PARSER = `import json


def parse_settings(path):
    """Reads the settings file and returns a dict."""
    with open(path) as handle:
        return json.load(handle)


def merge_settings(base, override):
    result = dict(base)
    result.update(override)
    return result
`;
const GO_SERVER = `package server

import "net/http"

func HealthHandler(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("ok"))
}
`;

describe('indexing pipeline against the real stores', () => {
  let t: TestPlatform;
  let repo: GitFixture;

  async function index(name: string, options: { full?: boolean; branch?: string } = {}): Promise<IndexResult> {
    const { jobId } = await t.repos.requestIndex(name, options);
    return (await waitForJob(t.platform.queues.queues.index, jobId)) as IndexResult;
  }

  /** Every live chunk has exactly one vector and every vector of the repository is a live chunk. */
  async function expectConsistent(repositoryId: number): Promise<number> {
    const live = (await t.platform.chunks.liveChunkIds(repositoryId)).sort();
    const vectors = (await t.platform.vectors.ids({ repositoryBranches: [{ repositoryId, branch: 'main' }] })).sort();
    expect(vectors).toEqual(live);
    const staging = await t.platform.stores.postgres.pool.query('SELECT count(*)::int AS n FROM chunk_staging');
    expect(staging.rows[0].n).toBe(0);
    return live.length;
  }

  beforeAll(async () => {
    t = await openTestPlatform();
    await t.startWorkers();
    repo = createGitFixture();
    repo.write({
      'src/invoice.service.ts': TS_SERVICE,
      'tools/settings.py': PY_PARSER,
      'server/health.go': GO_SERVER,
      'README.md': '# Billing\n\nInvoices and payments.\n\n## Setup\n\nRun the server.\n',
      'package-lock.json': '{"lockfileVersion": 3}',
      'node_modules/dep/index.js': 'module.exports = 1;',
      'assets/logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0, 1, 2, 3]),
    });
    repo.commit('initial');
  });

  afterAll(async () => {
    await t?.cleanup();
    repo?.cleanup();
  });

  it('registers a local repository with its default branch and indexes it', async () => {
    const added = await t.repos.add({ source: repo.dir, name: 'billing' });
    expect(added.defaultBranch).toBe('main');
    const result = await index('billing');
    expect(result.upToDate).toBe(false);
    expect(result.commit).toBe(repo.head());

    const [listed] = await t.platform.repositories.list();
    const branch = listed!.branches[0]!;
    expect(branch).toMatchObject({ branch: 'main', status: 'ready', indexedCommit: repo.head(), fileCount: 4 });
    const files = await t.platform.chunks.liveFiles(added.id, 'main');
    expect([...files.keys()].sort()).toEqual(['README.md', 'server/health.go', 'src/invoice.service.ts', 'tools/settings.py']);
    expect(await expectConsistent(added.id)).toBe(branch.chunkCount);
  });

  it('finds code by meaning and by identifier, naming the commit', async () => {
    const { hits } = await t.search.search({ query: 'mark invoice as paid', limit: 5 });
    expect(hits[0]).toMatchObject({ repository: 'billing', path: 'src/invoice.service.ts', commit: repo.head() });
    // A class this small is one chunk; the chunker's own tests cover splitting large classes into methods.
    expect(hits[0]).toMatchObject({ symbol: 'InvoiceService', kind: 'class', startLine: 1, endLine: 12 });

    const byName = await t.search.search({ query: 'parse_settings' });
    // Both functions are small, so they share a chunk named by both (the import line joins them).
    expect(byName.hits[0]).toMatchObject({ path: 'tools/settings.py', symbol: 'parse_settings, merge_settings', language: 'python', startLine: 1, endLine: 13 });
    expect(byName.hits[0]!.matchedBy).toContain('text');
    expect(byName.hits[0]!.snippet).toContain('def parse_settings(path):');
  });

  it('full text matches the parts of identifiers, also inside member chains', async () => {
    // `w.WriteHeader(http.StatusOK)` and `http.ResponseWriter`: Postgres' parser alone keeps each
    // chain as one lexeme, so these words would match nothing without the sub-token index.
    const [repository] = await t.platform.repositories.list();
    const scope = { repositoryBranches: [{ repositoryId: repository!.id, branch: 'main' }] };
    for (const query of ['status header', 'response writer', 'WriteHeader', 'StatusOK']) {
      const ids = await t.platform.chunks.fullText(fullTextQuery(query), scope, 10);
      const paths = (await t.platform.chunks.liveChunks(ids)).map((c) => c.path);
      expect(paths, query).toContain('server/health.go');
    }
    // Chunks with every word first; when too few have them all, chunks with any word follow.
    const mixed = await t.platform.chunks.liveChunks(await t.platform.chunks.fullText(fullTextQuery('invoices settings'), scope, 10, { enough: 5 }));
    expect(new Set(mixed.map((c) => c.path))).toEqual(new Set(['src/invoice.service.ts', 'tools/settings.py', 'README.md']));
    const ranked = await t.platform.chunks.fullText(fullTextQuery('invoices paid'), scope, 10, { enough: 5 });
    const rankedPaths = (await t.platform.chunks.liveChunks(ranked)).map((c) => [c.id, c.path] as const);
    expect(new Map(rankedPaths).get(ranked[0]!)).toBe('src/invoice.service.ts');
    // Exact lexemes, not prefixes: `stat` is no word of the code, though `status` and `StatusOK` are.
    expect(await t.platform.chunks.fullText(fullTextQuery('stat'), scope, 10)).toEqual([]);
  });

  it('filters by repository, language and path glob', async () => {
    const go = await t.search.search({ query: 'health handler', language: 'go' });
    expect(go.hits.length).toBeGreaterThan(0);
    expect(go.hits.every((h) => h.language === 'go')).toBe(true);
    const glob = await t.search.search({ query: 'settings', pathGlob: 'tools/**' });
    expect(glob.hits.every((h) => h.path.startsWith('tools/'))).toBe(true);
    await expect(t.search.search({ query: 'x', repositories: ['nope'] })).rejects.toThrow('no repository named "nope"');
    await expect(t.search.search({ query: '   ' })).rejects.toThrow('query must not be empty');
  });

  it('reindexes nothing and embeds nothing when nothing changed', async () => {
    const before = t.platform.embeddings.stats().inputs;
    const result = await index('billing');
    expect(result.upToDate).toBe(true);
    expect(t.platform.embeddings.stats().inputs).toBe(before);
  });

  it('picks up an edit, an addition, a rename and a deletion incrementally', async () => {
    const billing = (await t.platform.repositories.findByName('billing'))!;
    repo.write({
      'src/invoice.service.ts': TS_SERVICE.replace('markPaid', 'markSettled'),
      'src/refunds.ts': 'export function issueRefund(orderId: string) {\n  return { orderId, refunded: true };\n}\n',
    });
    repo.git('mv', 'server/health.go', 'server/status.go');
    repo.remove('tools/settings.py');
    const head = repo.commit('edit, add, rename, delete');

    const result = await index('billing');
    expect(result).toMatchObject({ commit: head, upToDate: false });
    expect(result.filesChanged).toBe(3); // edited, added, renamed-to

    const files = [...(await t.platform.chunks.liveFiles(billing.id, 'main')).keys()].sort();
    expect(files).toEqual(['README.md', 'server/status.go', 'src/invoice.service.ts', 'src/refunds.ts']);
    await expectConsistent(billing.id);

    const settled = await t.search.search({ query: 'markSettled' });
    expect(settled.hits[0]).toMatchObject({ path: 'src/invoice.service.ts', symbol: 'InvoiceService', commit: head });
    expect(settled.hits[0]!.snippet).toContain('markSettled');
    const gone = await t.search.search({ query: 'parse_settings merge_settings', limit: 50 });
    expect(gone.hits.filter((h) => h.path === 'tools/settings.py')).toEqual([]);
    const paid = await t.search.search({ query: 'markPaid', limit: 50 });
    expect(paid.hits.filter((h) => h.snippet.includes('markPaid'))).toEqual([]);
  });

  it('reconciles by content after a force push with the old commit gone, without re-embedding unchanged text', async () => {
    const billing = (await t.platform.repositories.findByName('billing'))!;
    repo.git('reset', '--quiet', '--hard', 'HEAD~1');
    repo.write({ 'src/rewritten.ts': 'export const rewritten = () => "history was rewritten";\n' });
    const head = repo.commit('rewrite history');
    // The mirror still knows the old commit; a fresh mirror (as on another worker) does not.
    rmSync(`${t.config.workspaceDir}/repo-${billing.id}`, { recursive: true, force: true });
    repo.git('reflog', 'expire', '--expire=now', '--all');
    repo.git('gc', '--quiet', '--prune=now');

    const before = t.platform.embeddings.stats().inputs;
    const result = await index('billing');
    expect(result.commit).toBe(head);
    const files = [...(await t.platform.chunks.liveFiles(billing.id, 'main')).keys()].sort();
    expect(files).toEqual(['README.md', 'server/health.go', 'src/invoice.service.ts', 'src/rewritten.ts', 'tools/settings.py']);
    await expectConsistent(billing.id);
    // Only the one new file's text was never seen before; everything else came from the embedding cache.
    expect(t.platform.embeddings.stats().inputs - before).toBe(1);
  });

  it('a full reindex rebuilds the same index from the cache', async () => {
    const billing = (await t.platform.repositories.findByName('billing'))!;
    const ids = (await t.platform.chunks.liveChunkIds(billing.id)).sort();
    const before = t.platform.embeddings.stats().inputs;
    await index('billing', { full: true });
    expect((await t.platform.chunks.liveChunkIds(billing.id)).sort()).toEqual(ids);
    expect(t.platform.embeddings.stats().inputs).toBe(before);
  });

  describe('bad input fails the job with a clear reason and keeps the last good index', () => {
    it('a branch that does not exist', async () => {
      const billing = (await t.platform.repositories.findByName('billing'))!;
      const before = await t.platform.repositories.getBranch(billing.id, 'main');
      await expect(index('billing', { branch: 'no-such-branch' })).rejects.toThrow(/branch "no-such-branch" does not exist/);
      expect(await t.platform.repositories.getBranch(billing.id, 'main')).toMatchObject({ indexedCommit: before!.indexedCommit, status: 'ready' });
      expect(await t.platform.repositories.getBranch(billing.id, 'no-such-branch')).toMatchObject({ status: 'failed', indexedCommit: null });
    });

    it('a source that is not a repository', async () => {
      await t.platform.repositories.create({ name: 'ghost', sourceUrl: 'file:///nonexistent/ghost.git', defaultBranch: 'main' });
      await expect(index('ghost')).rejects.toThrow(/repository file:\/\/\/nonexistent\/ghost.git was not found/);
    });

    it('an empty repository', async () => {
      const empty = createGitFixture();
      try {
        await expect(t.repos.add({ source: empty.dir, name: 'empty' })).rejects.toThrow(/is empty/);
        await t.repos.add({ source: empty.dir, name: 'empty', branch: 'main' });
        await expect(index('empty')).rejects.toThrow(/is empty \(no commits yet\)/);
      } finally {
        empty.cleanup();
      }
    });

    it('a commit with only binaries keeps the previous index searchable', async () => {
      const bin = createGitFixture();
      try {
        bin.write({ 'lib/util.js': 'export function clampValue(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }\n' });
        const good = bin.commit('code');
        await t.repos.add({ source: bin.dir, name: 'binaries' });
        await index('binaries');
        bin.remove('lib/util.js');
        bin.write({ 'img/a.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]), 'data/b.bin': Buffer.alloc(64, 0) });
        bin.commit('only binaries');
        await expect(index('binaries')).rejects.toThrow(/nothing to index/);
        const { hits } = await t.search.search({ query: 'clampValue', repositories: ['binaries'] });
        expect(hits[0]).toMatchObject({ path: 'lib/util.js', commit: good });
      } finally {
        bin.cleanup();
      }
    });

    it('a registration whose first run cannot be enqueued is taken back', async () => {
      const broken = await openTestPlatform();
      try {
        broken.platform.stores.redis.client.disconnect(); // Redis is gone for this platform
        await expect(broken.repos.addAndIndex({ source: repo.dir, name: 'unqueued' })).rejects.toThrow();
        expect(await broken.platform.repositories.findByName('unqueued')).toBeNull();
      } finally {
        await broken.platform.stores.redis.client.connect().catch(() => undefined);
        await broken.cleanup();
      }
    });

    it('rejects bad registrations before anything is stored', async () => {
      await expect(t.repos.add({ source: '/definitely/not/here' })).rejects.toThrow(/neither a Git URL/);
      await expect(t.repos.add({ source: 'https://user:secret@example.invalid/r.git' })).rejects.toThrow(/GIT_TOKEN/);
      await expect(t.repos.add({ source: repo.dir, name: 'billing' })).rejects.toThrow(/already exists/);
      await expect(t.repos.add({ source: repo.dir, name: 'bad name!' })).rejects.toThrow(/must be 1-100 letters/);
      await expect(t.repos.add({ source: repo.dir, name: 'globs', include: ['src/[abc'] })).rejects.toMatchObject({ statusCode: 400, code: 'invalid_glob' });
      expect(await t.platform.repositories.findByName('globs')).toBeNull();
    });
  });

  it('a retried prepare of the same commit keeps what the earlier attempt staged while it stages again', async () => {
    // Batch jobs of a killed attempt run again beside the retry: had the retry cleared the staging first,
    // a batch job reading its rows in between would find none, embed nothing and finish.
    const many = createGitFixture();
    many.write(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`src/m${i}.ts`, `export function retried${i}(x: number) {\n  return x + ${i};\n}\n`])));
    many.commit('twelve');
    try {
      const repository = await t.repos.add({ source: many.dir, name: 'retried' });
      const chunker = await createChunker({ maxChunkChars: 1500 });
      const deps = {
        chunks: t.platform.chunks,
        chunker,
        logger: silentLogger,
        workspaceDir: t.config.workspaceDir,
        gitToken: undefined,
        maxFileBytes: 1024 * 1024,
        batchChunks: 3,
      };
      const run = { runId: `retry-${t.id}`, repository, branch: 'main', indexedCommit: null, full: false };
      const first = await prepareRun(deps, run, async () => undefined);
      expect(first.batches).toBe(4);
      const lastBatch = async () => (await t.platform.chunks.stagedBatch(run.runId, first.batches - 1)).map((c) => c.id);
      const staged = await lastBatch();
      expect(staged).toHaveLength(3);

      // The retry: its first batch is ready before it reaches the last, whose rows must still be there.
      const seenAtFirstBatch: string[][] = [];
      const again = await prepareRun(deps, { ...run, pinnedCommit: first.commit }, async () => undefined, {
        onBatchReady: async (kind, batch) => {
          if (kind === 'embed' && batch === 0) seenAtFirstBatch.push(await lastBatch());
        },
      });
      expect(again).toMatchObject({ commit: first.commit, batches: 4 });
      expect(seenAtFirstBatch).toEqual([staged]);
      expect(await lastBatch()).toEqual(staged);
      chunker.close();
      await t.platform.chunks.clearStaging(run.runId);
      await t.repos.remove('retried');
    } finally {
      many.cleanup();
    }
  });

  it("indexes only what the repository's include globs take and its exclude globs leave", async () => {
    const globbed = createGitFixture();
    try {
      globbed.write({
        'src/ledger.ts': 'export function postEntry(amount: number) {\n  return amount;\n}\n',
        'src/ledger.test.ts': 'import { postEntry } from "./ledger";\npostEntry(1);\n',
        'src/deep/fees.py': 'def fee_for(amount):\n    return amount / 100\n',
        'docs/guide.md': '# Guide\n\nHow to post entries.\n',
        'scripts/release.sh': 'echo release\n',
      });
      globbed.commit('globbed');
      const added = await t.repos.add({ source: globbed.dir, name: 'globbed', include: ['src/**', 'docs/*.md'], exclude: ['**/*.test.ts', 'docs/**'] });
      await index('globbed');
      expect([...(await t.platform.chunks.liveFiles(added.id, 'main')).keys()].sort()).toEqual(['src/deep/fees.py', 'src/ledger.ts']);

      // A glob stored before registration checked them fails the run at once, with the reason, keeping the index.
      await t.platform.stores.postgres.pool.query(`UPDATE repositories SET include_globs = '{"src/[abc"}' WHERE id = $1`, [added.id]);
      globbed.write({ 'src/more.ts': 'export const more = 1;\n' });
      globbed.commit('more');
      await expect(index('globbed')).rejects.toThrow(/^globbed: path glob "src\/\[abc" is not valid/);
      expect([...(await t.platform.chunks.liveFiles(added.id, 'main')).keys()].sort()).toEqual(['src/deep/fees.py', 'src/ledger.ts']);
      await t.repos.remove('globbed');
    } finally {
      globbed.cleanup();
    }
  });

  it('removing a repository removes its data from every store', async () => {
    const billing = (await t.platform.repositories.findByName('billing'))!;
    await t.repos.remove('billing');
    expect(await t.platform.repositories.findByName('billing')).toBeNull();
    expect(await t.platform.chunks.liveChunkIds(billing.id)).toEqual([]);
    expect(await t.platform.vectors.ids({ repositoryBranches: [{ repositoryId: billing.id, branch: 'main' }] })).toEqual([]);
    const files = await t.platform.stores.postgres.pool.query('SELECT count(*)::int AS n FROM files WHERE repository_id = $1', [billing.id]);
    expect(files.rows[0].n).toBe(0);
  });
});
