/**
 * CPU used by groups of processes over a stretch of time, from /proc: says
 * which process (Chroma, Postgres, Neo4j, the API, the MCP servers) a slow
 * phase keeps busy. A group is a pid with or without its descendants
 * (Postgres runs a backend process per connection).
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { readStackState } from '../../shared/config/config.ts';
import { CLOCK_TICKS, machineTicks, round } from './common.ts';

export interface CpuGroup {
  name: string;
  /** One process, or several (the stdio servers of every client). */
  pids: number[];
  withDescendants: boolean;
}

export type ProcessTable = Map<number, { ppid: number; ticks: number }>;

/**
 * CPU time (user + system, in clock ticks) of every live process, by pid.
 * With `reapedChildren`, a process's time includes that of the children it
 * has waited for (the indexing worker's short-lived `git cat-file`).
 */
export function processTable(options: { reapedChildren?: boolean } = {}): ProcessTable {
  const table: ProcessTable = new Map();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]) + (options.reapedChildren ? Number(fields[13]) + Number(fields[14]) : 0);
      table.set(pid, { ppid: Number(fields[1]), ticks });
    } catch {
      // exited while we looked
    }
  }
  return table;
}

/** CPU seconds of each group in `table`, and every pid counted in a group. */
export function groupSeconds(groups: CpuGroup[], table: ProcessTable): { seconds: Record<string, number>; counted: Set<number> } {
  const children = new Map<number, number[]>();
  for (const [pid, p] of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  const seconds: Record<string, number> = {};
  const counted = new Set<number>();
  for (const g of groups) {
    let ticks = 0;
    const stack = [...g.pids];
    while (stack.length > 0) {
      const pid = stack.pop()!;
      counted.add(pid);
      ticks += table.get(pid)?.ticks ?? 0;
      if (g.withDescendants) stack.push(...(children.get(pid) ?? []));
    }
    seconds[g.name] = ticks / CLOCK_TICKS;
  }
  return { seconds, counted };
}

/** What `coresBetween` needs of a snapshot: each group's CPU seconds and the machine's ticks. */
export interface CpuTicks {
  seconds: Record<string, number>;
  machine: { busy: number; total: number };
}

/**
 * The cores each group used on average between two snapshots `wallS` seconds
 * apart, and `other`: what the machine used beyond the groups (on a shared
 * machine, someone else's work). `busy` is the machine's busy share, 0 to 1.
 */
export function coresBetween(first: CpuTicks, last: CpuTicks, wallS: number): { cores: Record<string, number>; busy: number } {
  const cores: Record<string, number> = {};
  for (const name of Object.keys(last.seconds)) cores[name] = round((last.seconds[name]! - (first.seconds[name] ?? 0)) / wallS, 2);
  const total = last.machine.total - first.machine.total;
  const busy = total > 0 ? (last.machine.busy - first.machine.busy) / total : 0;
  cores.other = round(Math.max(0, busy * os.cpus().length - Object.values(cores).reduce((a, b) => a + b, 0)), 2);
  return { cores, busy };
}

interface Snapshot extends CpuTicks {
  at: number;
}

function snapshot(groups: CpuGroup[]): Snapshot {
  const { seconds } = groupSeconds(groups, processTable());
  return { at: performance.now(), seconds, machine: machineTicks() };
}

/** The local stack's servers (from `.data/stack.json`), each with its child processes. */
export function stackGroups(dataDir: string): CpuGroup[] {
  const services = readStackState(dataDir)?.services ?? {};
  return (['postgres', 'chroma', 'redis', 'neo4j'] as const).flatMap((s) => (services[s]?.pid ? [{ name: s, pids: [services[s]!.pid!], withDescendants: true }] : []));
}

/** Starts measuring; `stop()` returns the cores each group used on average (2.0 = both cores of a 2-core machine). */
export function measureCpu(groups: CpuGroup[]) {
  const first = snapshot(groups);
  return {
    stop(): { wallMs: number; cores: Record<string, number>; machineBusyPercent: number } {
      const last = snapshot(groups);
      const wallS = Math.max(1e-3, (last.at - first.at) / 1000);
      const { cores, busy } = coresBetween(first, last, wallS);
      return { wallMs: Math.round(last.at - first.at), cores, machineBusyPercent: round(busy * 100) };
    },
  };
}
