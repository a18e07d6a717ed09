/**
 * Small helpers every benchmark needs: statistics, the machine it ran on,
 * waiting for a quiet machine (and for other benchmarks to finish), logging
 * and report tables. Every benchmark uses these, so their results compare.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../scripts/project.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Nearest-rank percentile. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface LatencyStats {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export function latencyStats(xs: number[]): LatencyStats {
  if (xs.length === 0) return { count: 0, p50Ms: NaN, p95Ms: NaN, p99Ms: NaN, maxMs: NaN, meanMs: NaN };
  return {
    count: xs.length,
    p50Ms: round(percentile(xs, 50)),
    p95Ms: round(percentile(xs, 95)),
    p99Ms: round(percentile(xs, 99)),
    maxMs: round(Math.max(...xs)),
    meanMs: round(xs.reduce((a, b) => a + b, 0) / xs.length),
  };
}

export function log(bench: string, message: string): void {
  process.stderr.write(`[${bench} ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export type MachineInfo = ReturnType<typeof machineInfo>;

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

/** Share of the machine's CPU in use over `ms`, by anyone. */
export async function machineBusyPercent(ms: number): Promise<number> {
  const a = machineTicks();
  await sleep(ms);
  const b = machineTicks();
  return b.total > a.total ? round((100 * (b.busy - a.busy)) / (b.total - a.total)) : 0;
}

/** When a process started, in clock ticks since boot (field 22 of /proc/<pid>/stat). */
function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/**
 * Benchmarks that wait for each other with `waitForQuietMachine`: of these,
 * only older ones are waited for. The indexing benchmark is not one of them:
 * the others always wait for it, and it waits for none.
 */
const COOPERATING = /\bbench\/(graph|mcp)\.bench\.ts\b/;

/**
 * Benchmark processes (`*.bench.ts`) to wait for: every other one, except
 * cooperating ones that started after this one (two benchmarks each waiting
 * for the other would wait forever; the newer one waits for the older).
 */
export function otherBenchmarks(): Array<{ pid: number; command: string }> {
  const out: Array<{ pid: number; command: string }> = [];
  const mine = startTicks(process.pid);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid || pid === process.ppid) continue;
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      if (/\bbench\/[\w.-]+\.bench\.ts\b/.test(command) && (!COOPERATING.test(command) || startTicks(pid) <= mine)) out.push({ pid, command: command.slice(0, 120) });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/**
 * This machine has two cores: a second benchmark running at the same time
 * would halve what either measures. Wait for the others to finish (unless
 * `otherBenchmarks` is false: the indexing benchmark, which the others wait
 * for), then for a quiet moment; if none comes, go on and record how busy it
 * was.
 */
export async function waitForQuietMachine(
  bench: string,
  options: { quietPercent?: number; maxWaitMs?: number; benchmarkWaitMs?: number; otherBenchmarks?: boolean } = {},
): Promise<{ busyPercent: number; waitedMs: number; waitedForBenchmarks: string[] }> {
  const quietPercent = options.quietPercent ?? 20;
  const maxWaitMs = options.maxWaitMs ?? 5 * 60_000;
  const benchmarkWaitMs = options.benchmarkWaitMs ?? 60 * 60_000;
  const started = Date.now();
  const waitedFor = new Set<string>();
  for (;;) {
    if (options.otherBenchmarks === false) break;
    const others = otherBenchmarks();
    if (others.length === 0) break;
    for (const o of others) {
      if (!waitedFor.has(o.command)) log(bench, `waiting for another benchmark to finish: pid ${o.pid} ${o.command}`);
      waitedFor.add(o.command);
    }
    if (Date.now() - started > benchmarkWaitMs) throw new Error(`other benchmarks still running after ${benchmarkWaitMs / 60_000} min: ${others.map((o) => o.pid).join(', ')}`);
    await sleep(10_000);
  }
  const quietStarted = Date.now();
  for (;;) {
    const busyPercent = await machineBusyPercent(3000);
    const waitedMs = Date.now() - started;
    if (busyPercent <= quietPercent) return { busyPercent, waitedMs, waitedForBenchmarks: [...waitedFor] };
    if (Date.now() - quietStarted > maxWaitMs) {
      log(bench, `warning: the machine is still ${busyPercent}% busy with other work; measuring anyway`);
      return { busyPercent, waitedMs, waitedForBenchmarks: [...waitedFor] };
    }
    log(bench, `machine ${busyPercent}% busy with other work; waiting for it to quieten`);
    await sleep(5000);
  }
}

export interface Target {
  min?: number;
  max?: number;
  unit: string;
  label: string;
}

export interface TargetResult {
  name: string;
  label: string;
  value: number;
  unit: string;
  target: string;
  pass: boolean;
}

/** A `max` of 0 asks for exactly 0 (a count that must be zero). */
export function judge(name: string, t: Target, value: number): TargetResult {
  const pass = Number.isFinite(value) && (t.min !== undefined ? value >= t.min : t.max === 0 ? value === 0 : value < t.max!);
  const target = t.min !== undefined ? `≥ ${t.min}` : t.max === 0 ? '= 0' : `< ${t.max}`;
  return { name, label: t.label, value, unit: t.unit, target: `${target} ${t.unit}`, pass };
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}

export function markdownTable(rows: string[][]): string {
  const [head, ...body] = rows;
  return [head!, head!.map(() => '---'), ...body].map((r) => `| ${r.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`).join('\n');
}

/** `2 × <CPU model>, 7937 MB, Node v20…, linux …`; `memory` names the unit of the total memory. */
export function machineLine(m: MachineInfo, memory = 'MB'): string {
  return `${m.cpuCount} × ${m.cpuModel}, ${m.totalMemoryMb} ${memory}, Node ${m.node}, ${m.platform}`;
}

/** The targets as table rows, with a heading row: for `table` and `markdownTable`. */
export function targetRows(targets: TargetResult[]): string[][] {
  return [['metric', 'value', 'target', 'result'], ...targets.map((t) => [t.label, `${t.value} ${t.unit}`, t.target, t.pass ? 'PASS' : 'FAIL'])];
}

/**
 * The report for stdout: the title and the machine, then each block (a table,
 * with its caption if it has one) followed by a blank line, and where the
 * results file is.
 */
export function textReport(title: string, machine: MachineInfo, blocks: string[], jsonFile: string): string {
  return ['', title, machineLine(machine), '', ...blocks.flatMap((b) => [b, '']), `results: ${path.relative(PROJECT_ROOT, jsonFile)}`, ''].join('\n');
}

/**
 * The Markdown report: its heading lines, the command that ran the benchmark,
 * the machine followed by the `about` lines (corpus, workers, …), then each
 * block followed by a blank line, and a link to the results file.
 */
export function markdownReport(report: { heading: string[]; command: string; machine: MachineInfo; about: string[]; blocks: string[]; jsonFile: string }): string {
  const file = path.basename(report.jsonFile);
  return [
    ...report.heading,
    '',
    'Command (from the repository root, with the local stack running):',
    '',
    '```sh',
    report.command,
    '```',
    '',
    `Machine: ${machineLine(report.machine, 'MB RAM')}.`,
    ...report.about,
    '',
    ...report.blocks.flatMap((b) => [b, '']),
    `All numbers: [\`${file}\`](${file}).`,
    '',
  ].join('\n');
}

/**
 * Runs `clients` concurrent loops over `items`, each taking the next item
 * until none is left, and times each call.
 */
export async function runConcurrently<T, R>(
  items: T[],
  clients: number,
  call: (item: T, client: number) => Promise<R>,
): Promise<{ wallMs: number; timings: Array<{ item: T; ms: number; client: number; result?: R; error?: string }> }> {
  const timings: Array<{ item: T; ms: number; client: number; result?: R; error?: string }> = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (next < items.length) {
        const item = items[next++]!;
        const t = performance.now();
        try {
          const result = await call(item, client);
          timings.push({ item, ms: performance.now() - t, client, result });
        } catch (err) {
          timings.push({ item, ms: performance.now() - t, client, error: err instanceof Error ? err.message : String(err) });
        }
      }
    }),
  );
  return { wallMs: performance.now() - started, timings };
}

/** Spreads `n` picks evenly over a sorted list, so runs on the same corpus pick the same items. */
export function spread<T>(xs: T[], n: number): T[] {
  return xs.length <= n ? [...xs] : Array.from({ length: n }, (_, i) => xs[Math.floor((i * xs.length) / n)]!);
}
