/**
 * Code graph benchmark (issue "Code graph in Neo4j"): how fast a full index
 * writes the graph, what the graph adds to a full index, and how fast
 * callers and dependents answer.
 *
 *   node --import tsx bench/graph.bench.ts [--files 6000] [--exclude GLOB]… [--clients 10] [--queries 300] [--pairs 2] [--no-overhead] [--out bench/results]
 *
 * Three full indexes of the same corpus (real files from node_modules,
 * committed to a temporary Git repository; local embeddings), each in a fresh
 * isolated platform (queue prefix, Postgres schema, Chroma collections,
 * workspace, graph namespace), all removed at the end:
 *
 * (a) with the workers as their own `workers/main.ts` process, as in
 *     production: the graph's nodes and edges counted in Neo4j afterwards,
 *     divided by the graph work's time from BullMQ's own timestamps (the
 *     `graph-batch` jobs of the run, and the run's publish step, which
 *     resolves calls and inheritance). Then (c) on that graph: callers and
 *     dependents at depth 2 with 10 concurrent clients, on symbol names and
 *     file paths drawn from the graph.
 * (b) twice more with the workers in this process, once with the graph
 *     extractor and once with one that extracts nothing (the worker process
 *     has no switch to turn the graph off), both with the same instrumented
 *     graph store, so the wall-time difference is what the graph costs and the
 *     store's timings say where it goes.
 *
 * Results go to stdout, `<out>/graph-<YYYY-MM-DD>.json` and `<out>/graph.md`.
 */
import { rmSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createGraphExtractor, type GraphExtractor } from '../shared/graph/extract.ts';
import { createGraphQueryService } from '../shared/graph/graph-query.service.ts';
import type { Platform } from '../shared/platform.ts';
import type { GraphStore } from '../shared/stores/graph.store.ts';
import { PROJECT_ROOT } from '../scripts/project.ts';
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
import { buildCorpus, corpusSummary, CORPUS_BRANCH, MIN_CORPUS_FILES, type Corpus } from './lib/corpus.ts';
import { childrenOfRun, openIsolatedPlatform, waitForIndexJob, type IsolatedPlatform, type RunChildren } from './lib/isolated.ts';
import { alternate } from './lib/search-queries.ts';

const BENCH = 'graph-bench';
const log = (m: string) => logAs(BENCH, m);

const TARGETS = {
  callersP95Ms: { max: 50, unit: 'ms', label: 'callers (depth 2) p95, 10 concurrent clients' },
  dependentsP95Ms: { max: 50, unit: 'ms', label: 'dependents (depth 2) p95, 10 concurrent clients' },
} as const;

const REPO_NAME = 'bench-corpus';
const QUERY_DEPTH = 2;
/** Untimed queries before a diagnostic: JIT and Neo4j's plan cache warm up on the first few. */
const DIAGNOSTIC_WARMUP = 20;
/** Sequential queries per kind for the one-client breakdown. */
const DIAGNOSTIC_QUERIES = 60;
const FULL_INDEX_TIMEOUT_MS = 40 * 60_000;

// ---------------------------------------------------------------------------
// Counting the graph of one repository in Neo4j
// ---------------------------------------------------------------------------

interface GraphCounts {
  nodes: number;
  edges: number;
  nodesByLabel: Record<string, number>;
  edgesByType: Record<string, number>;
  placeholderFiles: number;
}

async function countGraph(platform: Platform, repositoryId: number): Promise<GraphCounts> {
  const repoId = platform.graph.repoKey(repositoryId);
  const nodeRows = await platform.graph.read<{ label: string; placeholder: boolean; n: number }>(
    `MATCH (n) WHERE (n:File OR n:Symbol OR n:Module) AND n.repoId = $repoId
     RETURN [l IN labels(n) WHERE l IN ['File', 'Symbol', 'Module']][0] AS label, coalesce(n.placeholder, false) AS placeholder, count(*) AS n`,
    { repoId },
  );
  const repoRows = await platform.graph.read<{ n: number }>(`MATCH (r:Repository {id: $repoId}) RETURN count(r) AS n`, { repoId });
  const edgeRows = await platform.graph.read<{ type: string; n: number }>(
    `MATCH (a)-[r]->() WHERE (a:File OR a:Symbol) AND a.repoId = $repoId RETURN type(r) AS type, count(r) AS n
     UNION ALL
     MATCH (:Repository {id: $repoId})-[r]->() RETURN type(r) AS type, count(r) AS n`,
    { repoId },
  );
  const nodesByLabel: Record<string, number> = { Repository: Number(repoRows[0]?.n ?? 0) };
  let placeholderFiles = 0;
  for (const r of nodeRows) {
    nodesByLabel[r.label] = (nodesByLabel[r.label] ?? 0) + Number(r.n);
    if (r.placeholder) placeholderFiles += Number(r.n);
  }
  const edgesByType: Record<string, number> = {};
  for (const r of edgeRows) edgesByType[r.type] = (edgesByType[r.type] ?? 0) + Number(r.n);
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return { nodes: sum(nodesByLabel), edges: sum(edgesByType), nodesByLabel, edgesByType, placeholderFiles };
}

// ---------------------------------------------------------------------------
// An instrumented graph store: the time of each write method, in the workers
// ---------------------------------------------------------------------------

interface MethodTiming {
  calls: number;
  ms: number;
  firstStartedAt: number | null;
  lastFinishedAt: number | null;
}

function instrumentGraphStore(store: GraphStore) {
  const timings: Record<string, MethodTiming> = {};
  const wrap = <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const t = timings[name] ?? (timings[name] = { calls: 0, ms: 0, firstStartedAt: null, lastFinishedAt: null });
      const startedAt = Date.now();
      const started = performance.now();
      try {
        return await fn(...args);
      } finally {
        t.calls++;
        t.ms += performance.now() - started;
        t.firstStartedAt ??= startedAt;
        t.lastFinishedAt = Date.now();
      }
    };
  const graph: GraphStore = {
    ...store,
    replaceFiles: wrap('replaceFiles', store.replaceFiles),
    deleteFiles: wrap('deleteFiles', store.deleteFiles),
    dependentsOf: wrap('dependentsOf', store.dependentsOf),
    resolveEdges: wrap('resolveEdges', store.resolveEdges),
  };
  return {
    graph,
    report: () => Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, { ...v, ms: Math.round(v.ms) }])),
  };
}

/** Extracts nothing: the runs then stage, write and resolve no graph at all. */
const NO_GRAPH: GraphExtractor = { extract: async () => null, extractTree: () => null, close: () => undefined };

// ---------------------------------------------------------------------------
// Full index runs
// ---------------------------------------------------------------------------

interface FullRun {
  jobId: string;
  repositoryId: number;
  wallMs: number;
  /**
   * The publish step: the run's index job from its second start (after its
   * children) to its end. NaN when the children were all done before the job
   * could wait for them (then it published in its first start, not separable).
   */
  publishMs: number;
  files: number;
  chunks: number;
  graphBatches: RunChildren;
  embedBatches: RunChildren;
  result: Record<string, unknown>;
  /** Average cores each process group used over the run. */
  cpu: ReturnType<ReturnType<typeof measureCpu>['stop']>;
}

async function fullIndex(iso: IsolatedPlatform, corpus: Corpus, cpuGroups: CpuGroup[]): Promise<FullRun> {
  const repo = await iso.repos.add({ source: corpus.dir, name: REPO_NAME, branch: CORPUS_BRANCH });
  const cpu = measureCpu(cpuGroups);
  const enqueuedAt = Date.now();
  const { jobId } = await iso.repos.requestIndex(REPO_NAME);
  const job = await waitForIndexJob(iso.platform.queues.queues.index, jobId, FULL_INDEX_TIMEOUT_MS);
  const cpuUsed = cpu.stop();
  const branch = await iso.platform.repositories.getBranch(repo.id, CORPUS_BRANCH);
  const [graphBatches, embedBatches] = await Promise.all([
    childrenOfRun(iso.platform.queues.queues.graph, jobId),
    childrenOfRun(iso.platform.queues.queues.embed, jobId),
  ]);
  if ((branch?.fileCount ?? 0) !== corpus.files.length) log(`warning: ${branch?.fileCount} of ${corpus.files.length} corpus files were indexed`);
  if (graphBatches.failedAttempts + embedBatches.failedAttempts > 0) log(`warning: ${graphBatches.failedAttempts} graph and ${embedBatches.failedAttempts} embed batches failed an attempt`);
  // A second start after the children: processedOn is then well after the first start (the prepare step).
  const lastChildDone = Math.max(graphBatches.lastFinishedAt ?? 0, embedBatches.lastFinishedAt ?? 0);
  const publishSeparate = job.processedOn! >= lastChildDone;
  if (!publishSeparate) log('warning: the run published in its first start; the publish step cannot be timed apart');
  return {
    jobId,
    repositoryId: repo.id,
    wallMs: job.finishedOn! - enqueuedAt,
    publishMs: publishSeparate ? job.finishedOn! - job.processedOn! : NaN,
    files: branch?.fileCount ?? 0,
    chunks: branch?.chunkCount ?? 0,
    graphBatches,
    embedBatches,
    result: (job.returnvalue ?? {}) as Record<string, unknown>,
    cpu: cpuUsed,
  };
}

/**
 * Graph write rates from a run and the graph it left. Calls, extends and
 * implements edges are written by the publish step's resolution; everything
 * else by the graph batches. The publish step also publishes the chunks in
 * Postgres, so the combined rate is a lower bound.
 */
function writeRates(run: FullRun, counts: GraphCounts) {
  const resolved = (counts.edgesByType.CALLS ?? 0) + (counts.edgesByType.EXTENDS ?? 0) + (counts.edgesByType.IMPLEMENTS ?? 0);
  const total = counts.nodes + counts.edges;
  const perSecond = (n: number, ms: number) => (ms > 0 ? round(n / (ms / 1000)) : NaN);
  return {
    entities: total,
    batchEntities: total - resolved,
    resolvedEdges: resolved,
    graphBatchSpanMs: run.graphBatches.spanMs,
    graphBatchBusyMs: run.graphBatches.busyMs,
    publishMs: run.publishMs,
    /** (nodes + edges) / (graph-batch wall span + publish step): the headline rate. */
    perSecondSpan: perSecond(total, run.graphBatches.spanMs + run.publishMs),
    /** (nodes + edges) / (sum of graph-batch job times + publish step): per unit of worker time. */
    perSecondBusy: perSecond(total, run.graphBatches.busyMs + run.publishMs),
    batchPerSecondSpan: perSecond(total - resolved, run.graphBatches.spanMs),
    batchPerSecondBusy: perSecond(total - resolved, run.graphBatches.busyMs),
    resolvedPerSecondPublish: perSecond(resolved, run.publishMs),
  };
}

// ---------------------------------------------------------------------------
// (c) Query latency
// ---------------------------------------------------------------------------

/** Cycles through `xs` to get `n` items (a small set of files with dependents is reused). */
function take<T>(xs: T[], n: number): T[] {
  if (xs.length >= n) return spread(xs, n);
  return Array.from({ length: n }, (_, i) => xs[i % xs.length]!);
}

async function queryInputs(platform: Platform, repositoryId: number, n: number) {
  const params = { repoId: platform.graph.repoKey(repositoryId), branch: CORPUS_BRANCH };
  const all = await platform.graph.read<{ name: string }>(
    `MATCH (s:Symbol {repoId: $repoId, branch: $branch}) RETURN DISTINCT s.name AS name ORDER BY name`,
    params,
  );
  const called = await platform.graph.read<{ name: string }>(
    `MATCH (s:Symbol {repoId: $repoId, branch: $branch})<-[:CALLS]-() RETURN DISTINCT s.name AS name ORDER BY name`,
    params,
  );
  const files = await platform.graph.read<{ path: string }>(
    `MATCH (f:File {repoId: $repoId, branch: $branch})<-[:IMPORTS]-(:File)
     WHERE NOT coalesce(f.placeholder, false)
     RETURN DISTINCT f.path AS path ORDER BY path`,
    params,
  );
  // Half any symbol (most have no callers: a cheap miss), half symbols something calls (the walk does work), interleaved.
  const anyNames = spread(all.map((r) => r.name), Math.ceil(n / 2));
  const calledNames = take(called.map((r) => r.name), n - anyNames.length);
  const names: Array<{ name: string; kind: 'any' | 'called' }> = [];
  for (let i = 0; i < Math.max(anyNames.length, calledNames.length); i++) {
    if (anyNames[i] !== undefined) names.push({ name: anyNames[i]!, kind: 'any' });
    if (calledNames[i] !== undefined) names.push({ name: calledNames[i]!, kind: 'called' });
  }
  return {
    names,
    paths: take(files.map((r) => r.path), n),
    available: { distinctSymbolNames: all.length, calledSymbolNames: called.length, filesWithDependents: files.length },
  };
}

interface Parts {
  postgresMs: number;
  neo4jMs: number;
  neo4jQueries: number;
}

/** A query service whose Postgres (repository list) and Neo4j reads are timed into `parts`. */
function timedQueryService(platform: Platform, parts: Parts) {
  const graph: GraphStore = {
    ...platform.graph,
    read: async (cypher, params) => {
      const t = performance.now();
      try {
        return await platform.graph.read(cypher, params);
      } finally {
        parts.neo4jMs += performance.now() - t;
        parts.neo4jQueries++;
      }
    },
  };
  const repositories = {
    ...platform.repositories,
    list: async (...args: Parameters<Platform['repositories']['list']>) => {
      const t = performance.now();
      try {
        return await platform.repositories.list(...args);
      } finally {
        parts.postgresMs += performance.now() - t;
      }
    },
  };
  return createGraphQueryService({ ...platform, graph, repositories });
}

/**
 * Before the measured queries, a warm-up pass of as many other ones at the
 * same concurrency, timed but not judged: the bench process's JIT, Neo4j's
 * query plans and page cache and the driver's connection pool warm up in it.
 * The targets are a running server's steady state; the warm-up pass is
 * reported beside them.
 */
async function measureQueries(
  platform: Platform,
  inputs: Awaited<ReturnType<typeof queryInputs>>,
  warmup: Pick<Awaited<ReturnType<typeof queryInputs>>, 'names' | 'paths'>,
  clients: number,
  cpuGroups: CpuGroup[],
) {
  const service = createGraphQueryService(platform);
  const callers = (name: string) => service.callers(name, { depth: QUERY_DEPTH });
  const dependents = (p: string) => service.dependents(p, { depth: QUERY_DEPTH });
  const warmCallers = await runConcurrently(warmup.names, clients, (q) => callers(q.name));
  const warmDependents = await runConcurrently(warmup.paths, clients, (p) => dependents(p));
  const warmupPass = { callers: latencyStats(warmCallers.timings.map((t) => t.ms)), dependents: latencyStats(warmDependents.timings.map((t) => t.ms)) };

  // The measured runs: the plain service, as the API and MCP tools use it.
  let cpu = measureCpu(cpuGroups);
  const c = await runConcurrently(inputs.names, clients, (q) => callers(q.name));
  const callersCpu = cpu.stop();
  cpu = measureCpu(cpuGroups);
  const d = await runConcurrently(inputs.paths, clients, (p) => dependents(p));
  const dependentsCpu = cpu.stop();
  const errors = [...c.timings, ...d.timings].filter((t) => t.error).map((t) => t.error!);
  const resultSizes = (ts: typeof c.timings | typeof d.timings) => ts.map((t) => (t.result as { results: unknown[] } | undefined)?.results.length ?? 0);
  const callerSizes = resultSizes(c.timings);
  const dependentSizes = resultSizes(d.timings);

  // Where the time goes: the same queries again at the same concurrency, with Postgres and Neo4j timed per call.
  const breakdown = async (concurrency: number, inputsOf: { names: typeof inputs.names; paths: string[] }) => {
    const run = async <T>(items: T[], call: (svc: ReturnType<typeof createGraphQueryService>, item: T) => Promise<unknown>) => {
      const parts: Array<Parts & { totalMs: number }> = [];
      await runConcurrently(items, concurrency, async (item) => {
        const p: Parts = { postgresMs: 0, neo4jMs: 0, neo4jQueries: 0 };
        const t = performance.now();
        await call(timedQueryService(platform, p), item).catch(() => undefined);
        parts.push({ ...p, totalMs: performance.now() - t });
      });
      return {
        total: latencyStats(parts.map((p) => p.totalMs)),
        postgres: latencyStats(parts.map((p) => p.postgresMs)),
        neo4j: latencyStats(parts.map((p) => p.neo4jMs)),
        neo4jQueriesPerCall: round(parts.reduce((a, p) => a + p.neo4jQueries, 0) / Math.max(1, parts.length), 2),
      };
    };
    return {
      callers: await run(inputsOf.names, (svc, q) => svc.callers(q.name, { depth: QUERY_DEPTH })),
      dependents: await run(inputsOf.paths, (svc, p) => svc.dependents(p, { depth: QUERY_DEPTH })),
    };
  };
  const concurrentParts = await breakdown(clients, inputs);
  const oneClientParts = await breakdown(1, {
    names: spread(inputs.names, DIAGNOSTIC_QUERIES),
    paths: spread(inputs.paths, DIAGNOSTIC_QUERIES),
  });

  // The slowest callers queries: which names make the tail.
  const slowest = [...c.timings]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 5)
    .map((t) => ({ name: t.item.name, ms: round(t.ms), results: (t.result as { results: unknown[]; matches: unknown[] } | undefined)?.results.length ?? 0, matches: (t.result as { matches: unknown[] } | undefined)?.matches.length ?? 0 }));

  return {
    clients,
    depth: QUERY_DEPTH,
    inputs: inputs.available,
    callers: {
      queries: c.timings.length,
      queriesPerSecond: round(c.timings.length / (c.wallMs / 1000)),
      latency: latencyStats(c.timings.map((t) => t.ms)),
      anySymbol: latencyStats(c.timings.filter((t) => t.item.kind === 'any').map((t) => t.ms)),
      calledSymbol: latencyStats(c.timings.filter((t) => t.item.kind === 'called').map((t) => t.ms)),
      emptyResults: callerSizes.filter((n) => n === 0).length,
      meanResults: round(callerSizes.reduce((a, b) => a + b, 0) / Math.max(1, callerSizes.length)),
      slowest,
      examples: inputs.names.slice(0, 6).map((q) => q.name),
      cpu: callersCpu,
    },
    dependents: {
      queries: d.timings.length,
      queriesPerSecond: round(d.timings.length / (d.wallMs / 1000)),
      latency: latencyStats(d.timings.map((t) => t.ms)),
      emptyResults: dependentSizes.filter((n) => n === 0).length,
      meanResults: round(dependentSizes.reduce((a, b) => a + b, 0) / Math.max(1, dependentSizes.length)),
      examples: inputs.paths.slice(0, 4),
      cpu: dependentsCpu,
    },
    errors: { count: errors.length, first: [...new Set(errors)].slice(0, 5) },
    warmupPass,
    breakdown: { concurrent: concurrentParts, oneClient: oneClientParts },
  };
}

// ---------------------------------------------------------------------------
// Why callers cost what they cost: query plans, and the walk from an index seek
// ---------------------------------------------------------------------------

interface PlanNode {
  operatorType: string;
  dbHits?: number | null;
  rows?: number | null;
  arguments?: Record<string, unknown>;
  children: PlanNode[];
}

function flattenPlan(plan: PlanNode, out: Array<{ operator: string; dbHits: number; rows: number; details?: string }> = []) {
  const details = plan.arguments?.Details;
  out.push({ operator: plan.operatorType, dbHits: Number(plan.dbHits ?? 0), rows: Number(plan.rows ?? 0), ...(typeof details === 'string' ? { details: details.slice(0, 160) } : {}) });
  for (const c of plan.children) flattenPlan(c, out);
  return out;
}

/** The callers walk from a name-only index seek, in one query: a reference for what one round trip costs. */
function nameOnlyCallersCypher(limit = 50): string {
  return `UNWIND $targets AS t
    MATCH (root:Symbol {repoId: t.repoId, branch: t.branch, name: $name})
    MATCH p = (s:Symbol)-[:CALLS*1..${QUERY_DEPTH}]->(root)
    WHERE s <> root
    WITH s, min(length(p)) AS depth
    RETURN s.repoId AS repoId, s.path AS path, s.name AS name, s.qualifiedName AS qualifiedName, s.kind AS kind, s.startLine AS startLine, s.endLine AS endLine, depth
    ORDER BY depth, path, startLine
    LIMIT ${limit}`;
}

/**
 * What the service really sends to Neo4j for one callers and one dependents
 * call (captured, whatever version of the service runs), each PROFILEd: db
 * hits and how the first nodes are found (an index seek, or a scan).
 */
async function queryPlans(platform: Platform, name: string, filePath: string) {
  const { driver, database } = platform.stores.neo4j;
  const captured: Array<{ call: string; cypher: string; params: Record<string, unknown> }> = [];
  let call = '';
  const graph: GraphStore = {
    ...platform.graph,
    read: async (cypher, params) => {
      captured.push({ call, cypher, params });
      return platform.graph.read(cypher, params);
    },
  };
  const service = createGraphQueryService({ ...platform, graph });
  call = 'callers';
  await service.callers(name, { depth: QUERY_DEPTH }).catch(() => undefined);
  call = 'dependents';
  await service.dependents(filePath, { depth: QUERY_DEPTH }).catch(() => undefined);
  const plans = [];
  for (const [i, c] of captured.entries()) {
    const { summary } = await driver.executeQuery(`PROFILE ${c.cypher}`, c.params, { database });
    const ops = summary.profile ? flattenPlan(summary.profile as unknown as PlanNode) : [];
    plans.push({
      call: c.call,
      query: i,
      totalDbHits: ops.reduce((a, o) => a + o.dbHits, 0),
      finds: [...new Set(ops.filter((o) => /Scan|Seek/.test(o.operator)).map((o) => o.operator))],
      operators: ops,
      cypher: c.cypher.replace(/\s+/g, ' ').slice(0, 400),
    });
  }
  return { name, path: filePath, plans };
}

async function callersDiagnostics(platform: Platform, repositoryId: number, names: Array<{ name: string }>, paths: string[], clients: number) {
  const { driver, database } = platform.stores.neo4j;
  const sample = names.find((n) => n.name.length > 3)?.name ?? names[0]!.name;
  const plans = await queryPlans(platform, sample, paths[0]!);
  const params = (name: string) => ({ targets: [{ repoId: platform.graph.repoKey(repositoryId), branch: CORPUS_BRANCH }], name });
  const nameOnly = (name: string) => driver.executeQuery(nameOnlyCallersCypher(), params(name), { database, routing: 'READ' });
  for (const q of names.slice(0, DIAGNOSTIC_WARMUP)) await nameOnly(q.name);
  const one = await runConcurrently(spread(names, DIAGNOSTIC_QUERIES), 1, (q) => nameOnly(q.name));
  const concurrent = await runConcurrently(names, clients, (q) => nameOnly(q.name));
  return {
    plans,
    nameOnlyIndexSeek: {
      note: 'the callers walk from (root:Symbol {repoId, branch, name}) in one Neo4j query: no repository list, no separate roots query, qualified names not matched',
      oneClient: latencyStats(one.timings.map((t) => t.ms)),
      concurrent: latencyStats(concurrent.timings.map((t) => t.ms)),
      queriesPerSecond: round(concurrent.timings.length / (concurrent.wallMs / 1000)),
    },
  };
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
      pairs: { type: 'string', default: '2' },
      'no-overhead': { type: 'boolean', default: false },
    },
  });
  const wanted = Number(values.files);
  if (!Number.isInteger(wanted) || wanted < MIN_CORPUS_FILES) throw new Error(`--files must be an integer ≥ ${MIN_CORPUS_FILES}`);
  const clients = Number(values.clients);
  const queries = Number(values.queries);
  const pairs = Number(values.pairs);
  const outDir = path.resolve(PROJECT_ROOT, values.out);
  const command = ['node', '--import', 'tsx', 'bench/graph.bench.ts', ...process.argv.slice(2)].join(' ');
  const machine = machineInfo();
  const startedAt = new Date().toISOString();

  const initialQuiet = await waitForQuietMachine(BENCH);
  log(`building a corpus of ${wanted} files from node_modules`);
  const corpus = buildCorpus(wanted, values.exclude ?? []);
  log(`corpus: ${corpus.files.length} files (${round(corpus.bytes / 2 ** 20)} MB) from ${corpus.packages} packages`);
  const cleanupProblems: string[] = [];
  let open: IsolatedPlatform | undefined;

  try {
    // (a) + (c): production-shaped run, then queries on its graph.
    open = await openIsolatedPlatform('gbench');
    const a = open;
    const worker = await a.spawnWorkers();
    log(`worker process ${worker.child.pid} ready (concurrency ${a.config.workerConcurrency})`);
    const quietA = await waitForQuietMachine(BENCH);
    log('(a) full index with the worker process…');
    const stack = stackGroups(a.config.dataDir);
    const runA = await fullIndex(a, corpus, [...stack, { name: 'workers', pids: [worker.child.pid!], withDescendants: true }, { name: 'bench', pids: [process.pid], withDescendants: false }]);
    const countsA = await countGraph(a.platform, runA.repositoryId);
    const ratesA = writeRates(runA, countsA);
    log(`(a) ${runA.files} files in ${runA.wallMs} ms; graph ${countsA.nodes} nodes + ${countsA.edges} edges; ${ratesA.perSecondSpan}/s over batches' span + publish`);
    await worker.stop('SIGTERM');

    log('(c) query latency…');
    // Twice the queries: every other one for the warm-up pass (names by pairs: they interleave two kinds).
    const drawn = await queryInputs(a.platform, runA.repositoryId, queries * 2);
    const names = alternate(drawn.names, 2);
    const paths = alternate(drawn.paths);
    const inputs = { ...drawn, names: names.measured, paths: paths.measured };
    const warmup = { names: names.warmup, paths: paths.warmup };
    await waitForQuietMachine(BENCH);
    const cpuGroups: CpuGroup[] = [...stack, { name: 'bench', pids: [process.pid], withDescendants: false }];
    const q = await measureQueries(a.platform, inputs, warmup, clients, cpuGroups);
    log('(c) diagnostics: query plans, callers from an index seek…');
    const callersDiag = await callersDiagnostics(a.platform, runA.repositoryId, inputs.names, inputs.paths, clients);
    log(`(c) callers p50 ${q.callers.latency.p50Ms} p95 ${q.callers.latency.p95Ms} ms; dependents p50 ${q.dependents.latency.p50Ms} p95 ${q.dependents.latency.p95Ms} ms`);
    const deleteStarted = performance.now();
    await a.platform.graph.deleteRepository(runA.repositoryId);
    const graphDeleteMs = Math.round(performance.now() - deleteStarted);
    cleanupProblems.push(...(await a.cleanup()));
    open = undefined;

    // (b): the same run in this process, without and with the graph.
    const overhead: Array<{ pair: number; variant: 'no-graph' | 'graph'; run: FullRun; storeTimings: Record<string, MethodTiming>; counts?: GraphCounts; rates?: ReturnType<typeof writeRates>; busyBeforePercent: number }> = [];
    if (!values['no-overhead']) {
      for (let pair = 0; pair < pairs; pair++) {
        // Alternate the order, so a store that warms up (or fills up) over the runs favours neither variant.
        const order: Array<'no-graph' | 'graph'> = pair % 2 === 0 ? ['no-graph', 'graph'] : ['graph', 'no-graph'];
        for (const variant of order) {
          open = await openIsolatedPlatform('gbench');
          const iso = open;
          const instrumented = instrumentGraphStore(iso.platform.graph);
          const extractor = variant === 'graph' ? createGraphExtractor() : NO_GRAPH;
          const workers = await iso.startInProcessWorkers({ graphExtractor: extractor, graph: instrumented.graph });
          const quiet = await waitForQuietMachine(BENCH);
          log(`(b) full index in-process, ${variant} (pair ${pair + 1}/${pairs})…`);
          const run = await fullIndex(iso, corpus, [...stack, { name: 'bench + workers', pids: [process.pid], withDescendants: true }]);
          await workers.close();
          extractor.close();
          const counts = variant === 'graph' ? await countGraph(iso.platform, run.repositoryId) : undefined;
          overhead.push({
            pair,
            variant,
            run,
            storeTimings: instrumented.report(),
            ...(counts ? { counts, rates: writeRates(run, counts) } : {}),
            busyBeforePercent: quiet.busyPercent,
          });
          log(`(b) ${variant}: ${run.files} files in ${run.wallMs} ms (publish ${run.publishMs} ms)`);
          cleanupProblems.push(...(await iso.cleanup()));
          open = undefined;
        }
      }
    }

    // ----- report -----
    const byVariant = (v: 'no-graph' | 'graph') => overhead.filter((o) => o.variant === v);
    const mean = (xs: number[]) => (xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : NaN);
    const noGraphMs = Math.round(mean(byVariant('no-graph').map((o) => o.run.wallMs)));
    const graphMs = Math.round(mean(byVariant('graph').map((o) => o.run.wallMs)));
    const addedMs = graphMs - noGraphMs;
    const addedPercent = round((100 * addedMs) / noGraphMs);

    const targets: TargetResult[] = [
      judge('callersP95Ms', TARGETS.callersP95Ms, q.callers.latency.p95Ms),
      judge('dependentsP95Ms', TARGETS.dependentsP95Ms, q.dependents.latency.p95Ms),
    ];
    const date = new Date().toISOString().slice(0, 10);
    const results = {
      benchmark: 'graph',
      date,
      startedAt,
      finishedAt: new Date().toISOString(),
      command,
      machine: { ...machine, busyPercentBeforeStart: initialQuiet.busyPercent, waitedForOtherBenchmarks: initialQuiet.waitedForBenchmarks, busyPercentBeforeRunA: quietA.busyPercent },
      config: { workerConcurrency: a.config.workerConcurrency, indexBatchChunks: a.config.index.batchChunks, embeddingModel: a.platform.embeddings.id, graphFilesPerBatch: 200 },
      corpus: corpusSummary(corpus),
      targets,
      writeRate: { run: runA, graph: countsA, rates: ratesA, graphDeleteMs },
      overhead: {
        note: 'workers in the bench process; no-graph uses an extractor that returns null for every file',
        pairs: overhead.length / 2,
        noGraphWallMs: noGraphMs,
        graphWallMs: graphMs,
        addedMs,
        addedPercent,
        runs: overhead,
      },
      queries: { ...q, callersDiagnostics: callersDiag },
      cleanupProblems,
    };

    mkdirSync(outDir, { recursive: true });
    const jsonFile = path.join(outDir, `graph-${date}.json`);
    writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);

    const s = (st: LatencyStats) => `p50 ${st.p50Ms} ms, p95 ${st.p95Ms} ms, max ${st.maxMs} ms`;
    const cores = (c: Record<string, number>) => Object.entries(c).filter(([, v]) => v >= 0.01).map(([k, v]) => `${k} ${v}`).join(', ');
    const targetTable = targetRows(targets);
    const graphRun = byVariant('graph')[0];
    const detailRows = [
      ['detail', 'value'],
      ['corpus', `${corpus.files.length} files, ${round(corpus.bytes / 2 ** 20)} MB, ${corpus.packages} packages${corpus.excluded.length ? `; excluded: ${corpus.excluded.join(', ')}` : ''}`],
      ['(a) full index, worker process', `${runA.files} files, ${runA.chunks} chunks in ${round(runA.wallMs / 1000)} s`],
      ['(a) graph in Neo4j', `${countsA.nodes} nodes (${Object.entries(countsA.nodesByLabel).map(([k, v]) => `${k} ${v}`).join(', ')}); ${countsA.edges} edges (${Object.entries(countsA.edgesByType).map(([k, v]) => `${k} ${v}`).join(', ')})`],
      ['(a) graph-batch jobs', `${runA.graphBatches.jobs} jobs, span ${runA.graphBatches.spanMs} ms, busy ${runA.graphBatches.busyMs} ms (sum), ${runA.graphBatches.failedAttempts} failed attempts`],
      ['(a) publish step (resolution + Postgres publish)', `${runA.publishMs} ms`],
      ['(a) CPU over the run (cores)', cores(runA.cpu.cores)],
      ['(a) write rate, (nodes+edges) / (batch span + publish)', `${ratesA.perSecondSpan} /s`],
      ['(a) write rate, (nodes+edges) / (batch busy sum + publish)', `${ratesA.perSecondBusy} /s`],
      ['(a) batches only: nodes+edges they wrote / span, / busy', `${ratesA.batchPerSecondSpan} /s, ${ratesA.batchPerSecondBusy} /s (${ratesA.batchEntities} entities)`],
      ['(a) resolution only: calls+extends+implements / publish', `${ratesA.resolvedPerSecondPublish} /s (${ratesA.resolvedEdges} edges)`],
      ['(b) full index in-process, no graph', overhead.length ? `${byVariant('no-graph').map((o) => round(o.run.wallMs / 1000)).join(', ')} s` : 'skipped'],
      ['(b) full index in-process, with graph', overhead.length ? `${byVariant('graph').map((o) => round(o.run.wallMs / 1000)).join(', ')} s` : 'skipped'],
      ['(b) the graph adds', overhead.length ? `${round(addedMs / 1000)} s (${addedPercent}%)` : 'skipped'],
      ...(graphRun
        ? [
            [
              '(b) graph store time in the with-graph run',
              Object.entries(graphRun.storeTimings).map(([k, v]) => `${k} ${v.calls}× ${v.ms} ms`).join(', '),
            ],
            ['(b) CPU over the run, no graph / with graph (cores)', `${byVariant('no-graph').map((o) => cores(o.run.cpu.cores)).join('; ')} / ${byVariant('graph').map((o) => cores(o.run.cpu.cores)).join('; ')}`],
            ['(b) publish step, no graph / with graph', `${byVariant('no-graph').map((o) => o.run.publishMs).join(', ')} / ${byVariant('graph').map((o) => o.run.publishMs).join(', ')} ms`],
          ]
        : []),
      ['(c) inputs', `${q.inputs.distinctSymbolNames} symbol names (${q.inputs.calledSymbolNames} with callers), ${q.inputs.filesWithDependents} files with dependents`],
      ['(c) callers, all / any symbol / called symbol', `${s(q.callers.latency)} / p95 ${q.callers.anySymbol.p95Ms} / p95 ${q.callers.calledSymbol.p95Ms} ms; ${q.callers.queriesPerSecond} q/s; ${q.callers.emptyResults} empty`],
      ['(c) dependents', `${s(q.dependents.latency)}; ${q.dependents.queriesPerSecond} q/s; ${q.dependents.emptyResults} empty`],
      ['(c) warm-up pass (other queries, same concurrency, not judged): callers / dependents', `${s(q.warmupPass.callers)} / ${s(q.warmupPass.dependents)}`],
      ['(c) callers parts, 10 clients: Postgres / Neo4j', `p95 ${q.breakdown.concurrent.callers.postgres.p95Ms} / ${q.breakdown.concurrent.callers.neo4j.p95Ms} ms`],
      ['(c) dependents parts, 10 clients: Postgres / Neo4j', `p95 ${q.breakdown.concurrent.dependents.postgres.p95Ms} / ${q.breakdown.concurrent.dependents.neo4j.p95Ms} ms`],
      ['(c) one client: callers / dependents', `p50 ${q.breakdown.oneClient.callers.total.p50Ms} / ${q.breakdown.oneClient.dependents.total.p50Ms} ms, p95 ${q.breakdown.oneClient.callers.total.p95Ms} / ${q.breakdown.oneClient.dependents.total.p95Ms} ms`],
      ['(c) CPU during callers / dependents (cores)', `${cores(q.callers.cpu.cores)} / ${cores(q.dependents.cpu.cores)}`],
      ...callersDiag.plans.plans.map((p) => [
        `(c) PROFILE of the service's ${p.call} query ${p.query + 1}`,
        `${p.totalDbHits} db hits; finds nodes by ${p.finds.join(' + ') || '(nothing)'}`,
      ]),
      [
        '(c) callers walk from an index seek, one query (diagnostic)',
        `one client ${s(callersDiag.nameOnlyIndexSeek.oneClient)}; 10 clients ${s(callersDiag.nameOnlyIndexSeek.concurrent)}, ${callersDiag.nameOnlyIndexSeek.queriesPerSecond} q/s`,
      ],
      ['(c) errors', `${q.errors.count}${q.errors.first.length ? `: ${q.errors.first.join('; ')}` : ''}`],
      ['graph delete (deleteRepository) after (a)', `${graphDeleteMs} ms`],
    ];

    process.stdout.write(textReport(`Graph benchmark — ${date}`, machine, [table(targetTable), table(detailRows)], jsonFile));
    writeFileSync(
      path.join(outDir, 'graph.md'),
      markdownReport({
        heading: [`# Code graph benchmark (\`bench/graph.bench.ts\`) — ${date}`],
        command,
        machine,
        about: [
          `Corpus: ${corpus.files.length} files (${round(corpus.bytes / 2 ** 20)} MB) from ${corpus.packages} packages in node_modules; local embeddings (\`${a.platform.embeddings.id}\`), WORKER_CONCURRENCY=${a.config.workerConcurrency}.`,
          '(a) and (c): workers as a separate `workers/main.ts` process. (b): workers in the bench process, with and without the graph extractor. (c): the measured queries follow a warm-up pass of as many other ones at the same concurrency (reported, not judged: the targets are a running server\'s steady state).',
        ],
        blocks: [markdownTable(targetTable), markdownTable(detailRows)],
        jsonFile,
      }),
    );
  } finally {
    log('cleaning up');
    if (open) cleanupProblems.push(...(await open.cleanup()));
    for (const p of cleanupProblems) log(`cleanup problem: ${p}`);
    rmSync(corpus.dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`graph benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
