import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { loadConfig } from '../../shared/config/config.ts';
import { createSearchService } from '../../shared/search/hybrid-search.ts';
import { semanticCoverage } from '../../shared/semantic/coverage.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { connectMcpClient } from '../helpers/mcp-client.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';
import { waitUntil } from '../helpers/polling.ts';
import { silentLogger } from '../helpers/context.ts';
import { EmbeddingError } from '../../shared/embeddings/embedding-provider.ts';
import { OnnxEmbeddingProvider } from '../../shared/embeddings/onnx.provider.ts';

/**
 * The local model tier end to end on the real stores: a run publishes with
 * full text and fast vectors and answers at once; `semantic-embed` jobs fill
 * in the model's vectors afterwards; search then finds code by meaning,
 * implementation first, and says how far coverage has come until it is whole.
 */
const modelDir = path.join(loadConfig({ ...process.env, SEMANTIC_MODEL: 'bge-small-en-v1.5' }).dataDir, 'models');

const FILES: Record<string, string> = {
  'src/request-id.js': [
    'let next = 0;',
    'export function reqIdGenFactory(prefix = "req") {',
    '  const start = Date.now().toString(36);',
    '  return function genReqId(req) {',
    '    const given = req.headers["x-request-id"];',
    '    if (given) return given;',
    '    return `${prefix}-${start}-${(next++).toString(36)}`;',
    '  };',
    '}',
    '',
  ].join('\n'),
  'src/redact.js': [
    'const HIDDEN = ["password", "passwd", "token", "secret", "authorization"];',
    'export function censor(record) {',
    '  const out = { ...record };',
    '  for (const key of Object.keys(out)) if (HIDDEN.includes(key.toLowerCase())) out[key] = "[REDACTED]";',
    '  return out;',
    '}',
    '',
  ].join('\n'),
  'src/backoff.js': [
    'export function delayFor(attempt, base = 100, cap = 30000) {',
    '  const jitter = Math.random() * base;',
    '  return Math.min(cap, base * 2 ** attempt + jitter);',
    '}',
    '',
  ].join('\n'),
  'src/router.js': [
    'export class Router {',
    '  constructor() { this.routes = new Map(); }',
    '  on(method, path, handler) { this.routes.set(`${method} ${path}`, handler); }',
    '  dispatch(req, res) { const h = this.routes.get(`${req.method} ${req.url}`); return h ? h(req, res) : res.end(404); }',
    '}',
    '',
  ].join('\n'),
  // The question's own words, in places that are not the implementation.
  'test/request-id.test.js': [
    'import { reqIdGenFactory } from "../src/request-id.js";',
    'describe("generate a unique id for each incoming request", () => {',
    '  it("gives each incoming request a unique id", () => {',
    '    const gen = reqIdGenFactory();',
    '    expect(gen({ headers: {} })).not.toBe(gen({ headers: {} }));',
    '  });',
    '});',
    '',
  ].join('\n'),
  'README.md': '# Service\n\nWe generate a unique id for each incoming request and hide passwords in log output.\n',
  'types/index.d.ts': '/** Generate a unique id for each incoming request. */\nexport function reqIdGenFactory(prefix?: string): (req: unknown) => string;\n',
};

describe('the local model tier', () => {
  let t: TestPlatform;
  let repo: GitFixture;
  let repositoryId = 0;
  const ref = () => ({ repositoryId, branch: 'main' });

  beforeAll(async () => {
    repo = createGitFixture();
    repo.write(FILES);
    repo.commit('initial');
    t = await openTestPlatform({ semantic: { model: 'bge-small-en-v1.5', modelDir, threads: 1, batch: 8 } });
    // Everything but the model's queue: the run must publish, and search answer, without it.
    await t.startWorkers(['index', 'embed', 'graph']);
  }, 120_000);

  afterAll(async () => {
    await t?.cleanup();
    repo?.cleanup();
  });

  const coverage = async () => (await semanticCoverage(t.platform, [ref()]))(ref())!;

  it('publishes and answers before the model has embedded anything, saying so', async () => {
    const { repository, jobId } = await t.repos.addAndIndex({ source: repo.dir, name: 'svc' });
    repositoryId = repository.id;
    await waitForJob(t.platform.queues.queues.index, jobId);
    // The run queued the model's job for the branch, and nothing has run it.
    const queued = await t.platform.queues.queues.semantic.getJobs(['waiting', 'prioritized']);
    expect(queued.map((j) => j.data)).toEqual([{ repositoryId, branch: 'main' }]);
    const before = await coverage();
    expect(before).toMatchObject({ model: 'onnx:bge-small-en-v1.5:384', embedded: 0, failed: 0, complete: false });
    expect(before.total).toBeGreaterThan(6);

    const { hits, warnings } = await t.search.search({ query: 'censor', repositories: ['svc'] });
    expect(hits[0]!.path).toBe('src/redact.js');
    expect(hits[0]!.matchedBy).not.toContain('model');
    expect(warnings).toEqual([
      { code: 'semantic_coverage_incomplete', message: expect.stringMatching(/^svc: the local model has embedded 0 of \d+ chunks \(0%\)/) },
    ]);
  });

  it('fills in every chunk in the background, then finds code by meaning, implementation first', async () => {
    await t.startWorkers(['semantic']);
    await waitUntil(async () => (await coverage()).complete, 90_000);
    const after = await coverage();
    expect(after.embedded).toBe(after.total);
    const live = (await t.platform.chunks.liveChunkIds(repositoryId)).sort();
    expect((await t.platform.semantic!.vectors.ids({ repositoryBranches: [ref()] })).sort()).toEqual(live);

    const top = async (query: string) => (await t.search.search({ query, repositories: ['svc'], limit: 5 })).hits;
    const ids = await top('generate a unique id for each incoming request');
    // The test, the README and the declaration repeat the words; the answer is the implementation.
    expect(ids[0]!.path).toBe('src/request-id.js');
    expect(ids[0]!.matchedBy).toContain('model');
    expect(ids[0]!.explain.similarity).toBeGreaterThan(0.5);
    const demoted = ids.find((h) => h.path === 'test/request-id.test.js');
    expect(demoted?.explain.boosts).toContainEqual(expect.stringMatching(/^non-code:test/));
    expect((await top('hide secrets such as passwords in log output'))[0]!.path).toBe('src/redact.js');
    expect((await top('wait longer after each failed attempt'))[0]!.path).toBe('src/backoff.js');

    // One hit per file unless asked; the kind filter asks for tests.
    expect(new Set(ids.map((h) => h.path)).size).toBe(ids.length);
    const tests = await t.search.search({ query: 'unique id for each request', repositories: ['svc'], kinds: ['test'] });
    expect(tests.hits.map((h) => h.path)).toEqual(['test/request-id.test.js']);
    // The warning goes once a search sees the coverage whole (counts are reused for a few seconds while incomplete).
    await waitUntil(async () => (await t.search.search({ query: 'unique id for each request', repositories: ['svc'] })).warnings.length === 0, 15_000);
  }, 120_000);

  it('embeds only what a new commit changed, and keeps coverage whole', async () => {
    const model = t.platform.semantic!.embeddings;
    const inputsBefore = model.stats().inputs;
    repo.write({ 'src/backoff.js': `${FILES['src/backoff.js']}export const MAX_ATTEMPTS = 8;\n` });
    repo.commit('cap attempts');
    const { jobId } = await t.repos.requestIndex('svc');
    await waitForJob(t.platform.queues.queues.index, jobId);
    await waitUntil(async () => (await coverage()).complete, 60_000);
    // backoff.js is one chunk: one new text for the model; every other chunk kept its vector.
    expect(model.stats().inputs - inputsBefore).toBe(1);
    const live = (await t.platform.chunks.liveChunkIds(repositoryId)).sort();
    expect((await t.platform.semantic!.vectors.ids({ repositoryBranches: [ref()] })).sort()).toEqual(live);
  }, 90_000);

  it('shows coverage in the API and in MCP list_repositories, and explains each hit', async () => {
    const app = await buildApp({ logger: silentLogger, platform: t.platform });
    try {
      const { token } = await createTokenService(t.platform.stores.postgres, { instances: t.config.instances }).create({ name: 'reader', scopes: ['read'], instances: ['*'] });
      const res = await app.inject({ url: '/api/v1/repositories/svc', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(200);
      const { total } = await coverage();
      expect(res.json().branches[0].semantic).toEqual({ model: 'onnx:bge-small-en-v1.5:384', embedded: total, failed: 0, total, complete: true });
      const search = await app.inject({ url: '/api/v1/search?q=hide%20passwords%20in%20logs&repo=svc&kind=code,test', headers: { authorization: `Bearer ${token}` } });
      expect(search.statusCode).toBe(200);
      const hit = search.json().hits[0];
      expect(hit).toMatchObject({ path: 'src/redact.js', fileKind: 'code', explain: { ranks: expect.objectContaining({ model: expect.any(Number) }), similarity: expect.any(Number) } });
      // The README (model's first) is not of the kinds asked for.
      expect(search.json().hits.map((h: { fileKind: string }) => h.fileKind).every((k: string) => k === 'code' || k === 'test')).toBe(true);
      const bad = await app.inject({ url: '/api/v1/search?q=x&kind=source', headers: { authorization: `Bearer ${token}` } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().message).toMatch(/kind/);
    } finally {
      await app.close();
    }
    const { client, close } = await connectMcpClient(t);
    try {
      const list = await client.callTool({ name: 'list_repositories', arguments: {} });
      expect((list.content as Array<{ text: string }>)[0]!.text).toMatch(/svc \(private\) main@\w+: ready, 7 files, \d+ chunks, model (\d+)\/\1 \(100%\)/);
      const found = await client.callTool({ name: 'semantic_search', arguments: { query: 'exponential backoff between retries', repository: 'svc', limit: 3 } });
      const first = (found.structuredContent as { results: Array<{ path: string; fileKind: string; why: { ranks: Record<string, number> } }> }).results[0]!;
      expect(first).toMatchObject({ path: 'src/backoff.js', fileKind: 'code' });
      expect(first.why.ranks.model).toBe(1);
    } finally {
      await close();
    }
  });

  it('answers from full text and fast vectors, saying why, when the model cannot be loaded', async () => {
    const broken = { ...t.platform, semantic: { ...t.platform.semantic!, embeddings: new (t.platform.semantic!.embeddings.constructor as typeof import('../../shared/embeddings/onnx.provider.ts').OnnxEmbeddingProvider)({ model: 'bge-small-en-v1.5', modelDir: '/nonexistent', threads: 1, batch: 8 }) } };
    const { hits, warnings } = await createSearchService(broken).search({ query: 'censor passwords', repositories: ['svc'] });
    expect(hits[0]!.path).toBe('src/redact.js');
    expect(warnings.map((w) => w.code)).toEqual(['model_search_unavailable']);
    expect(warnings[0]!.message).toMatch(/stack prepare/);
  });
});

describe('a chunk the model fails on', () => {
  let t: TestPlatform;
  let repo: GitFixture;

  beforeAll(async () => {
    repo = createGitFixture();
    repo.write({ 'src/ok.js': FILES['src/redact.js']!, 'src/poison.js': 'export const POISON = "the model fails on this text";\n' });
    repo.commit('initial');
    // The real model, failing on one text as a model can (an input it cannot take): every other text is embedded.
    const model = new OnnxEmbeddingProvider({ model: 'bge-small-en-v1.5', modelDir, threads: 1, batch: 8 });
    const failing = Object.assign(Object.create(model) as OnnxEmbeddingProvider, {
      embed: (texts: string[], options?: Parameters<OnnxEmbeddingProvider['embed']>[1]) =>
        texts.some((x) => x.includes('POISON')) ? Promise.reject(new EmbeddingError('cannot embed this', { kind: 'server', retryable: true })) : model.embed(texts, options),
    });
    t = await openTestPlatform({ semantic: { model: 'bge-small-en-v1.5', modelDir, threads: 1, batch: 8 } }, { semanticEmbeddings: failing });
    await t.startWorkers();
  }, 120_000);

  afterAll(async () => {
    await t?.cleanup();
    repo?.cleanup();
  });

  it('is retried alone, then recorded as failed and skipped: coverage completes without it', async () => {
    const { repository, jobId } = await t.repos.addAndIndex({ source: repo.dir, name: 'poisoned' });
    await waitForJob(t.platform.queues.queues.index, jobId);
    const ref = { repositoryId: repository.id, branch: 'main' };
    const coverage = async () => (await semanticCoverage(t.platform, [ref]))(ref)!;
    await waitUntil(async () => (await coverage()).complete, 60_000);
    expect(await coverage()).toMatchObject({ embedded: 1, failed: 1, total: 2, complete: true });
    await waitUntil(async () => (await t.platform.queues.queues.semantic.getJobs(['completed'])).length > 0, 10_000);
    const [job] = await t.platform.queues.queues.semantic.getJobs(['completed']);
    expect(job?.returnvalue).toMatchObject({ phase: 'done', embedded: 1, failed: 1, total: 2 });
    const { rows } = await t.platform.stores.postgres.pool.query(`SELECT c.path, v.error FROM chunk_model_vectors v JOIN chunks c ON c.id = v.chunk_id WHERE v.status = 'failed'`);
    expect(rows).toEqual([{ path: 'src/poison.js', error: 'cannot embed this' }]);
    // Still found, with coverage whole (no warning).
    const { hits, warnings } = await t.search.search({ query: 'the model fails on this text', repositories: ['poisoned'] });
    // (By full text: with coverage whole the fast vectors are not consulted.)
    expect(hits.find((h) => h.path === 'src/poison.js')?.matchedBy).toEqual(['text']);
    expect(warnings).toEqual([]);
  });
});

describe('a branch with more than one slice of work', () => {
  let t: TestPlatform;
  let repo: GitFixture;

  beforeAll(async () => {
    repo = createGitFixture();
    // 40 files of one chunk each: two pages of the job's work.
    repo.write(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`src/f${i}.js`, `export function task${i}(input) {\n  return input * ${i} + ${i * 7};\n}\n`])));
    repo.commit('initial');
    // A slice shorter than one page: each job embeds one page, then queues the next and hands over.
    t = await openTestPlatform({ semantic: { model: 'bge-small-en-v1.5', modelDir, threads: 1, batch: 8, sliceMs: 1 } });
    await t.startWorkers();
  }, 120_000);

  afterAll(async () => {
    await t?.cleanup();
    repo?.cleanup();
  });

  it('hands over between slices and resumes where it stopped, embedding each chunk once', async () => {
    const inputsBefore = t.platform.semantic!.embeddings.stats().inputs;
    const { repository, jobId } = await t.repos.addAndIndex({ source: repo.dir, name: 'sliced' });
    await waitForJob(t.platform.queues.queues.index, jobId);
    const ref = { repositoryId: repository.id, branch: 'main' };
    const coverage = async () => (await semanticCoverage(t.platform, [ref]))(ref)!;
    await waitUntil(async () => (await coverage()).complete, 60_000);
    expect(await coverage()).toMatchObject({ embedded: 40, failed: 0, total: 40 });
    await waitUntil(async () => (await t.platform.queues.queues.semantic.getJobCounts('active', 'waiting')).active === 0, 10_000);
    const done = await t.platform.queues.queues.semantic.getJobs(['completed']);
    // One job per slice: it yielded at least once, and the next picked up the rest.
    expect(done.length).toBeGreaterThanOrEqual(2);
    expect(done.some((j) => (j.returnvalue as { yielded?: boolean }).yielded)).toBe(true);
    expect(t.platform.semantic!.embeddings.stats().inputs - inputsBefore).toBe(40);
  }, 90_000);
});
