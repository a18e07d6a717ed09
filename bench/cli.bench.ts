/**
 * CLI benchmark (issue 18, "a CLI that answers fast"): how long a one-shot `pk-mcp` command takes and
 * how much memory it uses, as a person runs it: the whole process, from exec to exit, measured by
 * `/usr/bin/time` (wall seconds and peak RSS), median of 5 runs after one unmeasured run.
 *
 *   node --import tsx bench/cli.bench.ts [--files 300] [--runs 5] [--out bench/results]
 *
 * An isolated platform on the local stack (its own schema, queue prefix, Chroma collections, graph
 * namespace) holds a corpus of real files from node_modules indexed by the real workers, so `search`,
 * `graph …`, `repo list` and `jobs` answer from real data. Each command runs as `node scripts/pk-mcp.js …`
 * (the installed `pk-mcp` command), first with the model tier off (`SEMANTIC_MODEL=none`: full text and
 * fast vectors), then `search` again with the local model embedding the query in the CLI process.
 * Targets: ≤ 0.4 s and ≤ 120 MB each. The machine's load average is recorded beside the numbers.
 *
 * Results go to stdout, `<out>/cli-<YYYY-MM-DD>.json` and `<out>/cli.md`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createGraphExtractor } from '../shared/graph/extract.ts';
import { PROJECT_ROOT } from '../scripts/project.ts';
import { buildCorpus, corpusSummary, CORPUS_BRANCH } from './lib/corpus.ts';
import { judge, log as logAs, machineBusyPercent, machineInfo, markdownReport, markdownTable, round, table, textReport, waitForQuietMachine, type TargetResult } from './lib/common.ts';
import { openIsolatedPlatform, waitForIndexJob } from './lib/isolated.ts';

const log = (m: string) => logAs('cli', m);
const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '300' },
    runs: { type: 'string', default: '5' },
    out: { type: 'string', default: path.join(PROJECT_ROOT, 'bench', 'results') },
    // Measure without waiting for other benchmarks to finish (the numbers then carry their load; it is recorded).
    'no-wait': { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const TARGET = { seconds: 0.4, megabytes: 120 };

interface Measured {
  command: string;
  mode: string;
  wallS: number[];
  rssMb: number[];
  medianWallS: number;
  medianRssMb: number;
  exitCodes: number[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One whole `pk-mcp` process under /usr/bin/time: wall seconds and peak RSS. */
function timeOnce(env: NodeJS.ProcessEnv, argv: string[]): Promise<{ wallS: number; rssMb: number; code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'PKBENCH %e %M', process.execPath, path.join(PROJECT_ROOT, 'scripts/pk-mcp.js'), ...argv], { cwd: os.tmpdir(), env });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const m = /PKBENCH ([\d.]+) (\d+)/.exec(stderr);
      if (!m) return reject(new Error(`no timing from /usr/bin/time: ${stderr}`));
      resolve({ wallS: Number(m[1]), rssMb: Number(m[2]) / 1024, code: code ?? 1, stderr: stderr.replace(/PKBENCH.*\n?/, '') });
    });
  });
}

async function measure(env: NodeJS.ProcessEnv, mode: string, argv: string[]): Promise<Measured> {
  const first = await timeOnce(env, argv); // unmeasured: compiles the CLI bundle if a source changed
  if (first.code !== 0) throw new Error(`pk-mcp ${argv.join(' ')} failed (${first.code}): ${first.stderr}`);
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await timeOnce(env, argv));
  const m: Measured = {
    command: `pk-mcp ${argv.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ')}`,
    mode,
    wallS: runs.map((r) => r.wallS),
    rssMb: runs.map((r) => round(r.rssMb, 1)),
    medianWallS: median(runs.map((r) => r.wallS)),
    medianRssMb: round(median(runs.map((r) => r.rssMb)), 1),
    exitCodes: runs.map((r) => r.code),
  };
  log(`${m.command} [${mode}]: ${m.medianWallS} s, ${m.medianRssMb} MB`);
  return m;
}

async function main() {
  const machine = machineInfo();
  const loadBefore = os.loadavg();
  const iso = await openIsolatedPlatform('cli-bench');
  const corpus = buildCorpus(Number(args.files), []);
  try {
    log(`indexing ${corpus.files.length} files`);
    const workers = await iso.startInProcessWorkers({ graphExtractor: createGraphExtractor() });
    const { jobId } = await iso.repos.addAndIndex({ source: corpus.dir, name: 'corpus', branch: CORPUS_BRANCH });
    await waitForIndexJob(iso.platform.queues.queues.index, jobId, 20 * 60_000);
    await workers.close();
    const { rows } = await iso.platform.stores.postgres.pool.query<{ symbol: string }>(
      `SELECT symbol FROM chunks WHERE symbol ~ '^[A-Za-z_][A-Za-z0-9_]{5,}$' AND kind = 'function' ORDER BY path LIMIT 1`,
    );
    const symbol = rows[0]?.symbol ?? 'createServer';
    const aFile = corpus.files.find((f) => f.rel.endsWith('.ts') || f.rel.endsWith('.js'))!.rel;

    // Two cores: other work on the machine would be measured with each command.
    const quiet = await waitForQuietMachine('cli', { maxWaitMs: 3 * 60_000, otherBenchmarks: !args['no-wait'] });
    const base: NodeJS.ProcessEnv = { ...process.env, ...iso.env, LOG_LEVEL: 'warn' };
    const noModel = { ...base, SEMANTIC_MODEL: 'none' };
    const withModel = { ...base };
    delete withModel.SEMANTIC_MODEL;

    const results: Measured[] = [];
    for (const argv of [
      ['search', 'retry with exponential backoff', '--limit', '5'],
      ['graph', 'symbol', symbol],
      ['graph', 'callers', symbol],
      ['graph', 'deps', aFile, '--repo', 'corpus'],
      ['repo', 'list'],
      ['jobs', '--limit', '5'],
      ['--help'],
    ]) {
      results.push(await measure(noModel, 'model tier off', argv));
    }
    results.push(await measure(withModel, 'local model embeds the query', ['search', 'retry with exponential backoff', '--limit', '5']));
    const loadAfter = os.loadavg();
    const busyAfter = await machineBusyPercent(3000);

    const targets: TargetResult[] = results.flatMap((r) => [
      judge(`${r.command}|${r.mode}|wall`, { max: TARGET.seconds + 1e-9, unit: 's', label: `${r.command} (${r.mode}) wall` }, r.medianWallS),
      judge(`${r.command}|${r.mode}|rss`, { max: TARGET.megabytes + 1e-9, unit: 'MB', label: `${r.command} (${r.mode}) peak RSS` }, r.medianRssMb),
    ]);
    const rowsOut = [
      ['command', 'mode', 'wall s (median of 5)', 'peak RSS MB (median)', 'wall ≤ 0.4 s', 'RSS ≤ 120 MB'],
      ...results.map((r) => [r.command, r.mode, String(r.medianWallS), String(r.medianRssMb), r.medianWallS <= TARGET.seconds ? 'PASS' : 'FAIL', r.medianRssMb <= TARGET.megabytes ? 'PASS' : 'FAIL']),
    ];
    const date = new Date().toISOString().slice(0, 10);
    mkdirSync(args.out!, { recursive: true });
    const jsonFile = path.join(args.out!, `cli-${date}.json`);
    const command = `node --import tsx bench/cli.bench.ts --files ${args.files} --runs ${RUNS}${args['no-wait'] ? ' --no-wait' : ''}`;
    writeFileSync(jsonFile, `${JSON.stringify({ date, command, machine, loadAverage: { before: loadBefore, after: loadAfter }, otherWorkPercent: { before: quiet.busyPercent, after: busyAfter }, corpus: corpusSummary(corpus), results, targets }, null, 2)}\n`);
    const about = [
      `Corpus: ${corpus.files.length} files from node_modules, indexed by the real workers in an isolated platform on the local stack.`,
      `Other work on the machine: ${quiet.busyPercent}% of the CPU busy just before the measurements, ${busyAfter}% just after (load average before ${loadBefore.map((l) => l.toFixed(2)).join(', ')}; after ${loadAfter.map((l) => l.toFixed(2)).join(', ')}).`,
      'Each number is the whole process (`/usr/bin/time`: exec to exit, peak RSS), median of 5 runs after an unmeasured one, as `node scripts/pk-mcp.js …` from a folder outside the checkout.',
    ];
    writeFileSync(
      path.join(args.out!, 'cli.md'),
      markdownReport({ heading: ['# CLI start-up and memory', '', `Recorded ${date}.`], command, machine, about, blocks: [markdownTable(rowsOut)], jsonFile }),
    );
    process.stdout.write(textReport('CLI start-up and memory', machine, [table(rowsOut)], jsonFile));
    if (targets.some((t) => !t.pass)) process.exitCode = 1;
  } finally {
    rmSync(corpus.dir, { recursive: true, force: true });
    const problems = await iso.cleanup();
    if (problems.length) log(`cleanup: ${problems.join('; ')}`);
  }
}

await main();
