/**
 * MCP server benchmark (issue "MCP server"): how fast `semantic_search`
 * answers real MCP clients, over Streamable HTTP and over stdio.
 *
 *   node --import tsx bench/mcp.bench.ts [--files 6000] [--exclude GLOB]… [--clients 10] [--queries 300] [--out bench/results]
 *
 * The corpus (real files from node_modules committed to a temporary Git
 * repository) is indexed once by the real worker process with local
 * embeddings, in an isolated platform (queue prefix, Postgres schema, Chroma
 * collections, workspace, graph namespace) removed at the end. A freshly
 * loaded `chunks` table has no planner statistics until autovacuum analyzes
 * it: one client's searches are timed before and after that, and the
 * measurements below run after it (the steady state). Then:
 *
 * - Streamable HTTP: the real API process (`api/server.ts` on the isolated
 *   names, 127.0.0.1, a free port), 10 SDK clients in the bench process (not
 *   sharing the server's event loop, as agents do not), each with its own
 *   read token from the token service (one token per agent, as deployed; one
 *   shared token would meet the per-token rate limit sooner), calling
 *   `semantic_search` concurrently. The per-part timings run on an
 *   instrumented in-process API (`buildApp`), as a diagnostic.
 * - stdio: 10 SDK clients, each spawning its own `mcp/stdio.ts` process on the
 *   isolated names, as IDE agents do. Start-up and connect are timed apart;
 *   the latencies are call round trips after connect.
 *
 * Latency is end to end at the client: from `callTool` to its result. Every
 * client lists the tools first (as agents do), so the SDK validates each
 * result against the tool's output schema, as it would for an agent. Each
 * measured pass follows a warm-up pass of as many other queries (JIT, pools,
 * Chroma's collection handle in each process), reported beside it but not
 * judged: the targets are a running server's steady state. Where the time
 * goes is measured separately:
 * the same queries through the search service without MCP, each part of a
 * search timed under the same concurrency, and one client at a time.
 *
 * Results go to stdout, `<out>/mcp-<YYYY-MM-DD>.json` and `<out>/mcp.md`.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.ts';
import { createTokenService } from '../shared/auth/token.service.ts';
import { createLogger } from '../shared/logger.ts';
import type { Platform } from '../shared/platform.ts';
import { createSearchService, fullTextQuery } from '../shared/search/hybrid-search.ts';
import { PROJECT_ROOT, tsNodeArgs } from '../scripts/project.ts';
import {
  judge,
  latencyStats,
  log as logAs,
  machineInfo,
  markdownReport,
  markdownTable,
  round,
  runConcurrently,
  spread,
  table,
  targetRows,
  textReport,
  waitForQuietMachine,
  type LatencyStats,
  type TargetResult,
} from './lib/common.ts';
import { measureCpu, stackGroups, type CpuGroup } from './lib/cpu.ts';
import { buildCorpus, corpusSummary, CORPUS_BRANCH, MIN_CORPUS_FILES } from './lib/corpus.ts';
import { openIsolatedPlatform, waitForIndexJob, type IsolatedPlatform } from './lib/isolated.ts';
import { corpusSearchQueries, type SearchQuery } from './lib/search-queries.ts';
import { spawnEntry } from '../tests/helpers/processes.ts';

const BENCH = 'mcp-bench';
const log = (m: string) => logAs(BENCH, m);

const TARGETS = {
  httpP95Ms: { max: 100, unit: 'ms', label: 'semantic_search p95 over Streamable HTTP, 10 concurrent clients' },
  stdioP95Ms: { max: 100, unit: 'ms', label: 'semantic_search p95 over stdio, 10 concurrent clients' },
} as const;

const REPO_NAME = 'bench-corpus';
/** Sequential calls for the one-client numbers. */
const ONE_CLIENT_QUERIES = 60;
const FULL_INDEX_TIMEOUT_MS = 40 * 60_000;
const silent = createLogger({ logLevel: 'silent', logPretty: false });

type ToolResult = CallToolResult & { structuredContent?: { results?: unknown[] } };

// ---------------------------------------------------------------------------
// Queries drawn from the corpus
// ---------------------------------------------------------------------------


// ---------------------------------------------------------------------------
// Running MCP clients
// ---------------------------------------------------------------------------

async function callSearch(client: Client, q: SearchQuery): Promise<{ isError: boolean; results: number }> {
  const r = (await client.callTool({ name: 'semantic_search', arguments: { query: q.text, limit: 10 } })) as ToolResult;
  return { isError: r.isError === true, results: r.structuredContent?.results?.length ?? 0 };
}

/**
 * A warm-up pass, then the measured one; in each, the calls are shared among
 * the clients, each taking the next query. The warm-up pass runs as many
 * other queries at the same concurrency, timed but not judged: every process
 * on the path (the API or stdio servers, the clients) compiles its hot code,
 * and every pool opens a connection per client (a Postgres backend with cold
 * caches and no prepared statements yet). A server runs for days; the target
 * is its steady state, and the warm-up pass is reported beside it.
 */
async function measureClients(clients: Client[], queries: SearchQuery[], warmup: SearchQuery[], cpuGroups: CpuGroup[] = [], beforeMeasured?: () => void) {
  const warm = await runConcurrently(warmup, clients.length, (q, i) => callSearch(clients[i]!, q));
  const warmFailed = warm.timings.find((t) => t.error);
  if (warmFailed) throw new Error(`warm-up call failed: ${warmFailed.error}`);
  const warmupPass = { calls: warm.timings.length, callsPerSecond: round(warm.timings.length / (warm.wallMs / 1000)), all: latencyStats(warm.timings.map((t) => t.ms)) };
  beforeMeasured?.();
  const cpu = measureCpu(cpuGroups);
  const { wallMs, timings } = await runConcurrently(queries, clients.length, (q, i) => callSearch(clients[i]!, q));
  const cpuUsed = cpu.stop();
  const ok = timings.filter((t) => !t.error);
  return {
    clients: clients.length,
    calls: timings.length,
    callsPerSecond: round(timings.length / (wallMs / 1000)),
    all: latencyStats(timings.map((t) => t.ms)),
    identifier: latencyStats(timings.filter((t) => t.item.kind === 'identifier').map((t) => t.ms)),
    natural: latencyStats(timings.filter((t) => t.item.kind === 'natural').map((t) => t.ms)),
    toolErrors: ok.filter((t) => t.result!.isError).length,
    failures: timings.filter((t) => t.error).length,
    firstFailures: [...new Set(timings.filter((t) => t.error).map((t) => t.error!))].slice(0, 3),
    meanResults: round(ok.reduce((a, t) => a + t.result!.results, 0) / Math.max(1, ok.length)),
    warmupPass,
    cpu: cpuUsed,
  };
}

async function oneClient(client: Client, queries: SearchQuery[]) {
  const times: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    await callSearch(client, q);
    times.push(performance.now() - t);
  }
  return latencyStats(times);
}

// ---------------------------------------------------------------------------
// Where the time goes: the parts of a search, timed where they run
// ---------------------------------------------------------------------------

type PartName = 'auth' | 'repositoryList' | 'queryEmbedding' | 'chromaQuery' | 'postgresFullText' | 'postgresLiveChunks' | 'httpRequest';

function createPartTimer() {
  const parts: Record<PartName, number[]> = { auth: [], repositoryList: [], queryEmbedding: [], chromaQuery: [], postgresFullText: [], postgresLiveChunks: [], httpRequest: [] };
  const time = <A extends unknown[], R>(part: PartName, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const t = performance.now();
      try {
        return await fn(...args);
      } finally {
        parts[part].push(performance.now() - t);
      }
    };
  return {
    parts,
    time,
    reset() {
      for (const k of Object.keys(parts) as PartName[]) parts[k] = [];
    },
    report: () => Object.fromEntries(Object.entries(parts).filter(([, xs]) => xs.length > 0).map(([k, xs]) => [k, latencyStats(xs)])) as Partial<Record<PartName, LatencyStats>>,
  };
}

/**
 * The platform with pass-through timers on every store call a search makes
 * (and the token lookup the auth hook makes, recognised by its table).
 */
function instrumentedPlatform(platform: Platform, timer: ReturnType<typeof createPartTimer>): Platform {
  const pool = platform.stores.postgres.pool;
  const timedAuthQuery = timer.time('auth', (...args: unknown[]) => (pool.query as (...a: unknown[]) => Promise<unknown>).apply(pool, args));
  const poolProxy = new Proxy(pool, {
    get(target, prop) {
      if (prop === 'query') {
        return (...args: unknown[]) => {
          const sql = typeof args[0] === 'string' ? args[0] : '';
          return /\bapi_tokens\b/.test(sql) && /token_hash = \$1/.test(sql) ? timedAuthQuery(...args) : (target.query as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    ...platform,
    stores: { ...platform.stores, postgres: { ...platform.stores.postgres, pool: poolProxy } },
    repositories: { ...platform.repositories, list: timer.time('repositoryList', platform.repositories.list) },
    // A class instance: spreading it would lose its methods.
    embeddings: {
      id: platform.embeddings.id,
      model: platform.embeddings.model,
      dimensions: platform.embeddings.dimensions,
      embed: timer.time('queryEmbedding', platform.embeddings.embed.bind(platform.embeddings)),
      stats: () => platform.embeddings.stats(),
    },
    vectors: { ...platform.vectors, query: timer.time('chromaQuery', platform.vectors.query) },
    chunks: {
      ...platform.chunks,
      fullText: timer.time('postgresFullText', platform.chunks.fullText),
      liveChunks: timer.time('postgresLiveChunks', platform.chunks.liveChunks),
    },
  };
}

async function startApi(platform: Platform, timer?: ReturnType<typeof createPartTimer>): Promise<{ app: FastifyInstance; url: URL }> {
  const app = await buildApp({ logger: silent, platform: timer ? instrumentedPlatform(platform, timer) : platform });
  await app.listen({ host: '127.0.0.1', port: 0 });
  if (timer) {
    // Request arrival to the last byte of the answer, on the server: client-side time beyond this is transport and SDK.
    app.server.on('request', (req, res) => {
      if (req.method !== 'POST') return;
      const t = performance.now();
      res.on('finish', () => timer.parts.httpRequest.push(performance.now() - t));
    });
  }
  const { port } = app.server.address() as AddressInfo;
  return { app, url: new URL(`http://127.0.0.1:${port}/mcp`) };
}

/** The production API entry in its own process on the isolated names, on a free port; resolves once /health answers. */
async function startApiProcess(env: Record<string, string>): Promise<{ url: URL; pid: number; stop(): Promise<unknown> }> {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  const api = spawnEntry('api/server.ts', { ...env, API_PORT: String(port), LOG_LEVEL: 'warn', LOG_PRETTY: 'false' });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (api.child.exitCode !== null) throw new Error(`the API process exited: ${api.output().slice(-2000)}`);
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await api.stop();
      throw new Error(`the API process did not answer within 60 s: ${api.output().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url: new URL(`http://127.0.0.1:${port}/mcp`), pid: api.child.pid!, stop: () => api.stop('SIGTERM') };
}

async function connectHttp(url: URL, tokens: string[]): Promise<Client[]> {
  return Promise.all(
    tokens.map(async (token, i) => {
      const client = new Client({ name: `mcp-bench-http-${i}`, version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      await client.listTools();
      return client;
    }),
  );
}

async function closeHttp(clients: Client[]): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      // Closing a Streamable HTTP client does not end its session on the server; DELETE does.
      await (c.transport as StreamableHTTPClientTransport | undefined)?.terminateSession().catch(() => undefined);
      await c.close().catch(() => undefined);
    }),
  );
}

/**
 * The retrievers alone, one query at a time and nothing else running: the
 * query embedding, Chroma's nearest neighbours in the branch's collection and
 * Postgres full text, at the depth the search service uses for limit 10.
 */
async function retrieversOneAtATime(platform: Platform, repositoryId: number, queries: SearchQuery[]) {
  const filter = { repositoryBranches: [{ repositoryId, branch: CORPUS_BRANCH }] };
  const depth = 40; // hybrid-search fetches limit × 4 candidates from each retriever
  const embedding: number[] = [];
  const chroma: number[] = [];
  const fullText: number[] = [];
  for (const q of queries) {
    let t = performance.now();
    const [v] = await platform.embeddings.embed([q.text]);
    embedding.push(performance.now() - t);
    t = performance.now();
    await platform.vectors.query(v!, depth, filter);
    chroma.push(performance.now() - t);
    const terms = fullTextQuery(q.text);
    if (terms) {
      t = performance.now();
      await platform.chunks.fullText(terms, filter, depth, { enough: 10 });
      fullText.push(performance.now() - t);
    }
  }
  const { rows } = await platform.stores.postgres.pool.query<{ n: string }>(`SELECT count(*) AS n FROM chunks`);
  return { queryEmbedding: latencyStats(embedding), chromaQuery: latencyStats(chroma), postgresFullText: latencyStats(fullText), liveChunks: Number(rows[0]?.n ?? 0) };
}

// ---------------------------------------------------------------------------
// The state Postgres is in: fresh from a bulk load, or analyzed
// ---------------------------------------------------------------------------

/** Planner statistics of the tables a search reads: a freshly loaded `chunks` has none until (auto)analyze. */
async function tableStats(platform: Platform) {
  const { rows } = await platform.stores.postgres.pool.query<{
    relname: string;
    n_live_tup: string;
    n_mod_since_analyze: string;
    last_analyze: Date | null;
    last_autoanalyze: Date | null;
  }>(
    `SELECT relname, n_live_tup, n_mod_since_analyze, last_analyze, last_autoanalyze
       FROM pg_stat_user_tables WHERE schemaname = $1 AND relname IN ('chunks', 'repositories', 'repository_branches', 'api_tokens') ORDER BY relname`,
    [platform.config.databaseSchema],
  );
  return Object.fromEntries(
    rows.map((r) => [
      r.relname,
      {
        liveRows: Number(r.n_live_tup),
        modifiedSinceAnalyze: Number(r.n_mod_since_analyze),
        analyzedAt: (r.last_analyze ?? r.last_autoanalyze)?.toISOString() ?? null,
      },
    ]),
  );
}

interface PgPlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PgPlanNode[];
}

function planNodes(node: PgPlanNode, out: string[] = []): string[] {
  out.push(`${node['Node Type']}${node['Index Name'] ? ` on ${node['Index Name']}` : node['Relation Name'] ? ` on ${node['Relation Name']}` : ''}`);
  for (const child of node.Plans ?? []) planNodes(child, out);
  return out;
}

/**
 * The full-text statements the chunk repository really sends for one query
 * (captured from the pool for the one call, whatever their current form),
 * each EXPLAIN ANALYZEd: how Postgres finds the rows, and how long it takes.
 */
async function fullTextPlans(platform: Platform, repositoryId: number, query: string) {
  const pool = platform.stores.postgres.pool as unknown as { query: (...args: unknown[]) => Promise<unknown> };
  const captured: Array<{ text: string; values: unknown[] }> = [];
  const original = pool.query;
  pool.query = function (this: unknown, ...args: unknown[]) {
    const statement = args[0] as string | { text: string; values?: unknown[] };
    const text = typeof statement === 'string' ? statement : statement?.text;
    const values = typeof statement === 'string' ? args[1] : statement?.values;
    if (typeof text === 'string' && (text.includes('search_vector') || text.includes('search_chunk_ids'))) captured.push({ text, values: (values as unknown[]) ?? [] });
    return original.apply(this, args);
  };
  try {
    await platform.chunks.fullText(fullTextQuery(query), { repositoryBranches: [{ repositoryId, branch: CORPUS_BRANCH }] }, 40);
  } finally {
    pool.query = original;
  }
  const plans = [];
  for (const c of captured) {
    const { rows } = (await original.call(pool, `EXPLAIN (ANALYZE, FORMAT JSON) ${c.text}`, c.values)) as { rows: Array<{ 'QUERY PLAN': Array<{ Plan: PgPlanNode; 'Execution Time': number }> }> };
    const plan = rows[0]!['QUERY PLAN'][0]!;
    plans.push({ executionMs: round(plan['Execution Time']), nodes: planNodes(plan.Plan) });
  }
  return { query, plans };
}

/** One client, one search at a time through the search service: the cost of a search with nothing queued. */
async function probeSearch(platform: Platform, repositoryId: number, queries: SearchQuery[]) {
  const search = createSearchService(platform);
  const times: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    await search.search({ query: q.text, limit: 10 });
    times.push(performance.now() - t);
  }
  return { search: latencyStats(times), fullText: await fullTextPlans(platform, repositoryId, queries[0]!.text), tables: await tableStats(platform) };
}

/**
 * Waits until autovacuum has analyzed `chunks` after the bulk load (or a
 * time limit passes): before that the planner has no statistics for it.
 */
async function waitForAnalyzedChunks(platform: Platform, timeoutMs = 4 * 60_000): Promise<{ waitedMs: number; analyzed: boolean }> {
  const started = Date.now();
  for (;;) {
    const chunks = (await tableStats(platform)).chunks;
    if (chunks?.analyzedAt && chunks.modifiedSinceAnalyze < 0.1 * Math.max(1, chunks.liveRows)) return { waitedMs: Date.now() - started, analyzed: true };
    if (Date.now() - started > timeoutMs) return { waitedMs: Date.now() - started, analyzed: false };
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '6000' },
      out: { type: 'string', default: 'bench/results' },
      exclude: { type: 'string', multiple: true, default: [] },
      clients: { type: 'string', default: '10' },
      queries: { type: 'string', default: '300' },
    },
  });
  const wanted = Number(values.files);
  if (!Number.isInteger(wanted) || wanted < MIN_CORPUS_FILES) throw new Error(`--files must be an integer ≥ ${MIN_CORPUS_FILES}`);
  const clientCount = Number(values.clients);
  const queryCount = Number(values.queries);
  const outDir = path.resolve(PROJECT_ROOT, values.out);
  const command = ['node', '--import', 'tsx', 'bench/mcp.bench.ts', ...process.argv.slice(2)].join(' ');
  const machine = machineInfo();
  const startedAt = new Date().toISOString();

  const initialQuiet = await waitForQuietMachine(BENCH);
  log(`building a corpus of ${wanted} files from node_modules`);
  const corpus = buildCorpus(wanted, values.exclude ?? []);
  log(`corpus: ${corpus.files.length} files (${round(corpus.bytes / 2 ** 20)} MB) from ${corpus.packages} packages`);
  let iso: IsolatedPlatform | undefined;
  const stdioClients: Client[] = [];
  let httpClients: Client[] = [];
  let api: FastifyInstance | undefined;
  let apiProcess: { stop(): Promise<unknown> } | undefined;
  const cleanupProblems: string[] = [];

  try {
    iso = await openIsolatedPlatform('mbench');
    const { platform, config } = iso;

    // Index once, with the real worker process; it is stopped before anything is measured.
    const worker = await iso.spawnWorkers();
    const repo = await iso.repos.add({ source: corpus.dir, name: REPO_NAME, branch: CORPUS_BRANCH });
    log('indexing the corpus…');
    const indexStarted = Date.now();
    const { jobId } = await iso.repos.requestIndex(REPO_NAME);
    const indexJob = await waitForIndexJob(platform.queues.queues.index, jobId, FULL_INDEX_TIMEOUT_MS);
    const branch = await platform.repositories.getBranch(repo.id, CORPUS_BRANCH);
    const index = { wallMs: indexJob.finishedOn! - indexStarted, files: branch?.fileCount ?? 0, chunks: branch?.chunkCount ?? 0 };
    log(`indexed ${index.files} files, ${index.chunks} chunks in ${index.wallMs} ms`);
    await worker.stop('SIGTERM');

    const { measured: queries, warmup } = await corpusSearchQueries(platform.stores.postgres.pool, queryCount);
    log(`${queries.length} queries (${queries.filter((q) => q.kind === 'identifier').length} identifiers), ${warmup.length} for warm-up`);

    // Right after the bulk load Postgres has no statistics for the new rows; searches then are not
    // what they are a minute later. One client's searches now, then wait for autovacuum's analyze.
    const probeQueries = spread(queries, 40);
    const afterIndex = await probeSearch(platform, repo.id, probeQueries);
    log(`right after the index: one-client search p50 ${afterIndex.search.p50Ms} ms, p95 ${afterIndex.search.p95Ms} ms; chunks analyzed: ${afterIndex.tables.chunks?.analyzedAt ?? 'never'}`);
    const settle = await waitForAnalyzedChunks(platform);
    log(`chunks ${settle.analyzed ? 'analyzed' : 'still not analyzed'} after ${round(settle.waitedMs / 1000)} s`);
    const settled = await probeSearch(platform, repo.id, probeQueries);
    log(`settled: one-client search p50 ${settled.search.p50Ms} ms, p95 ${settled.search.p95Ms} ms`);
    const tokenService = createTokenService(platform.stores.postgres, { instances: config.instances });
    const tokens: string[] = [];
    for (let i = 0; i < clientCount; i++) tokens.push((await tokenService.create({ name: `mcp-bench-${i}`, scopes: ['read'], instances: ['*'], actor: 'bench' })).token);
    const stack = stackGroups(config.dataDir);
    const benchGroup: CpuGroup = { name: 'bench (clients)', pids: [process.pid], withDescendants: false };

    // --- Streamable HTTP: the real API process (`api/server.ts`), the clients in this one, as agents are ---
    const quietHttp = await waitForQuietMachine(BENCH);
    const apiProc = await startApiProcess(iso.env);
    apiProcess = apiProc;
    let t = performance.now();
    httpClients = await connectHttp(apiProc.url, tokens);
    const httpConnectMs = round(performance.now() - t);
    log(`http: ${clientCount} clients connected in ${httpConnectMs} ms; measuring…`);
    const http = await measureClients(httpClients, queries, warmup, [...stack, { name: 'API process', pids: [apiProc.pid], withDescendants: false }, benchGroup]);
    const httpOneClient = await oneClient(httpClients[0]!, spread(queries, ONE_CLIENT_QUERIES));
    log(`http: p50 ${http.all.p50Ms} ms, p95 ${http.all.p95Ms} ms (${http.callsPerSecond} calls/s); one client p50 ${httpOneClient.p50Ms} ms`);
    await closeHttp(httpClients);
    httpClients = [];
    await apiProc.stop();
    apiProcess = undefined;

    // --- stdio: one server process per client, as IDE agents spawn them ---
    await waitForQuietMachine(BENCH);
    log(`stdio: starting ${clientCount} server processes…`);
    const stderrs: string[] = [];
    const connectTimes: number[] = [];
    const serverPids: number[] = [];
    t = performance.now();
    await Promise.all(
      Array.from({ length: clientCount }, async (_, i) => {
        const transport = new StdioClientTransport({
          command: process.execPath,
          args: tsNodeArgs('mcp/stdio.ts'),
          cwd: PROJECT_ROOT,
          env: { ...(process.env as Record<string, string>), ...iso!.env, LOG_LEVEL: 'warn', LOG_PRETTY: 'false' },
          stderr: 'pipe',
        });
        stderrs[i] = '';
        transport.stderr?.on('data', (d) => (stderrs[i] += d));
        const client = new Client({ name: `mcp-bench-stdio-${i}`, version: '1.0.0' });
        const c0 = performance.now();
        await client.connect(transport);
        await client.listTools();
        connectTimes.push(performance.now() - c0);
        stdioClients.push(client);
        if (transport.pid) serverPids.push(transport.pid);
      }),
    ).catch((err) => {
      throw new Error(`stdio clients failed to connect: ${err instanceof Error ? err.message : err}\n${stderrs.join('\n').slice(-3000)}`);
    });
    const stdioStartMs = round(performance.now() - t);
    log(`stdio: connected in ${stdioStartMs} ms; measuring…`);
    const quietStdio = await waitForQuietMachine(BENCH);
    const stdio = await measureClients(stdioClients, queries, warmup, [
      ...stack,
      { name: `stdio servers (${serverPids.length})`, pids: serverPids, withDescendants: true },
      { ...benchGroup, name: 'bench (clients)' },
    ]);
    const stdioOneClient = await oneClient(stdioClients[0]!, spread(queries, ONE_CLIENT_QUERIES));
    log(`stdio: p50 ${stdio.all.p50Ms} ms, p95 ${stdio.all.p95Ms} ms (${stdio.callsPerSecond} calls/s); one client p50 ${stdioOneClient.p50Ms} ms`);
    await Promise.all(stdioClients.map((c) => c.close().catch(() => undefined)));
    stdioClients.length = 0;

    // --- Where the time goes ---
    log('diagnostics: search without MCP, parts under concurrency, retrievers one at a time…');
    await waitForQuietMachine(BENCH);
    const search = createSearchService(platform);
    await runConcurrently(warmup, clientCount, (q) => search.search({ query: q.text, limit: 10 }));
    const direct = await runConcurrently(queries, clientCount, (q) => search.search({ query: q.text, limit: 10 }));
    const directStats = latencyStats(direct.timings.map((x) => x.ms));

    const timer = createPartTimer();
    const instrumented = await startApi(platform, timer);
    api = instrumented.app;
    httpClients = await connectHttp(instrumented.url, tokens);
    const httpInstrumented = await measureClients(httpClients, queries, warmup, [...stack, benchGroup], () => timer.reset());
    const concurrentParts = timer.report();
    timer.reset();
    await oneClient(httpClients[0]!, spread(queries, ONE_CLIENT_QUERIES));
    const oneClientParts = timer.report();
    await closeHttp(httpClients);
    httpClients = [];
    await api.close();
    api = undefined;
    const alone = await retrieversOneAtATime(platform, repo.id, spread(queries, 40));

    // ----- report -----
    const targets: TargetResult[] = [judge('httpP95Ms', TARGETS.httpP95Ms, http.all.p95Ms), judge('stdioP95Ms', TARGETS.stdioP95Ms, stdio.all.p95Ms)];
    const date = new Date().toISOString().slice(0, 10);
    const results = {
      benchmark: 'mcp',
      date,
      startedAt,
      finishedAt: new Date().toISOString(),
      command,
      machine: {
        ...machine,
        busyPercentBeforeStart: initialQuiet.busyPercent,
        waitedForOtherBenchmarks: initialQuiet.waitedForBenchmarks,
        busyPercentBeforeHttp: quietHttp.busyPercent,
        busyPercentBeforeStdio: quietStdio.busyPercent,
      },
      config: { embeddingModel: platform.embeddings.id, rateLimitPerMinute: config.http.rateLimitPerMinute, tokens: `${clientCount} read tokens, one per client`, tool: 'semantic_search', limit: 10 },
      corpus: corpusSummary(corpus),
      index,
      queries: { measured: queries.length, warmup: warmup.length, examples: queries.slice(0, 6).map((q) => q.text) },
      targets,
      http: { connectMs: httpConnectMs, ...http, oneClient: httpOneClient },
      stdio: { startAndConnectMs: stdioStartMs, connectPerClient: latencyStats(connectTimes), ...stdio, oneClient: stdioOneClient },
      diagnostics: {
        postgresState: { afterIndex, settle, settled },
        searchServiceWithoutMcp: { clients: clientCount, ...directStats, callsPerSecond: round(direct.timings.length / (direct.wallMs / 1000)) },
        httpInstrumented: { all: httpInstrumented.all, parts: concurrentParts, cpu: httpInstrumented.cpu },
        httpOneClientParts: oneClientParts,
        retrieversOneAtATime: alone,
      },
      cleanupProblems,
    };
    mkdirSync(outDir, { recursive: true });
    const jsonFile = path.join(outDir, `mcp-${date}.json`);
    writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);

    const s = (st: LatencyStats | undefined) => (st ? `p50 ${st.p50Ms} ms, p95 ${st.p95Ms} ms` : 'n/a');
    const cores = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', ');
    const targetTable = targetRows(targets);
    const detailRows = [
      ['detail', 'value'],
      ['corpus', `${corpus.files.length} files, ${round(corpus.bytes / 2 ** 20)} MB, ${corpus.packages} packages${corpus.excluded.length ? `; excluded: ${corpus.excluded.join(', ')}` : ''}; indexed ${index.files} files, ${index.chunks} chunks in ${round(index.wallMs / 1000)} s`],
      ['HTTP, 10 clients (all / identifier / natural)', `${s(http.all)} / p95 ${http.identifier.p95Ms} / p95 ${http.natural.p95Ms} ms; ${http.callsPerSecond} calls/s; ${http.toolErrors} no-result answers, ${http.failures} failures`],
      ['HTTP, warm-up pass (other queries, API process just started)', `${s(http.warmupPass.all)}; ${http.warmupPass.callsPerSecond} calls/s`],
      ['HTTP, one client', s(httpOneClient)],
      ['HTTP, CPU during the 10-client run (cores)', cores(http.cpu.cores)],
      ['stdio, 10 clients (all / identifier / natural)', `${s(stdio.all)} / p95 ${stdio.identifier.p95Ms} / p95 ${stdio.natural.p95Ms} ms; ${stdio.callsPerSecond} calls/s; ${stdio.toolErrors} no-result answers, ${stdio.failures} failures`],
      ['stdio, warm-up pass (other queries, servers just warmed by their own start-up)', `${s(stdio.warmupPass.all)}; ${stdio.warmupPass.callsPerSecond} calls/s`],
      ['stdio, one client', s(stdioOneClient)],
      ['stdio, start-up + connect (excluded above)', `${stdioStartMs} ms for all ${clientCount}; per client ${s(latencyStats(connectTimes))}`],
      ['stdio, CPU during the 10-client run (cores)', cores(stdio.cpu.cores)],
      ['search service without MCP, 10 clients', `${s(directStats)}`],
      [
        'one-client search right after the index / once chunks is analyzed',
        `${s(afterIndex.search)} / ${s(settled.search)} (waited ${round(settle.waitedMs / 1000)} s for autovacuum's analyze${settle.analyzed ? '' : ', which did not come'})`,
      ],
      [
        'full-text statements right after the index (EXPLAIN ANALYZE)',
        afterIndex.fullText.plans.map((p) => `${p.executionMs} ms: ${p.nodes.slice(0, 6).join(' > ')}`).join('; ') || 'none',
      ],
      [
        'full-text statements once analyzed (EXPLAIN ANALYZE)',
        settled.fullText.plans.map((p) => `${p.executionMs} ms: ${p.nodes.slice(0, 6).join(' > ')}`).join('; ') || 'none',
      ],
      ...Object.entries(concurrentParts).map(([k, v]) => [`part under 10 HTTP clients: ${k}`, `${s(v)} (${v!.count} calls)`]),
      ...Object.entries(oneClientParts).map(([k, v]) => [`part, one HTTP client: ${k}`, s(v)]),
      ['one query at a time: query embedding', s(alone.queryEmbedding)],
      ['one query at a time: Chroma query (branch collection)', `${s(alone.chromaQuery)} (${alone.liveChunks} live chunks)`],
      ['one query at a time: Postgres full text', s(alone.postgresFullText)],
    ];
    process.stdout.write(textReport(`MCP benchmark — ${date}`, machine, [table(targetTable), table(detailRows)], jsonFile));
    writeFileSync(
      path.join(outDir, 'mcp.md'),
      markdownReport({
        heading: [`# MCP server benchmark (\`bench/mcp.bench.ts\`) — ${date}`],
        command,
        machine,
        about: [
          `Corpus: ${corpus.files.length} files from ${corpus.packages} packages in node_modules, indexed once by the worker process with local embeddings (\`${platform.embeddings.id}\`).`,
          `Measured once autovacuum has analyzed the new chunks (the diagnostics show searches before that). Calls: ${queries.length} \`semantic_search\` calls (limit 10), half identifiers and half Markdown headings from the corpus, shared among ${clientCount} concurrent SDK clients; latency from \`callTool\` to its result at the client. HTTP: the real API process (\`api/server.ts\`, 127.0.0.1), clients in the bench process, one read token per client. stdio: one \`mcp/stdio.ts\` process per client, start-up excluded. Each measured pass follows a warm-up pass of ${warmup.length} other calls at the same concurrency (reported below, not judged: the targets are a running server's steady state).`,
        ],
        blocks: [markdownTable(targetTable), markdownTable(detailRows)],
        jsonFile,
      }),
    );
  } finally {
    log('cleaning up');
    await Promise.all(stdioClients.map((c) => c.close().catch(() => undefined)));
    await closeHttp(httpClients);
    await api?.close().catch(() => undefined);
    await apiProcess?.stop().catch(() => undefined);
    if (iso) cleanupProblems.push(...(await iso.cleanup()));
    for (const p of cleanupProblems) log(`cleanup problem: ${p}`);
    rmSync(corpus.dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`mcp benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
