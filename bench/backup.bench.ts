/**
 * Backup benchmark: how long a backup set of a 6,000-file index takes to write, how large it is, how long a
 * restore of it takes after every store was wiped (with its checks), and how long a verification takes
 * (a restore into a scratch namespace, compared and dropped).
 *
 *   node --import tsx bench/backup.bench.ts [--files 6000] [--out bench/results]
 *
 * The corpus is real code from node_modules (bench/lib/corpus.ts), indexed by the real workers into an
 * isolated namespace of the local stack (vectors from the fast local provider, the full graph; the local
 * model's tier is off, as in the other benchmarks: its vectors would add a second collection of the same
 * size). Everything is removed at the end. Results go to stdout, `<out>/backup-<date>.json` and
 * `<out>/backup.md`.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBackupService } from '../shared/backup/backup.service.ts';
import { createGraphExtractor } from '../shared/graph/extract.ts';
import { createLogger } from '../shared/logger.ts';
import { PROJECT_ROOT } from '../scripts/project.ts';
import { judge, log as logAs, machineInfo, markdownReport, markdownTable, round, table, targetRows, textReport, waitForQuietMachine } from './lib/common.ts';
import { buildCorpus, corpusSummary, CORPUS_BRANCH } from './lib/corpus.ts';
import { openIsolatedPlatform, waitForIndexJob } from './lib/isolated.ts';

const BENCH = 'backup';
const log = (m: string) => logAs(BENCH, m);
const { values: args } = parseArgs({ options: { files: { type: 'string', default: '6000' }, out: { type: 'string', default: 'bench/results' } } });
const wanted = Number(args.files);

/** Peak resident memory of this process while `work` runs (sampled every 100 ms). */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ value: T; peakMb: number; seconds: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  const started = performance.now();
  try {
    const value = await work();
    return { value, peakMb: Math.round(peak / 2 ** 20), seconds: round((performance.now() - started) / 1000, 1) };
  } finally {
    clearInterval(timer);
  }
}

const quiet = await waitForQuietMachine(BENCH, { maxWaitMs: 60_000 });
const machine = machineInfo();
log(`building a corpus of ${wanted} files…`);
const corpus = buildCorpus(wanted, []);
const backupDir = mkdtempSync(path.join(os.tmpdir(), 'pk-bench-backups-'));
const iso = await openIsolatedPlatform('bkbench', { BACKUP_DIR: backupDir });
const logger = createLogger({ logLevel: 'warn', logPretty: false }, { destination: 2 });
try {
  const workers = await iso.startInProcessWorkers({ graphExtractor: createGraphExtractor() });
  log('indexing…');
  const indexStarted = performance.now();
  const { jobId } = await iso.repos.addAndIndex({ source: corpus.dir, name: 'corpus', branch: CORPUS_BRANCH });
  await waitForIndexJob(iso.platform.queues.queues.index, jobId, 30 * 60_000, 500);
  const indexSeconds = round((performance.now() - indexStarted) / 1000, 1);
  await workers.close();
  const backups = createBackupService(iso.platform, logger);

  log('backing up…');
  const created = await withPeakRss(() => backups.create({ actor: 'bench' }));
  const setBytes = statSync(path.join(backupDir, created.value.file)).size;
  const parts = created.value.manifest.parts;
  const sum = (store: string) => parts.filter((p) => p.store === store).reduce((s, p) => s + p.count, 0);
  const rawBytes = parts.reduce((s, p) => s + p.bytes, 0);

  log('wiping every store of the corpus, then restoring…');
  await iso.repos.remove('corpus');
  const restored = await withPeakRss(() => backups.restore(created.value.file, { replace: false, actor: 'bench' }));
  if (restored.value.problems.length > 0) throw new Error(`the restore found problems: ${restored.value.problems.join('; ')}`);

  log('verifying into a scratch namespace…');
  const verified = await withPeakRss(() => backups.verify(created.value.file, { actor: 'bench' }));
  if (!verified.value.ok) throw new Error(`the verification found problems: ${verified.value.problems.join('; ')}`);

  const targets = [
    judge('backupSeconds', { max: 120, unit: 's', label: 'backup of the 6,000-file index' }, created.seconds),
    judge('restoreSeconds', { max: 300, unit: 's', label: 'restore after a wipe (with its checks)' }, restored.seconds),
  ];
  const measures = [
    ['measure', 'value'],
    ['index (for reference)', `${indexSeconds} s`],
    ['backup', `${created.seconds} s (peak RSS ${created.peakMb} MB)`],
    ['set size (.tar.gz)', `${round(setBytes / 2 ** 20, 1)} MB (${round(rawBytes / 2 ** 20, 1)} MB unpacked)`],
    ['Postgres rows', String(sum('postgres'))],
    ['vectors', String(sum('chroma'))],
    ['graph nodes / relationships', `${parts.find((p) => p.name === 'neo4j:nodes')!.count} / ${parts.find((p) => p.name === 'neo4j:relationships')!.count}`],
    ['restore (wiped stores)', `${restored.seconds} s (peak RSS ${restored.peakMb} MB)`],
    ['verify (scratch namespace)', `${verified.seconds} s (peak RSS ${verified.peakMb} MB)`],
  ];
  const results = {
    bench: BENCH,
    date: new Date().toISOString(),
    machine,
    machineBusyPercentAtStart: quiet.busyPercent,
    corpus: corpusSummary(corpus),
    indexSeconds,
    backup: { seconds: created.seconds, peakRssMb: created.peakMb, bytes: setBytes, unpackedBytes: rawBytes, parts: parts.map((p) => ({ name: p.name, count: p.count, bytes: p.bytes })) },
    restore: { seconds: restored.seconds, peakRssMb: restored.peakMb, counts: restored.value.counts },
    verify: { seconds: verified.seconds, peakRssMb: verified.peakMb },
    targets,
  };
  const out = path.resolve(PROJECT_ROOT, args.out);
  mkdirSync(out, { recursive: true });
  const jsonFile = path.join(out, `backup-${results.date.slice(0, 10)}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  const command = `node --import tsx bench/backup.bench.ts${wanted !== 6000 ? ` --files ${wanted}` : ''}`;
  writeFileSync(
    path.join(out, 'backup.md'),
    markdownReport({
      heading: ['# Backup and restore', '', `Recorded ${results.date.slice(0, 10)}.`],
      command,
      machine,
      about: [
        `Corpus: ${corpus.files.length} files of real code from ${corpus.packages} packages, indexed by the real workers (fast local vectors, the full graph; the local model's tier off).`,
        `Machine busy at start: ${quiet.busyPercent}% (other work ran beside it when above 20%).`,
        'A backup is one `.tar.gz` set (Postgres by COPY in one snapshot, the vectors of live chunks, the graph streamed); the restore runs after the corpus was removed from every store, and includes its count and probe checks.',
      ],
      blocks: [markdownTable(targetRows(targets)), markdownTable(measures)],
      jsonFile,
    }),
  );
  process.stdout.write(textReport('Backup and restore', machine, [table(targetRows(targets)), table(measures)], jsonFile));
} finally {
  const problems = await iso.cleanup();
  if (problems.length > 0) log(`cleanup problems: ${problems.join('; ')}`);
  rmSync(corpus.dir, { recursive: true, force: true });
  rmSync(backupDir, { recursive: true, force: true });
}
