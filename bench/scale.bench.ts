/**
 * Scaling-out benchmark: index throughput with 1, 2 and 3 worker processes
 * (`workers/main.ts`, as `docker compose up --scale worker=N` or the Helm
 * chart's worker replicas run them) sharing one Redis, and a check that no
 * job was processed twice.
 *
 *   node --import tsx bench/scale.bench.ts [--files 3000] [--repos 6] [--workers 1,2,3,3,2,1] [--batch 250] [--out bench/results]
 *
 * A worker count may come several times (the default runs 1, 2, 3 and back): the machine's other load drifts
 * during a run, so each count is summarised by the median of its runs, and its speedup is against 1's median.
 *
 * For each worker count, a fresh isolated platform (queue prefix, Postgres
 * schema, Chroma collections, workspace: no embedding cache carried over)
 * registers the same `--repos` repositories, split from one corpus of
 * `--files` source files, spawns N worker processes, enqueues a full index of
 * every repository at once and times until the last run is published.
 * Several repositories, because one run's index job (fetch, chunk, stage) is
 * a single job: what spreads over processes is many runs and their embedding
 * and graph batches (`--batch` chunks each, smaller than production's 2,000
 * so that a run has enough batches to share).
 *
 * "Processed twice" is read from BullMQ's own event streams of the index,
 * embed and graph queues: each job must turn `active` exactly once and
 * complete once, and no job may have more than one attempt.
 *
 * The stores run on the same machine (the local stack), and other work may
 * share the cores: the machine's busy share before each run and the CPU each
 * worker process and each store used are recorded with the results.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Queue } from 'bullmq';
import { PROJECT_ROOT } from '../scripts/project.ts';
import { readStackState } from '../shared/config/config.ts';
import { CLOCK_TICKS, log as logAs, machineBusyPercent, machineInfo, machineTicks, markdownReport, markdownTable, otherBenchmarks, round, sleep, table, textReport, waitForQuietMachine } from './lib/common.ts';
import { processTable } from './lib/cpu.ts';
import { buildCorpus, corpusSummary, CORPUS_BRANCH, git } from './lib/corpus.ts';
import { openIsolatedPlatform, waitForIndexJob, type IsolatedPlatform } from './lib/isolated.ts';
import type { Spawned } from '../tests/helpers/processes.ts';

const BENCH = 'scale';
const log = (m: string) => logAs(BENCH, m);

const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '3000' },
    repos: { type: 'string', default: '6' },
    workers: { type: 'string', default: '1,2,3,3,2,1' },
    batch: { type: 'string', default: '250' },
    concurrency: { type: 'string', default: '4' },
    out: { type: 'string', default: path.join(PROJECT_ROOT, 'bench', 'results') },
    // Measure beside another benchmark instead of waiting for it (its load is then in "machine busy").
    'no-wait': { type: 'boolean', default: false },
  },
});
const FILES = Number(args.files);
const REPOS = Number(args.repos);
const WORKER_COUNTS = args.workers!.split(',').map(Number);
const BATCH = Number(args.batch);
const CONCURRENCY = Number(args.concurrency);
for (const [flag, v] of Object.entries({ files: FILES, repos: REPOS, batch: BATCH, concurrency: CONCURRENCY })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${flag} must be a whole number ≥ 1`);
}
if (WORKER_COUNTS.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) throw new Error('--workers must be a comma list of whole numbers from 1 to 16, e.g. 1,2,3');

interface DuplicateCheck {
  jobs: number;
  /** Jobs that turned active more than once, or completed more than once, or took more than one attempt. */
  processedTwice: string[];
  /** For each of those: its events by kind, attempts and failure reason, to tell a redelivery from a retry. */
  details: Record<string, unknown>;
  /** Jobs with no completion at all. */
  unfinished: string[];
}

/**
 * Reads BullMQ's event stream of each queue. A batch job (embed, graph) must turn `active` once and complete
 * once. An index run's parent is processed in steps: it turns active, adds its batches, moves to
 * waiting-children, and turns active again when they are done; so its `active` events must number one more
 * than its `waiting-children` events, never more. No job may have needed a second attempt.
 */
async function duplicateCheck(ctx: IsolatedPlatform): Promise<DuplicateCheck> {
  const redis = ctx.platform.stores.redis.client;
  const count = new Map<string, { active: number; completed: number; waitingChildren: number; events: Record<string, number> }>();
  for (const queue of ['index', 'embed', 'graph']) {
    const entries = await redis.xrange(`${ctx.config.queuePrefix}:${queue}:events`, '-', '+');
    for (const [, fields] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      if (!f.jobId) continue;
      const key = `${queue}/${f.jobId}`;
      const c = count.get(key) ?? { active: 0, completed: 0, waitingChildren: 0, events: {} };
      c.events[f.event ?? '?'] = (c.events[f.event ?? '?'] ?? 0) + 1;
      if (f.event === 'active') c.active++;
      if (f.event === 'completed') c.completed++;
      if (f.event === 'waiting-children') c.waitingChildren++;
      count.set(key, c);
    }
  }
  const processedTwice = new Set<string>();
  const details: Record<string, unknown> = {};
  for (const [k, c] of count) {
    if (c.active === 0) continue;
    if (c.completed > 1 || c.active > 1 + c.waitingChildren) processedTwice.add(k);
  }
  for (const queue of ['index', 'embed', 'graph'] as const) {
    const q = ctx.platform.queues.queues[queue] as Queue;
    for (const job of await q.getJobs(['completed', 'failed'], 0, -1)) {
      if (!job) continue;
      const key = `${queue}/${job.id}`;
      if (job.attemptsMade > 1 || job.failedReason) processedTwice.add(key);
      if (processedTwice.has(key)) {
        details[key] = { events: count.get(key)?.events, attemptsMade: job.attemptsMade, attemptsStarted: job.attemptsStarted, stalledCounter: job.stalledCounter, failedReason: job.failedReason };
      }
    }
  }
  const unfinished = [...count].filter(([, c]) => c.active > 0 && c.completed === 0).map(([k]) => k);
  return { jobs: [...count.values()].filter((c) => c.active > 0).length, processedTwice: [...processedTwice], details, unfinished };
}

/**
 * CPU seconds of each pid with its live descendants (Postgres runs a backend process per connection) and the
 * children it has reaped (the worker's git processes).
 */
function cpuOf(pids: number[]): number[] {
  const t = processTable({ reapedChildren: true });
  const children = new Map<number, number[]>();
  for (const [pid, p] of t) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  const total = (pid: number): number => (t.get(pid)?.ticks ?? 0) + (children.get(pid) ?? []).reduce((a, c) => a + total(c), 0);
  return pids.map((pid) => total(pid) / CLOCK_TICKS);
}

function storePids(): Record<string, number> {
  const services = readStackState(path.join(PROJECT_ROOT, '.data'))?.services ?? {};
  return Object.fromEntries(Object.entries(services).filter(([, s]) => s?.pid).map(([name, s]) => [name, s!.pid!]));
}

/** Splits the corpus into `n` repositories, file i going to repository i mod n. */
function splitCorpus(files: Array<{ source: string; rel: string }>, n: number): string[] {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pk-scale-repos-'));
  return Array.from({ length: n }, (_, r) => {
    const dir = path.join(root, `repo-${r}`);
    mkdirSync(dir, { recursive: true });
    files.forEach((f, i) => {
      if (i % n !== r) return;
      const target = path.join(dir, f.rel);
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(f.source, target);
    });
    git(dir, 'init', '--quiet', `--initial-branch=${CORPUS_BRANCH}`);
    git(dir, '-c', 'core.excludesFile=/dev/null', '-c', 'core.autocrlf=false', 'add', '--all');
    git(dir, 'commit', '--quiet', '-m', `scale benchmark repository ${r}`);
    return dir;
  });
}

interface RunResult {
  workers: number;
  seconds: number;
  filesPerSecond: number;
  speedup: number;
  efficiency: number;
  chunks: number;
  jobs: number;
  processedTwice: string[];
  processedTwiceDetails: Record<string, unknown>;
  unfinished: string[];
  machineBusyBeforePercent: number;
  /** CPU share of the machine used during the run, all processes together. */
  machineBusyDuringPercent: number;
  workerCpuSeconds: number[];
  storeCpuSeconds: Record<string, number>;
}

async function runWith(workers: number, repoDirs: string[], fileCount: number): Promise<Omit<RunResult, 'speedup' | 'efficiency'>> {
  const ctx = await openIsolatedPlatform(`scale-w${workers}`, {
    INDEX_BATCH_CHUNKS: String(BATCH),
    WORKER_CONCURRENCY: String(CONCURRENCY),
  });
  const spawned: Spawned[] = [];
  try {
    const names: string[] = [];
    for (const [i, dir] of repoDirs.entries()) {
      const repo = await ctx.repos.add({ source: dir, name: `scale-${i}`, branch: CORPUS_BRANCH });
      names.push(repo.name);
    }
    for (let i = 0; i < workers; i++) spawned.push(await ctx.spawnWorkers());
    const pids = spawned.map((s) => s.child.pid!);
    const stores = storePids();
    const busyBefore = await machineBusyPercent(3000);
    const cpu0 = cpuOf(pids);
    const store0 = Object.fromEntries(Object.entries(stores).map(([n, pid]) => [n, cpuOf([pid])[0]!]));
    const ticks0 = machineTicks();

    const started = performance.now();
    const jobIds = [];
    for (const name of names) jobIds.push((await ctx.repos.requestIndex(name, { full: true })).jobId);
    const queue = ctx.platform.queues.queues.index as Queue;
    await Promise.all(jobIds.map((id) => waitForIndexJob(queue, id, 30 * 60_000, 200)));
    const seconds = (performance.now() - started) / 1000;

    const ticks1 = machineTicks();
    const cpu1 = cpuOf(pids);
    const store1 = Object.fromEntries(Object.entries(stores).map(([n, pid]) => [n, cpuOf([pid])[0]!]));
    const { rows } = await ctx.platform.stores.postgres.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${ctx.config.databaseSchema}.chunks`);
    const dup = await duplicateCheck(ctx);
    return {
      workers,
      seconds: round(seconds, 2),
      filesPerSecond: round(fileCount / seconds),
      chunks: Number(rows[0]!.n),
      jobs: dup.jobs,
      processedTwice: dup.processedTwice,
      processedTwiceDetails: dup.details,
      unfinished: dup.unfinished,
      machineBusyBeforePercent: busyBefore,
      machineBusyDuringPercent: round((100 * (ticks1.busy - ticks0.busy)) / Math.max(1, ticks1.total - ticks0.total)),
      workerCpuSeconds: cpu1.map((c, i) => round(c - cpu0[i]!)),
      storeCpuSeconds: Object.fromEntries(Object.keys(store1).map((n) => [n, round(store1[n]! - store0[n]!)])),
    };
  } finally {
    const problems = await ctx.cleanup();
    if (problems.length > 0) log(`cleanup problems: ${problems.join('; ')}`);
  }
}

async function main(): Promise<void> {
  const machine = machineInfo();
  // Other benchmarks first (they would take the cores this one counts); then at most 5 minutes for a quiet machine.
  const quiet = await waitForQuietMachine(BENCH, args['no-wait'] ? { otherBenchmarks: false, maxWaitMs: 30_000 } : {});
  const othersAtStart = otherBenchmarks().map((o) => o.command);
  if (othersAtStart.length > 0) log(`measuring beside: ${othersAtStart.join('; ')}`);
  log(`machine ${quiet.busyPercent}% busy with other work at the start`);
  log(`building a corpus of ${FILES} files in ${REPOS} repositories`);
  const corpus = buildCorpus(FILES, []);
  const repoDirs = splitCorpus(corpus.files, REPOS);
  const results: RunResult[] = [];
  try {
    for (const n of WORKER_COUNTS) {
      log(`${n} worker process(es): full index of ${REPOS} repositories`);
      const r = await runWith(n, repoDirs, corpus.files.length);
      const base = results.find((x) => x.workers === Math.min(...WORKER_COUNTS)) ?? { filesPerSecond: r.filesPerSecond, workers: r.workers };
      const speedup = round(r.filesPerSecond / base.filesPerSecond, 2);
      results.push({ ...r, speedup, efficiency: round(speedup / (r.workers / base.workers), 2) });
      log(`${n} worker(s): ${r.seconds} s, ${r.filesPerSecond} files/s, ${r.jobs} jobs, processed twice: ${r.processedTwice.length}, machine busy before ${r.machineBusyBeforePercent}%`);
      await sleep(2000);
    }
  } finally {
    rmSync(corpus.dir, { recursive: true, force: true });
    for (const d of repoDirs) rmSync(path.dirname(d), { recursive: true, force: true });
  }

  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(args.out!, { recursive: true });
  const jsonFile = path.join(args.out!, `scale-${date}.json`);
  const command = `node --import tsx bench/scale.bench.ts --files ${FILES} --repos ${REPOS} --workers ${WORKER_COUNTS.join(',')} --batch ${BATCH} --concurrency ${CONCURRENCY}${args['no-wait'] ? ' --no-wait' : ''}`;

  // Per worker count: the median of its runs.
  const median = (xs: number[]) => { const a = [...xs].sort((x, y) => x - y); return a.length % 2 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2; };
  const counts = [...new Set(WORKER_COUNTS)].sort((a, b) => a - b);
  const baseMedian = median(results.filter((r) => r.workers === counts[0]).map((r) => r.filesPerSecond));
  const summary = counts.map((n) => {
    const runs = results.filter((r) => r.workers === n);
    const fps = median(runs.map((r) => r.filesPerSecond));
    return {
      workers: n,
      runs: runs.length,
      medianFilesPerSecond: round(fps),
      speedup: round(fps / baseMedian, 2),
      efficiency: round(fps / baseMedian / (n / counts[0]!), 2),
      processedTwice: runs.reduce((a, r) => a + r.processedTwice.length, 0),
      machineBusyBeforePercent: runs.map((r) => r.machineBusyBeforePercent),
    };
  });
  const summaryRows = [
    ['worker processes', 'runs', 'median files/s', 'speedup', 'efficiency', 'jobs processed twice', 'machine busy before each run'],
    ...summary.map((x) => [String(x.workers), String(x.runs), String(x.medianFilesPerSecond), `${x.speedup}×`, String(x.efficiency), String(x.processedTwice), x.machineBusyBeforePercent.map((b) => `${b}%`).join(', ')]),
  ];
  writeFileSync(jsonFile, `${JSON.stringify({ date: new Date().toISOString(), command, machine, startBusyPercent: quiet.busyPercent, otherBenchmarksAtStart: othersAtStart, corpus: corpusSummary(corpus), repos: REPOS, batchChunks: BATCH, workerConcurrency: CONCURRENCY, summary, results }, null, 2)}\n`);
  const rows = [
    ['worker processes', 'seconds', 'files/s', 'speedup', 'efficiency', 'jobs', 'processed twice', 'machine busy before', 'busy during', 'CPU s per worker', 'store CPU s'],
    ...results.map((r) => [
      String(r.workers),
      String(r.seconds),
      String(r.filesPerSecond),
      `${r.speedup}×`,
      String(r.efficiency),
      String(r.jobs),
      String(r.processedTwice.length),
      `${r.machineBusyBeforePercent}%`,
      `${r.machineBusyDuringPercent}%`,
      r.workerCpuSeconds.join(' / '),
      Object.entries(r.storeCpuSeconds).map(([n, s]) => `${n} ${s}`).join(', '),
    ]),
  ];
  console.log(textReport('Scaling out: index throughput by worker processes', machine, [table(summaryRows), table(rows)], jsonFile));
  writeFileSync(
    path.join(args.out!, 'scale.md'),
    markdownReport({
      heading: ['# Scaling out: index throughput with 1, 2 and 3 worker processes'],
      command,
      machine,
      about: [
        `${corpus.files.length} source files (${corpusSummary(corpus).megabytes} MB) from node_modules split into ${REPOS} repositories, each indexed in full at once;`,
        `a fresh isolated platform per worker count (no embedding cache carried over), embedding batches of ${BATCH} chunks, WORKER_CONCURRENCY=${CONCURRENCY} per process.`,
        'Stores (Redis, Postgres, Chroma, Neo4j) run on the same machine; "machine busy before" is the share of the CPUs other work used in the 3 s before the run.',
        ...(othersAtStart.length > 0 ? [`Measured beside another benchmark, whose load is in "machine busy": ${othersAtStart.map((c) => `\`${c}\``).join(', ')}.`] : []),
        '"processed twice" counts jobs that completed more than once or turned active more often than their steps allow (a batch once; a run\'s parent once more per wait for its batches) in BullMQ\'s event streams, or needed another attempt.',
      ],
      blocks: ['By worker count (median of its runs):', markdownTable(summaryRows), 'Each run, in the order they ran:', markdownTable(rows)],
      jsonFile,
    }),
  );
  if (results.some((r) => r.processedTwice.length > 0 || r.unfinished.length > 0)) {
    console.error('a job was processed twice or never finished: see the results');
    process.exitCode = 1;
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
