/**
 * Model tier benchmark: after a full index of the 6,000-file corpus publishes (searchable at once), how long
 * the background tier takes until every chunk has a vector from the local model, at how many chunks a
 * second, and how much memory the worker process needs meanwhile (target < 1 GB RSS).
 *
 *   node --import tsx bench/model-tier.bench.ts [--files 6000] [--threads N] [--out bench/results]
 *
 * The workers run as the real `workers/main.ts` process (its RSS is its own), on an isolated namespace of
 * the local stack, with the model as `npm start` runs it (SEMANTIC_THREADS: half the cores unless given).
 * Every text is new to the embedding cache (the namespace is fresh). Results go to stdout,
 * `<out>/model-tier-<date>.json` and `<out>/model-tier.md`; everything is removed at the end.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../scripts/project.ts';
import { semanticCoverage } from '../shared/semantic/coverage.ts';
import { judge, log as logAs, machineInfo, markdownReport, markdownTable, round, sleep, table, targetRows, textReport, waitForQuietMachine } from './lib/common.ts';
import { buildCorpus, corpusSummary, CORPUS_BRANCH } from './lib/corpus.ts';
import { openIsolatedPlatform, waitForIndexJob } from './lib/isolated.ts';

const BENCH = 'model-tier';
const log = (m: string) => logAs(BENCH, m);
const { values: args } = parseArgs({ options: { files: { type: 'string', default: '6000' }, threads: { type: 'string' }, out: { type: 'string', default: 'bench/results' } } });
const wanted = Number(args.files);

function rssMb(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
}

const quiet = await waitForQuietMachine(BENCH, { maxWaitMs: 60_000 });
const machine = machineInfo();
log(`building a corpus of ${wanted} files…`);
const corpus = buildCorpus(wanted, []);
const iso = await openIsolatedPlatform('mtbench', { SEMANTIC_MODEL: 'bge-small-en-v1.5', ...(args.threads ? { SEMANTIC_THREADS: args.threads } : {}) });
try {
  const worker = await iso.spawnWorkers();
  const pid = worker.child.pid!;
  let peakRss = rssMb(pid);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(pid))), 500);
  const started = performance.now();
  const { repository, jobId } = await iso.repos.addAndIndex({ source: corpus.dir, name: 'corpus', branch: CORPUS_BRANCH });
  await waitForIndexJob(iso.platform.queues.queues.index, jobId, 30 * 60_000, 500);
  const publishSeconds = round((performance.now() - started) / 1000, 1);
  log(`published in ${publishSeconds} s; waiting for the model to cover every chunk…`);
  const ref = { repositoryId: repository.id, branch: CORPUS_BRANCH };
  const config = iso.config.semantic!;
  // The coverage reader needs a platform with the tier on: this process's own, which never loads the model.
  let coverage = (await semanticCoverage(iso.platform, [ref]))(ref)!;
  let lastLog = 0;
  while (!coverage.complete) {
    await sleep(5000);
    coverage = (await semanticCoverage(iso.platform, [ref]))(ref)!;
    if (performance.now() - lastLog > 60_000) {
      lastLog = performance.now();
      log(`${coverage.embedded + coverage.failed}/${coverage.total} chunks (${round(((coverage.embedded + coverage.failed) * 100) / coverage.total)}%), worker RSS ${rssMb(pid)} MB`);
    }
    if (worker.child.exitCode !== null) throw new Error(`the worker process exited:\n${worker.output().slice(-2000)}`);
  }
  clearInterval(sampler);
  const fullSeconds = round((performance.now() - started) / 1000, 1);
  const modelSeconds = round(fullSeconds - publishSeconds, 1);
  const chunksPerSecond = round(coverage.total / modelSeconds, 1);
  const targets = [judge('workerPeakRssMb', { max: 1024, unit: 'MB', label: 'worker peak RSS while the model embeds' }, peakRss)];
  const measures = [
    ['measure', 'value'],
    ['publish (searchable, full text + fast vectors)', `${publishSeconds} s`],
    ['until every chunk has a model vector', `${fullSeconds} s after the run was queued (${modelSeconds} s after publish)`],
    ['chunks', `${coverage.total} (${coverage.failed} failed and skipped)`],
    ['model throughput', `${chunksPerSecond} chunks/s on ${config.threads} thread(s)`],
    ['worker peak RSS', `${peakRss} MB`],
  ];
  const results = {
    bench: BENCH,
    date: new Date().toISOString(),
    machine,
    machineBusyPercentAtStart: quiet.busyPercent,
    corpus: corpusSummary(corpus),
    model: config.model,
    threads: config.threads,
    batch: config.batch,
    publishSeconds,
    fullSeconds,
    modelSeconds,
    chunks: coverage.total,
    failed: coverage.failed,
    chunksPerSecond,
    workerPeakRssMb: peakRss,
    targets,
  };
  const out = path.resolve(PROJECT_ROOT, args.out);
  mkdirSync(out, { recursive: true });
  const jsonFile = path.join(out, `model-tier-${results.date.slice(0, 10)}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  const command = `node --import tsx bench/model-tier.bench.ts${wanted !== 6000 ? ` --files ${wanted}` : ''}${args.threads ? ` --threads ${args.threads}` : ''}`;
  writeFileSync(
    path.join(out, 'model-tier.md'),
    markdownReport({
      heading: ['# The local model tier on a full index', '', `Recorded ${results.date.slice(0, 10)}.`],
      command,
      machine,
      about: [
        `Corpus: ${corpus.files.length} files of real code from ${corpus.packages} packages. Model ${config.model} (int8 ONNX), ${config.threads} thread(s), batch ${config.batch}, in the real worker process beside the index pools.`,
        `Machine busy at start: ${quiet.busyPercent}% (other work ran beside it when above 20%).`,
      ],
      blocks: [markdownTable(targetRows(targets)), markdownTable(measures)],
      jsonFile,
    }),
  );
  process.stdout.write(textReport('The local model tier on a full index', machine, [table(targetRows(targets)), table(measures)], jsonFile));
} finally {
  const problems = await iso.cleanup();
  if (problems.length > 0) log(`cleanup problems: ${problems.join('; ')}`);
  rmSync(corpus.dir, { recursive: true, force: true });
}
