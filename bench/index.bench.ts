/**
 * Indexing benchmark: how fast a real corpus becomes searchable, how much
 * memory the worker needs for it, how fast a one-file change shows up, what a
 * reindex of unchanged content costs, and how fast search answers.
 *
 *   node --import tsx bench/index.bench.ts [--files 6000] [--out bench/results] [--exclude GLOB]… [--no-diagnostics]
 *
 * `--exclude` keeps corpus paths (`<package>/<path>`) out of the selection,
 * for working around a file the platform cannot index yet; the results
 * record it, so a run with exclusions is never mistaken for one without.
 *
 * The platform runs as it does in production: this process enqueues and
 * searches through the same services the API uses, and the workers run as a
 * separate `workers/main.ts` process, so their memory is theirs alone. Both
 * work against the local stack's real stores, isolated in a private queue
 * prefix, Postgres schema, Chroma collection prefix and workspace, all removed
 * at the end. Embeddings are the local provider: no network, no API key, and
 * the numbers measure this platform rather than a remote model.
 *
 * Results go to stdout, to `<out>/index-<YYYY-MM-DD>.json` and to
 * `<out>/README.md` (the latest run, with its command and machine).
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Queue } from 'bullmq';
import type { Config } from '../shared/config/config.ts';
import { createChunker } from '../shared/indexing/chunker.ts';
import type { RepositoryService } from '../shared/indexing/repository.service.ts';
import type { Platform } from '../shared/platform.ts';
import { createSearchService, fullTextQuery } from '../shared/search/hybrid-search.ts';
import { createVectorStore, type VectorRecord } from '../shared/stores/vector.store.ts';
import { vectorMetadata } from '../workers/jobs/embed-batch.job.ts';
import { PROJECT_ROOT } from '../scripts/project.ts';
import {
  CLOCK_TICKS,
  judge,
  latencyStats,
  log as logAs,
  machineInfo,
  machineTicks,
  markdownReport,
  markdownTable,
  percentile,
  round,
  runConcurrently,
  sleep,
  table,
  targetRows,
  textReport,
  waitForQuietMachine,
  type TargetResult,
} from './lib/common.ts';
import { coresBetween, groupSeconds, processTable, stackGroups, type CpuGroup, type CpuTicks } from './lib/cpu.ts';
import { buildCorpus, corpusSummary, CORPUS_BRANCH, git, MIN_CORPUS_FILES, type Corpus } from './lib/corpus.ts';
import { jobsOfRun, openIsolatedPlatform, summarizeJobs, waitForIndexJob, type IsolatedPlatform } from './lib/isolated.ts';
import { corpusSearchQueries, type SearchQuery } from './lib/search-queries.ts';

const BENCH = 'bench';
const log = (m: string) => logAs(BENCH, m);

// ---------------------------------------------------------------------------
// Targets (from the issue) and knobs
// ---------------------------------------------------------------------------

const TARGETS = {
  filesPerSecond: { min: 150, unit: 'files/s', label: 'full index throughput' },
  peakWorkerRssMb: { max: 600, unit: 'MB', label: 'peak worker RSS (VmHWM)' },
  changeToSearchableMs: { max: 3000, unit: 'ms', label: 'one-file change → searchable (median)' },
  noChangeReindexMs: { max: 2000, unit: 'ms', label: 'no-change reindex (median)' },
  unchangedFullReindexEmbedded: { max: 0, unit: 'texts', label: 'embedded on --full reindex of unchanged content' },
  searchP95Ms: { max: 50, unit: 'ms', label: 'search p95, 10 concurrent clients' },
} as const;
type TargetName = keyof typeof TARGETS;

const REPO_NAME = 'bench-corpus';
/** One sample every 200 ms catches the peak of a phase lasting seconds; VmHWM catches the rest. */
const RSS_SAMPLE_MS = 200;
const CHANGE_RUNS = 3;
const NO_CHANGE_RUNS = 3;
const SEARCH_CLIENTS = 10;
const SEARCH_QUERIES = 300;
/*
 * A warm-up pass of as many other queries at the same concurrency goes first,
 * timed but not judged: the searching process's JIT, a pool connection (a
 * Postgres backend with its own caches and prepared statements) per client and
 * Chroma's HNSW pages all warm up in it. A search server runs for days; the
 * target is its steady state, and the warm-up pass is reported beside it.
 */
/** Above this many cores of other work on average, a run is flagged as measured on a shared machine. */
const CONTAMINATED_OTHER_CORES = 0.2;
const FULL_INDEX_TIMEOUT_MS = 30 * 60_000;
const SHORT_JOB_TIMEOUT_MS = 5 * 60_000;

// ---------------------------------------------------------------------------
// Process metrics from /proc: memory of the worker, CPU of every process
// ---------------------------------------------------------------------------

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples the worker's resident memory and remembers the peak of each phase,
 * which says which part of a run needs the memory.
 */
function sampleRss(pid: number) {
  let phase = 'startup';
  let samples = 0;
  const peakKbByPhase: Record<string, number> = {};
  const timer = setInterval(() => {
    const kb = statusKb(pid, 'VmRSS');
    if (kb === undefined) return;
    samples++;
    peakKbByPhase[phase] = Math.max(peakKbByPhase[phase] ?? 0, kb);
  }, RSS_SAMPLE_MS);
  timer.unref();
  return {
    setPhase(name: string) {
      phase = name;
    },
    stop() {
      clearInterval(timer);
      const peakKb = Math.max(0, ...Object.values(peakKbByPhase));
      return { samples, peakKb, peakKbByPhase };
    },
  };
}

interface CpuSnapshot extends CpuTicks {
  label: string;
  at: number;
  /** CPU ticks of every process outside the groups, to name what else ran. */
  others: Map<number, number>;
}

/** CPU time includes reaped children: the worker forks `git cat-file`. */
function cpuSnapshot(label: string, groups: CpuGroup[]): CpuSnapshot {
  const procs = processTable({ reapedChildren: true });
  const { seconds, counted } = groupSeconds(groups, procs);
  const others = new Map<number, number>();
  for (const [pid, p] of procs) if (!counted.has(pid)) others.set(pid, p.ticks);
  return { label, at: Date.now(), seconds, machine: machineTicks(), others };
}

interface PhaseReport {
  phase: string;
  wallMs: number;
  /** Average cores in use by each process group over the phase (2.0 = both cores of this machine). */
  cores: Record<string, number>;
  machineBusyPercent: number;
  /** The busiest processes outside the groups (someone else's work on a shared machine), in cores. */
  topOthers: Array<{ pid: number; command: string; cores: number }>;
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 80) || readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '(exited)';
  }
}

function phaseReports(snapshots: CpuSnapshot[]): PhaseReport[] {
  const out: PhaseReport[] = [];
  for (let i = 1; i < snapshots.length; i++) {
    const a = snapshots[i - 1]!;
    const b = snapshots[i]!;
    const wallS = Math.max(1e-3, (b.at - a.at) / 1000);
    // The machine may be shared: whatever the listed processes did not use was used by someone else (`other`).
    const { cores } = coresBetween(a, b, wallS);
    const total = b.machine.total - a.machine.total;
    const topOthers = [...b.others]
      .map(([pid, ticks]) => ({ pid, cores: (ticks - (a.others.get(pid) ?? ticks)) / CLOCK_TICKS / wallS }))
      .filter((o) => o.cores >= 0.05)
      .sort((x, y) => y.cores - x.cores)
      .slice(0, 3)
      .map((o) => ({ pid: o.pid, command: commandOf(o.pid), cores: round(o.cores, 2) }));
    out.push({
      phase: `${a.label} → ${b.label}`,
      wallMs: b.at - a.at,
      cores,
      machineBusyPercent: total > 0 ? round((100 * (b.machine.busy - a.machine.busy)) / total, 1) : 0,
      topOthers,
    });
  }
  return out;
}

/**
 * Cores used by each group, second by second: phases that run several stores
 * in turn (publish writes Neo4j, then Postgres) show which one takes how long.
 */
function cpuTimeline(groups: CpuGroup[], everyMs = 1000) {
  const snapshots: CpuSnapshot[] = [cpuSnapshot('0', groups)];
  const started = snapshots[0]!.at;
  const timer = setInterval(() => snapshots.push(cpuSnapshot(String(Date.now() - started), groups)), everyMs);
  timer.unref();
  return {
    stop(): Array<{ atMs: number; cores: Record<string, number> }> {
      clearInterval(timer);
      return phaseReports(snapshots).map((p, i) => ({ atMs: snapshots[i + 1]!.at - started, cores: p.cores }));
    },
  };
}

// ---------------------------------------------------------------------------
// Jobs: watching one run, and what its children did
// ---------------------------------------------------------------------------

interface WatchedRun {
  jobId: string;
  enqueuedAt: number;
  finishedOn: number;
  returnvalue: Record<string, unknown>;
  /** When each phase or state was first seen by polling. */
  boundaries: Array<{ label: string; at: number }>;
}

/**
 * Polls an index job until it completes. Phases come from the job's
 * progress (fetching → scanning → chunking → embedding), the hand-over to the
 * embedding batches from its state (`waiting-children` until every child is
 * done, then the publish step). The end time is the worker's own
 * `finishedOn`, so it is exact whatever the polling interval.
 */
async function watchIndexJob(
  queue: Queue,
  jobId: string,
  enqueuedAt: number,
  options: { intervalMs: number; timeoutMs: number; onBoundary?: (label: string) => void },
): Promise<WatchedRun> {
  const boundaries: Array<{ label: string; at: number }> = [];
  const mark = (label: string) => {
    if (boundaries.some((b) => b.label === label)) return;
    boundaries.push({ label, at: Date.now() });
    options.onBoundary?.(label);
  };
  let sawWaitingChildren = false;
  const job = await waitForIndexJob(queue, jobId, options.timeoutMs, options.intervalMs, (polled, state) => {
    const phase = (polled.progress as { phase?: string } | undefined)?.phase;
    if (state === 'waiting-children') {
      sawWaitingChildren = true;
      mark('waiting-children');
    } else if (sawWaitingChildren) {
      mark('children-done');
    } else if (phase && phase !== 'done') {
      mark(phase);
    }
  });
  return { jobId, enqueuedAt, finishedOn: job.finishedOn ?? Date.now(), returnvalue: (job.returnvalue ?? {}) as Record<string, unknown>, boundaries };
}

interface ChildSummary {
  queue: string;
  jobs: number;
  /** Children with a failed attempt, whether or not a retry then succeeded. */
  failed: number;
  /** From the first child starting to the last one finishing. */
  spanMs: number;
  /** Sum of each child's own run time: more than the span when children run concurrently. */
  busyMs: number;
  firstStartedAt: number | null;
  lastFinishedAt: number | null;
  /** Sum of every numeric field of the children's return values (`embedded`, `cached`, `chunks`, …). */
  totals: Record<string, number>;
  /** Why attempts failed (a child retried to success keeps its last failure reason). */
  failureReasons: string[];
}

/** The child jobs of one run (embedding batches and whatever else the run fanned out), found by their `runId`. */
async function childrenOf(platform: Platform, runId: string): Promise<ChildSummary[]> {
  const out: ChildSummary[] = [];
  for (const [name, queue] of Object.entries(platform.queues.queues) as Array<[string, Queue]>) {
    const jobs = await jobsOfRun(queue, runId);
    if (jobs.length === 0) continue;
    const run = summarizeJobs(jobs);
    const reasons = new Set(jobs.flatMap((j) => (j.failedReason ? [j.failedReason.slice(0, 300)] : [])));
    out.push({
      queue: name,
      jobs: run.jobs,
      failed: run.failedAttempts,
      spanMs: run.spanMs,
      busyMs: run.busyMs,
      firstStartedAt: run.firstStartedAt,
      lastFinishedAt: run.lastFinishedAt,
      totals: run.totals,
      failureReasons: [...reasons].slice(0, 5),
    });
  }
  return out;
}

function embeddedBy(children: ChildSummary[]): number {
  return children.find((c) => c.queue === 'embed')?.totals.embedded ?? 0;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const median = (xs: number[]) => percentile(xs, 50);

function randomLetters(n: number): string {
  return Array.from({ length: n }, () => String.fromCharCode(97 + randomInt(26))).join('');
}

// ---------------------------------------------------------------------------
// The measurements
// ---------------------------------------------------------------------------

interface Context {
  config: Config;
  platform: Platform;
  repos: RepositoryService;
  search: ReturnType<typeof createSearchService>;
  indexQueue: Queue;
  repositoryId: number;
}

async function measureFullIndex(ctx: Context, corpus: Corpus, onBoundary: (label: string) => void) {
  const enqueuedAt = Date.now();
  onBoundary('enqueued');
  const { jobId } = await ctx.repos.requestIndex(REPO_NAME);
  const run = await watchIndexJob(ctx.indexQueue, jobId, enqueuedAt, { intervalMs: 100, timeoutMs: FULL_INDEX_TIMEOUT_MS, onBoundary });
  onBoundary('done');
  const branch = await ctx.platform.repositories.getBranch(ctx.repositoryId, CORPUS_BRANCH);
  const children = await childrenOf(ctx.platform, jobId);
  const wallMs = run.finishedOn - enqueuedAt;
  const files = branch?.fileCount ?? 0;
  const chunks = branch?.chunkCount ?? 0;
  if (files !== corpus.files.length) log(`warning: ${files} of ${corpus.files.length} corpus files were indexed`);
  return {
    jobId,
    wallMs,
    files,
    chunks,
    filesPerSecond: round(files / (wallMs / 1000)),
    chunksPerSecond: round(chunks / (wallMs / 1000)),
    embedded: embeddedBy(children),
    result: run.returnvalue,
    boundaries: run.boundaries.map((b) => ({ label: b.label, atMs: b.at - enqueuedAt })),
    children,
    finishedAtMs: run.finishedOn - enqueuedAt,
  };
}

async function measureUnchangedFullReindex(ctx: Context) {
  const enqueuedAt = Date.now();
  const { jobId } = await ctx.repos.requestIndex(REPO_NAME, { full: true });
  const run = await watchIndexJob(ctx.indexQueue, jobId, enqueuedAt, { intervalMs: 50, timeoutMs: SHORT_JOB_TIMEOUT_MS });
  const children = await childrenOf(ctx.platform, jobId);
  return { jobId, wallMs: run.finishedOn - enqueuedAt, embedded: embeddedBy(children), embedBatches: children.find((c) => c.queue === 'embed')?.jobs ?? 0, result: run.returnvalue };
}

async function measureNoChangeReindex(ctx: Context) {
  const samples: Array<{ jobId: string; wallMs: number; upToDate: unknown }> = [];
  for (let i = 0; i < NO_CHANGE_RUNS; i++) {
    const enqueuedAt = Date.now();
    const { jobId } = await ctx.repos.requestIndex(REPO_NAME);
    const run = await watchIndexJob(ctx.indexQueue, jobId, enqueuedAt, { intervalMs: 20, timeoutMs: SHORT_JOB_TIMEOUT_MS });
    samples.push({ jobId, wallMs: run.finishedOn - enqueuedAt, upToDate: run.returnvalue.upToDate });
  }
  return { medianMs: median(samples.map((s) => s.wallMs)), maxMs: Math.max(...samples.map((s) => s.wallMs)), samples };
}

/**
 * Appends a function with a never-seen name to one source file, commits, and
 * asks for a reindex; the clock runs from the request (what a webhook or the
 * CLI does after a push) until a search for the name returns that file. The
 * name is lower-case letters only, so full-text search takes it as one term.
 */
async function measureChangeToSearchable(ctx: Context, corpus: Corpus) {
  const target =
    corpus.files.find((f) => /\.(js|ts)$/.test(f.rel) && !f.rel.endsWith('.d.ts') && f.bytes >= 2048 && f.bytes <= 16384) ??
    corpus.files.find((f) => f.rel.endsWith('.js'))!;
  const samples: Array<{ marker: string; commitMs: number; indexedMs: number; searchableMs: number; embedded: number; filesChanged: unknown; polls: number }> = [];
  for (let i = 0; i < CHANGE_RUNS; i++) {
    const marker = `pkbench${randomLetters(12)}`;
    const file = path.join(corpus.dir, target.rel);
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n\nfunction ${marker}(value) {\n  return ['${marker}', value];\n}\n`);
    const commitStarted = performance.now();
    git(corpus.dir, 'commit', '--quiet', '--all', '-m', `bench: add ${marker}`);
    const commitMs = performance.now() - commitStarted;

    const enqueuedAt = Date.now();
    const { jobId } = await ctx.repos.requestIndex(REPO_NAME);
    const watching = watchIndexJob(ctx.indexQueue, jobId, enqueuedAt, { intervalMs: 20, timeoutMs: SHORT_JOB_TIMEOUT_MS });
    let polls = 0;
    let searchableAt: number | undefined;
    const deadline = enqueuedAt + 60_000;
    while (Date.now() < deadline) {
      polls++;
      const { hits } = await ctx.search.search({ query: marker, limit: 5 });
      if (hits.some((h) => h.path === target.rel && h.snippet.includes(marker))) {
        searchableAt = Date.now();
        break;
      }
      await sleep(10);
    }
    const run = await watching;
    if (searchableAt === undefined) throw new Error(`${marker} was not searchable within 60 s`);
    const children = await childrenOf(ctx.platform, jobId);
    samples.push({
      marker,
      commitMs: round(commitMs),
      indexedMs: run.finishedOn - enqueuedAt,
      searchableMs: searchableAt - enqueuedAt,
      embedded: embeddedBy(children),
      filesChanged: run.returnvalue.filesChanged,
      polls,
    });
  }
  return {
    file: target.rel,
    medianMs: median(samples.map((s) => s.searchableMs)),
    maxMs: Math.max(...samples.map((s) => s.searchableMs)),
    samples,
  };
}

/** One pass of queries at SEARCH_CLIENTS concurrent clients. */
async function searchPass(ctx: Context, queries: SearchQuery[]) {
  const { wallMs, timings: calls } = await runConcurrently(queries, SEARCH_CLIENTS, (q) => ctx.search.search({ query: q.text }));
  const failed = calls.find((c) => c.error !== undefined);
  if (failed) throw new Error(failed.error);
  const timings = calls.map((c) => ({ kind: c.item.kind, ms: c.ms, hits: c.result!.hits.length }));
  return {
    clients: SEARCH_CLIENTS,
    queries: timings.length,
    queriesPerSecond: round(timings.length / (wallMs / 1000)),
    zeroHitQueries: timings.filter((t) => t.hits === 0).length,
    all: latencyStats(timings.map((t) => t.ms)),
    identifier: latencyStats(timings.filter((t) => t.kind === 'identifier').map((t) => t.ms)),
    natural: latencyStats(timings.filter((t) => t.kind === 'natural').map((t) => t.ms)),
  };
}

/**
 * One client, one query at a time: the whole search call, then its parts
 * composed the way `createSearchService` composes them (query embedding,
 * Chroma nearest neighbours, Postgres full text, at the depth the service
 * uses for the default limit). Says whether a slow p95 is one part's cost or
 * queueing under concurrency.
 */
async function measureSearchParts(ctx: Context, queries: string[]) {
  const filter = { repositoryBranches: [{ repositoryId: ctx.repositoryId, branch: CORPUS_BRANCH }] };
  const depth = 10 * 4; // hybrid-search fetches limit × 4 candidates from each retriever
  const times = { search: [] as number[], queryEmbedding: [] as number[], chromaQuery: [] as number[], postgresFullText: [] as number[] };
  const time = async (into: number[], fn: () => Promise<unknown>) => {
    const t = performance.now();
    const out = await fn();
    into.push(performance.now() - t);
    return out;
  };
  for (const q of queries) {
    await time(times.search, () => ctx.search.search({ query: q }));
    const [vector] = (await time(times.queryEmbedding, () => ctx.platform.embeddings.embed([q]))) as number[][];
    await time(times.chromaQuery, () => ctx.platform.vectors.query(vector!, depth, filter));
    const terms = fullTextQuery(q);
    if (terms) await time(times.postgresFullText, () => ctx.platform.chunks.fullText(terms, filter, depth, { enough: 10 }));
  }
  return Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, latencyStats(xs)]));
}

/**
 * Where the time of a full run could go, one stage at a time in this process
 * (single-threaded, no queue, nothing else running): chunking every corpus
 * file, embedding every distinct chunk with the local provider, and upserting
 * those vectors into scratch Chroma collections (one writer and as many as the
 * embed pool runs; the metadata written today and scope-only metadata).
 * Compared with the full run's rate, they say which stage bounds it and what
 * a change would buy.
 */
async function measureStages(ctx: Context, corpus: Corpus) {
  const chunker = await createChunker({ maxChunkChars: ctx.config.index.maxChunkChars });
  let chunks = 0;
  let started = performance.now();
  for (const f of corpus.files) {
    const content = readFileSync(path.join(corpus.dir, f.rel), 'utf8');
    chunks += (await chunker.chunk({ path: f.rel, content, language: undefined })).length;
  }
  const chunkMs = performance.now() - started;
  chunker.close();

  const { rows } = await ctx.platform.stores.postgres.pool.query<{
    id: string;
    content: string;
    path: string;
    start_line: number;
    end_line: number;
    symbol: string | null;
    kind: string;
    language: string | null;
  }>(`SELECT DISTINCT ON (content_hash) id, content, path, start_line, end_line, symbol, kind, language FROM chunks ORDER BY content_hash`);
  const batch = ctx.config.index.batchChunks;
  const vectors: number[][] = [];
  let embedMs = 0;
  for (let i = 0; i < rows.length; i += batch) {
    started = performance.now();
    vectors.push(...(await ctx.platform.embeddings.embed(rows.slice(i, i + batch).map((r) => r.content))));
    embedMs += performance.now() - started;
  }
  const commit = (await ctx.platform.repositories.getBranch(ctx.repositoryId, CORPUS_BRANCH))?.indexedCommit ?? '';
  // The metadata the embed-batch job writes, with its real values: Chroma indexes every
  // metadata value, so distinct paths, symbols and line numbers cost more than constants.
  const fullMetadata = (r: (typeof rows)[number]) =>
    vectorMetadata(
      { repositoryId: ctx.repositoryId, branch: CORPUS_BRANCH, commit },
      { path: r.path, language: r.language, startLine: r.start_line, endLine: r.end_line, symbol: r.symbol, kind: r.kind },
    );
  // Only what scopes a vector; Postgres holds the rest and search reads it from there.
  const scopeOnly = () => ({ repository_id: ctx.repositoryId, branch: CORPUS_BRANCH }) as VectorRecord['metadata'];

  // Writers: one, then as many as the embed pool runs. Metadata: as written today, then scope only.
  const upsertRate = async (collection: string, writers: number, metadata: (r: (typeof rows)[number]) => VectorRecord['metadata']) => {
    const batches: VectorRecord[][] = [];
    for (let i = 0; i < rows.length; i += batch) {
      batches.push(rows.slice(i, i + batch).map((r, j) => ({ id: r.id, embedding: vectors[i + j]!, metadata: metadata(r) })));
    }
    const scratch = createVectorStore(ctx.platform.stores.chroma, collection);
    let next = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (next < batches.length) await scratch.upsert(batches[next++]!);
      }),
    );
    const ms = performance.now() - t;
    return { writers, vectors: rows.length, batch, ms: Math.round(ms), vectorsPerSecond: round(rows.length / (ms / 1000)) };
  };
  return {
    chunking: { files: corpus.files.length, chunks, ms: Math.round(chunkMs), filesPerSecond: round(corpus.files.length / (chunkMs / 1000)) },
    localEmbedding: { texts: rows.length, ms: Math.round(embedMs), textsPerSecond: round(rows.length / (embedMs / 1000)) },
    chromaUpsert: await upsertRate('stage-diagnostic-1', 1, fullMetadata),
    chromaUpsertConcurrent: await upsertRate('stage-diagnostic-n', ctx.config.workerConcurrency, fullMetadata),
    chromaUpsertScopeOnly: await upsertRate('stage-diagnostic-s', 1, scopeOnly),
  };
}

// ---------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------

const judgeTarget = (name: TargetName, value: number): TargetResult => judge(name, TARGETS[name], value);

// ---------------------------------------------------------------------------
// Main: build, measure, report, and remove every trace
// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '6000' },
      out: { type: 'string', default: 'bench/results' },
      exclude: { type: 'string', multiple: true, default: [] },
      'no-diagnostics': { type: 'boolean', default: false },
    },
  });
  const wanted = Number(values.files);
  if (!Number.isInteger(wanted) || wanted < MIN_CORPUS_FILES) throw new Error(`--files must be an integer ≥ ${MIN_CORPUS_FILES}`);
  const outDir = path.resolve(PROJECT_ROOT, values.out);
  // Quoted where a shell would expand it (globs), so the recorded command can be pasted as it is.
  const shellQuote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`);
  const command = ['node', '--import', 'tsx', 'bench/index.bench.ts', ...process.argv.slice(2).map(shellQuote)].join(' ');
  const machine = machineInfo();

  log(`building a corpus of ${wanted} files from node_modules`);
  const corpus = buildCorpus(wanted, values.exclude ?? []);
  log(`corpus: ${corpus.files.length} files (${round(corpus.bytes / 2 ** 20)} MB) from ${corpus.packages} packages, ${corpus.eligible} qualified, ${Math.round(corpus.buildMs)} ms`);

  // Private everything (queue prefix, schema, collections, workspace): the same names in both processes, as the tests do.
  let iso: IsolatedPlatform | undefined;

  try {
    iso = await openIsolatedPlatform('bench');
    const { config, platform, repos } = iso;
    const worker = await iso.spawnWorkers();
    const workerPid = worker.child.pid!;
    const rss = sampleRss(workerPid);
    log(`worker process ${workerPid} ready (concurrency ${config.workerConcurrency}, batch ${config.index.batchChunks} chunks)`);

    const repo = await repos.add({ source: corpus.dir, name: REPO_NAME, branch: CORPUS_BRANCH });
    const ctx: Context = { config, platform, repos, search: createSearchService(platform), indexQueue: platform.queues.queues.index, repositoryId: repo.id };

    const groups: CpuGroup[] = [
      { name: 'worker', pids: [workerPid], withDescendants: true },
      ...stackGroups(config.dataDir),
      { name: 'bench', pids: [process.pid], withDescendants: false },
    ];

    // The other benchmarks wait for this one, so it waits for none of them: only for a quiet machine.
    const quiet = await waitForQuietMachine(BENCH, { otherBenchmarks: false });
    // (1) + (2): the first full index, watched phase by phase.
    log('full index…');
    const timeline = cpuTimeline(groups);
    const snapshots: CpuSnapshot[] = [];
    const full = await measureFullIndex(ctx, corpus, (label) => {
      rss.setPhase(label);
      snapshots.push(cpuSnapshot(label, groups));
    });
    const phases = phaseReports(snapshots);
    const cpuSeconds = timeline.stop();
    // Cores other processes took during the full index, on average: Postgres, Chroma and Neo4j may
    // also be serving someone else, which this cannot see, so a high value means a pessimistic run.
    const otherCores = round(phases.reduce((sum, p) => sum + (p.cores.other ?? 0) * p.wallMs, 0) / Math.max(1, full.wallMs), 2);
    if (otherCores > CONTAMINATED_OTHER_CORES) log(`warning: other work used ${otherCores} cores on average during the full index`);
    rss.setPhase('after full index');
    log(`full index: ${full.files} files, ${full.chunks} chunks in ${full.wallMs} ms (${full.filesPerSecond} files/s)`);

    // (5): a --full reindex of unchanged content must embed nothing.
    log('--full reindex of unchanged content…');
    const unchangedFull = await measureUnchangedFullReindex(ctx);
    // (4)
    log('no-change reindex…');
    const noChange = await measureNoChangeReindex(ctx);
    // (3)
    log('one-file change → searchable…');
    const change = await measureChangeToSearchable(ctx, corpus);
    // (6)
    log('search latency…');
    rss.setPhase('search');
    const queries = await corpusSearchQueries(platform.stores.postgres.pool, SEARCH_QUERIES);
    const textsOf = (kind: SearchQuery['kind']) => queries.measured.filter((q) => q.kind === kind).map((q) => q.text);
    const warmupPass = await searchPass(ctx, queries.warmup);
    const searchStarted = cpuSnapshot('search start', groups);
    const search = {
      ...(await searchPass(ctx, queries.measured)),
      cores: phaseReports([searchStarted, cpuSnapshot('search end', groups)])[0]!.cores,
      warmupPass,
      examples: { identifier: textsOf('identifier').slice(0, 5), natural: textsOf('natural').slice(0, 5) },
    };

    const vmHwmKb = statusKb(workerPid, 'VmHWM') ?? 0;
    const rssStats = rss.stop();
    await worker.stop('SIGTERM');

    let stages: Awaited<ReturnType<typeof measureStages>> | undefined;
    let searchParts: Awaited<ReturnType<typeof measureSearchParts>> | undefined;
    if (!values['no-diagnostics']) {
      log('diagnostics: search parts, one query at a time…');
      const every = (xs: string[]) => xs.filter((_, i) => i % 5 === 0);
      searchParts = await measureSearchParts(ctx, [...every(textsOf('identifier')), ...every(textsOf('natural'))]);
      log('diagnostics: chunking, local embedding, Chroma upsert, one stage at a time…');
      stages = await measureStages(ctx, corpus);
    }

    const targets = [
      judgeTarget('filesPerSecond', full.filesPerSecond),
      judgeTarget('peakWorkerRssMb', round(vmHwmKb / 1024)),
      judgeTarget('changeToSearchableMs', change.medianMs),
      judgeTarget('noChangeReindexMs', noChange.medianMs),
      judgeTarget('unchangedFullReindexEmbedded', unchangedFull.embedded),
      judgeTarget('searchP95Ms', search.all.p95Ms),
    ];
    const date = new Date().toISOString().slice(0, 10);
    const results = {
      benchmark: 'index',
      date,
      finishedAt: new Date().toISOString(),
      command,
      machine: { ...machine, busyPercentBeforeStart: quiet.busyPercent, waitedForQuietMs: quiet.waitedMs },
      config: {
        workerConcurrency: config.workerConcurrency,
        indexBatchChunks: config.index.batchChunks,
        chunkMaxChars: config.index.maxChunkChars,
        embeddingModel: platform.embeddings.id,
      },
      corpus: corpusSummary(corpus),
      targets,
      fullIndex: { ...full, otherCores, contaminated: otherCores > CONTAMINATED_OTHER_CORES, phases, cpuTimeline: cpuSeconds },
      peakWorkerRss: {
        vmHwmMb: round(vmHwmKb / 1024),
        sampledPeakMb: round(rssStats.peakKb / 1024),
        samples: rssStats.samples,
        sampledPeakMbByPhase: Object.fromEntries(Object.entries(rssStats.peakKbByPhase).map(([k, v]) => [k, round(v / 1024)])),
      },
      changeToSearchable: change,
      noChangeReindex: noChange,
      unchangedFullReindex: { ...unchangedFull, firstRunEmbedded: full.embedded },
      search,
      ...(searchParts ? { searchParts } : {}),
      ...(stages ? { stages } : {}),
    };

    mkdirSync(outDir, { recursive: true });
    const jsonFile = path.join(outDir, `index-${date}.json`);
    writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);

    const targetTable = targetRows(targets);
    const detailRows = [
      ['detail', 'value'],
      ['corpus', `${corpus.files.length} files, ${round(corpus.bytes / 2 ** 20)} MB, ${corpus.packages} packages${corpus.excluded.length > 0 ? `; excluded: ${corpus.excluded.join(', ')}` : ''}`],
      ['machine busy with other work before start', `${quiet.busyPercent}% (waited ${round(quiet.waitedMs / 1000)} s for quiet)`],
      [
        'other work during the full index',
        `${otherCores} cores on average${otherCores > CONTAMINATED_OTHER_CORES ? ' — the machine was shared: these numbers are pessimistic' : ''}`,
      ],
      ['full index', `${full.files} files, ${full.chunks} chunks in ${round(full.wallMs / 1000)} s = ${full.filesPerSecond} files/s, ${full.chunksPerSecond} chunks/s`],
      ['embedded (first run / --full unchanged)', `${full.embedded} / ${unchangedFull.embedded} (--full unchanged run: ${unchangedFull.wallMs} ms, ${unchangedFull.embedBatches} batches)`],
      ['worker RSS', `VmHWM ${round(vmHwmKb / 1024)} MB, sampled peak ${round(rssStats.peakKb / 1024)} MB (${rssStats.samples} samples)`],
      ['one-file change → searchable', `${change.samples.map((s) => `${s.searchableMs}`).join(', ')} ms (index job done: ${change.samples.map((s) => s.indexedMs).join(', ')} ms)`],
      ['no-change reindex', `${noChange.samples.map((s) => s.wallMs).join(', ')} ms`],
      [
        'child jobs of the full index (failed attempts)',
        full.children.map((c) => `${c.queue}: ${c.jobs} (${c.failed}${c.failureReasons.length > 0 ? `: ${c.failureReasons.join('; ')}` : ''})`).join(', '),
      ],
      ['search (all / identifier / natural)', `p50 ${search.all.p50Ms}/${search.identifier.p50Ms}/${search.natural.p50Ms} ms, p95 ${search.all.p95Ms}/${search.identifier.p95Ms}/${search.natural.p95Ms} ms, ${search.queriesPerSecond} q/s`],
      [
        'search warm-up pass (other queries, right after indexing)',
        `${search.warmupPass.queries} queries: p50 ${search.warmupPass.all.p50Ms} ms, p95 ${search.warmupPass.all.p95Ms} ms, ${search.warmupPass.queriesPerSecond} q/s`,
      ],
      [
        'cores in use while searching',
        Object.entries(search.cores)
          .filter(([, c]) => c >= 0.05)
          .map(([name, c]) => `${name} ${c}`)
          .join(', '),
      ],
    ];
    const cpuNames = [...groups.map((g) => g.name), 'other'];
    const phaseRows = [
      ['phase', 'wall ms', ...cpuNames.map((n) => `${n} cores`), 'machine busy', 'busiest other process'],
      ...phases.map((p) => [
        p.phase,
        String(p.wallMs),
        ...cpuNames.map((n) => String(p.cores[n] ?? '')),
        `${p.machineBusyPercent}%`,
        p.topOthers[0] ? `${p.topOthers[0].command.slice(0, 40)} (${p.topOthers[0].cores})` : '',
      ]),
    ];
    const stageRows = stages
      ? [
          ['diagnostic (in the bench process, one stage at a time)', 'rate'],
          ['chunking (tree-sitter)', `${stages.chunking.filesPerSecond} files/s (${stages.chunking.chunks} chunks in ${stages.chunking.ms} ms)`],
          ['local embedding', `${stages.localEmbedding.textsPerSecond} texts/s (${stages.localEmbedding.texts} in ${stages.localEmbedding.ms} ms)`],
          ['Chroma upsert, 1 writer (metadata as the embed job writes it)', `${stages.chromaUpsert.vectorsPerSecond} vectors/s (${stages.chromaUpsert.vectors} in ${stages.chromaUpsert.ms} ms)`],
          [
            `Chroma upsert, ${stages.chromaUpsertConcurrent.writers} writers`,
            `${stages.chromaUpsertConcurrent.vectorsPerSecond} vectors/s (${stages.chromaUpsertConcurrent.vectors} in ${stages.chromaUpsertConcurrent.ms} ms)`,
          ],
          [
            'Chroma upsert, 1 writer, metadata = repository + branch only',
            `${stages.chromaUpsertScopeOnly.vectorsPerSecond} vectors/s (${stages.chromaUpsertScopeOnly.vectors} in ${stages.chromaUpsertScopeOnly.ms} ms)`,
          ],
          ...(searchParts
            ? Object.entries(searchParts).map(([part, st]) => [`search part: ${part} (1 client)`, `p50 ${st.p50Ms} ms, p95 ${st.p95Ms} ms, max ${st.maxMs} ms`])
            : []),
        ]
      : undefined;

    process.stdout.write(
      textReport(
        `Indexing benchmark — ${date}`,
        machine,
        [
          table(targetTable),
          table(detailRows),
          `Full index by phase (boundaries as first seen by polling the job; cores = CPU seconds / wall seconds):\n${table(phaseRows)}`,
          ...(stageRows ? [table(stageRows)] : []),
        ],
        jsonFile,
      ),
    );

    writeFileSync(
      path.join(outDir, 'README.md'),
      markdownReport({
        heading: ['# Benchmark results', '', `## Indexing (\`bench/index.bench.ts\`) — latest run ${date}`],
        command,
        machine,
        about: [
          `Corpus: ${corpus.files.length} files (${round(corpus.bytes / 2 ** 20)} MB) from ${corpus.packages} packages in node_modules.`,
          `Workers: a separate \`workers/main.ts\` process, local embeddings (\`${platform.embeddings.id}\`), WORKER_CONCURRENCY=${config.workerConcurrency}, INDEX_BATCH_CHUNKS=${config.index.batchChunks}. Search: ${SEARCH_QUERIES} queries (half identifiers, half Markdown headings from the corpus) at ${SEARCH_CLIENTS} concurrent clients in the bench process, after a warm-up pass of ${queries.warmup.length} other queries at the same concurrency (reported below, not judged: the target is a running server's steady state).`,
        ],
        blocks: [
          markdownTable(targetTable),
          markdownTable(detailRows),
          `Full index by phase (boundaries as first seen by polling the job every 100 ms; cores = CPU seconds / wall seconds of each process group, 2.0 = both cores):\n\n${markdownTable(phaseRows)}`,
          ...(stageRows ? [markdownTable(stageRows)] : []),
        ],
        jsonFile,
      }),
    );
  } finally {
    log('cleaning up');
    // Stops the worker process and removes every trace: graph nodes, schema, collections, queue keys, workspace.
    if (iso) for (const problem of await iso.cleanup()) log(`cleanup problem: ${problem}`);
    rmSync(corpus.dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`index benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
