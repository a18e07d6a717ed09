import { createServer, type Server, type Socket } from 'node:net';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { DEFAULT_EMBEDDING_CONFIG, type EmbeddingProvider } from '../../shared/embeddings/embedding-provider.ts';
import { OpenAIEmbeddingProvider } from '../../shared/embeddings/openai.provider.ts';
import type { Platform } from '../../shared/platform.ts';
import { createSearchService } from '../../shared/search/hybrid-search.ts';
import { createChromaConnection } from '../../shared/stores/chroma.connection.ts';
import { createVectorStore } from '../../shared/stores/vector.store.ts';
import { silentLogger } from '../helpers/context.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai-server.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { cliEnv, runCli } from '../helpers/cli.ts';
import { connectMcpClient } from '../helpers/mcp-client.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

/**
 * Search with the openai provider when the embedding server is down or
 * hangs: the query gets a short deadline and answers from full text, saying
 * so, through the service, the REST API, MCP and the CLI. The stores are the
 * real ones; only the embedding server is a local fake (or a closed port, or
 * a socket that never answers). The repository is indexed with the fake up,
 * so vectors exist and the degraded answers are the full-text half of a
 * hybrid index.
 */

const DIMS = 8;
const LEDGER_TS = `export function reconcileLedger(entries: number[]): number {
  return entries.reduce((sum, e) => sum + e, 0);
}

export function closeBooks(period: string): string {
  return \`closed \${period}\`;
}
`;
const UNREACHABLE = 'vector search unavailable: the embedding server could not be reached; results come from full-text search alone';
const TOO_SLOW = 'vector search unavailable: the embedding server did not answer in time; results come from full-text search alone';

let fake: FakeOpenAI;
let t: TestPlatform;
let repo: GitFixture;
let closedPort: number;
let silent: Server;
const silentSockets = new Set<Socket>();

/** An openai provider at `url`, configured as a deployment would be (default retries, backoff and request timeout). */
function openai(url: string): OpenAIEmbeddingProvider {
  return new OpenAIEmbeddingProvider(
    { ...DEFAULT_EMBEDDING_CONFIG, provider: 'openai', openaiApiKey: 'test-key', openaiBaseUrl: url, dimensions: DIMS },
    silentLogger,
  );
}

/** The test platform with another embedding provider of the same vector space: the same collections, a different server. */
const withEmbeddings = (embeddings: EmbeddingProvider): Platform => ({ ...t.platform, embeddings });

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  t = await openTestPlatform({}, { embeddings: openai(fake.url) });
  await t.startWorkers();
  repo = createGitFixture();
  repo.write({ 'src/ledger.ts': LEDGER_TS });
  repo.commit('ledger');
  await t.repos.add({ source: repo.dir, name: 'ledger' });
  const { jobId } = await t.repos.requestIndex('ledger');
  await waitForJob(t.platform.queues.queues.index, jobId);
  await t.stopWorkers();

  const probe = createServer();
  closedPort = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
  });
  await listen(silent);
});

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await t?.cleanup();
  await fake?.close();
  repo?.cleanup();
});

const downUrl = () => `http://127.0.0.1:${closedPort}/v1`;
const silentUrl = () => `http://127.0.0.1:${(silent.address() as { port: number }).port}/v1`;

describe('search service with the embedding server unavailable', () => {
  it('with the server up, both retrievers answer and there is no warning', async () => {
    const { hits, warnings } = await t.search.search({ query: 'reconcileLedger' });
    expect(hits[0]).toMatchObject({ path: 'src/ledger.ts', symbol: expect.stringContaining('reconcileLedger'), matchedBy: ['text', 'vector'] });
    expect(warnings).toEqual([]);
  });

  it('with the server down, answers from full text after one quick retry, saying why', async () => {
    const down = openai(downUrl());
    const { hits, warnings } = await createSearchService(withEmbeddings(down)).search({ query: 'reconcileLedger' });

    expect(hits[0]).toMatchObject({ repository: 'ledger', path: 'src/ledger.ts', matchedBy: ['text'] });
    expect(hits.every((h) => h.matchedBy.join() === 'text')).toBe(true);
    expect(warnings).toEqual([{ code: 'vector_search_unavailable', message: UNREACHABLE }]);
    // An interactive query: one retry, not the six an indexing batch gets.
    expect(down.stats()).toMatchObject({ calls: 2, retries: 1 });
  });

  it('with a server that never answers, gives up at the query deadline and answers from full text', async () => {
    const { hits, warnings } = await createSearchService(withEmbeddings(openai(silentUrl()))).search({ query: 'closeBooks period' });
    expect(hits[0]).toMatchObject({ path: 'src/ledger.ts', matchedBy: ['text'] });
    expect(warnings).toEqual([{ code: 'vector_search_unavailable', message: TOO_SLOW }]);
  }, 20_000);

  it('logs the full reason where the caller only sees a safe one', async () => {
    const logged: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const logger = { warn: (obj: Record<string, unknown>, msg: string) => logged.push({ obj, msg }) };
    await createSearchService(withEmbeddings(openai(downUrl())), { logger: logger as never }).search({ query: 'reconcileLedger' });
    expect(logged).toHaveLength(1);
    expect(logged[0]!.obj).toMatchObject({ kind: 'network', err: expect.stringContaining(`Could not reach the embedding server at ${downUrl()}`) });
  });

  it('a failure that is not the embedding server\'s still fails the search', async () => {
    const broken: EmbeddingProvider = { ...t.platform.embeddings, id: t.platform.embeddings.id, embed: async () => Promise.reject(new TypeError('a bug')) };
    await expect(createSearchService(withEmbeddings(broken)).search({ query: 'reconcileLedger' })).rejects.toThrow('a bug');
  });
});

describe('search service with ChromaDB unavailable', () => {
  const CHROMA_DOWN =
    'vector search unavailable: the vector store (ChromaDB) could not be reached or did not answer in time; results come from full-text search alone';
  /** The test platform with its vectors behind another Chroma address (the same collection names). */
  const withChromaAt = (url: string, queryTimeoutMs?: number): Platform => {
    const chroma = createChromaConnection({ url, collectionPrefix: t.config.chromaCollectionPrefix, ...(queryTimeoutMs ? { queryTimeoutMs } : {}) });
    return { ...t.platform, vectors: createVectorStore(chroma, t.platform.embeddings.id) };
  };

  it('with Chroma down, answers from full text at once, saying so', async () => {
    const started = performance.now();
    const { hits, warnings } = await createSearchService(withChromaAt(`http://127.0.0.1:${closedPort}`)).search({ query: 'reconcileLedger' });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(hits[0]).toMatchObject({ path: 'src/ledger.ts', matchedBy: ['text'] });
    expect(warnings).toEqual([{ code: 'vector_search_unavailable', message: CHROMA_DOWN }]);
  });

  it('with a Chroma that never answers, gives up at its read deadline and answers from full text', async () => {
    const started = performance.now();
    const { hits, warnings } = await createSearchService(withChromaAt(silentUrl().replace(/\/v1$/, ''), 400)).search({ query: 'closeBooks period' });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(hits[0]).toMatchObject({ path: 'src/ledger.ts', matchedBy: ['text'] });
    expect(warnings).toEqual([{ code: 'vector_search_unavailable', message: CHROMA_DOWN }]);
  });

  it('a missing collection is no vectors, not an unavailable Chroma', async () => {
    const platform = withChromaAt(t.config.chromaUrl);
    expect(await platform.vectors.count({ repositoryId: 999_999, branch: 'main' })).toBe(0);
    const { warnings } = await createSearchService(platform).search({ query: 'reconcileLedger' });
    expect(warnings).toEqual([]);
  });

  it('a vector store that is down is an error for counting, never a count of 0 (a run would restage everything)', async () => {
    const platform = withChromaAt(`http://127.0.0.1:${closedPort}`);
    const ledger = (await t.platform.repositories.findByName('ledger'))!;
    await expect(platform.vectors.count({ repositoryId: ledger.id, branch: 'main' })).rejects.toThrow();
  });
});

describe('consumers show the warning', () => {
  let app: FastifyInstance;
  let token = '';

  beforeAll(async () => {
    app = await buildApp({ logger: silentLogger, platform: withEmbeddings(openai(downUrl())) });
    token = (await createTokenService(t.platform.stores.postgres, { instances: t.config.instances }).create({ name: 'reader', scopes: ['read'], instances: ['*'] })).token;
  });

  afterAll(async () => {
    await app?.close();
  });

  it('REST API: 200 with full-text hits and the warning', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/search?q=reconcileLedger', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.hits[0]).toMatchObject({ path: 'src/ledger.ts', matchedBy: ['text'] });
    expect(body.warnings).toEqual([{ code: 'vector_search_unavailable', message: UNREACHABLE }]);
    // …and the OpenAPI document says so.
    const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(JSON.stringify(spec.paths['/api/v1/search'].get.responses['200'])).toContain('vector_search_unavailable');
  });

  it('REST API: no warning when the embedding server answers', async () => {
    const upApp = await buildApp({ logger: silentLogger, platform: t.platform });
    try {
      const res = await upApp.inject({ method: 'GET', url: '/api/v1/search?q=reconcileLedger', headers: { authorization: `Bearer ${token}` } });
      expect(res.json()).toMatchObject({ warnings: [] });
      expect(res.json().hits[0].matchedBy).toEqual(['text', 'vector']);
    } finally {
      await upApp.close();
    }
  });

  it('MCP semantic_search: results with the warning in text and structured content; no results say it too', async () => {
    const { client, close } = await connectMcpClient(t, { platform: withEmbeddings(openai(downUrl())) });
    try {
      const found = (await client.callTool({ name: 'semantic_search', arguments: { query: 'reconcileLedger' } })) as CallToolResult;
      expect(found.isError).toBeFalsy();
      const text = found.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
      expect(text.split('\n')[0]).toBe(`Warning: ${UNREACHABLE}.`);
      expect(text).toContain('ledger:src/ledger.ts:1-7');
      expect(found.structuredContent).toMatchObject({ warnings: [{ code: 'vector_search_unavailable', message: UNREACHABLE }] });

      const none = (await client.callTool({ name: 'semantic_search', arguments: { query: 'quaternionSlerp' } })) as CallToolResult;
      expect(none.isError).toBe(true);
      expect(none.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n')).toContain(`no indexed code matched "quaternionSlerp"; ${UNREACHABLE}.`);
    } finally {
      await close();
    }
  });

  describe('CLI search', () => {
    const pkMcp = (...args: string[]) =>
      runCli(cliEnv(t.config, { EMBEDDING_PROVIDER: 'openai', OPENAI_API_KEY: 'test-key', OPENAI_BASE_URL: downUrl(), EMBEDDING_DIMENSIONS: String(DIMS) }), ...args);

    it('--json carries the warning next to the hits', async () => {
      const run = await pkMcp('search', 'reconcileLedger', '--json');
      expect(run.code, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout);
      expect(out.hits[0]).toMatchObject({ path: 'src/ledger.ts', matchedBy: ['text'] });
      expect(out.warnings).toEqual([{ code: 'vector_search_unavailable', message: UNREACHABLE }]);
    });

    it('prints the warning on stderr and the hits on stdout', async () => {
      const run = await pkMcp('search', 'reconcileLedger');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`warning: ${UNREACHABLE}`);
      expect(run.stdout).toContain('ledger:src/ledger.ts:1-7');
    });
  });
});
