import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig, parseEnv, readStackState } from '../../shared/config/config.ts';
import { PROJECT_ROOT, tsNodeArgs } from '../project.ts';
import { isAlive, sleep } from '../stack/process.ts';
import { displayUrl, stackDown, stackUp, type ServiceReport } from '../stack/stack.ts';
import { prepareModel } from '../stack/model.ts';
import type { StoreName } from '../../shared/stores/store.ts';
import { childProcessRunning, DEFAULT_POLICY, Supervisor, type Running, type Unit } from '../supervisor.ts';
import { wholeNumber } from './cli-support.ts';

async function waitForHealth(url: string, alive: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && alive()) {
    try {
      if ((await fetch(`${url}/health`)).ok) return true;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  return false;
}

async function portFree(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return;
    await sleep(250);
  }
}

/** `stack up` in a child process; the restarted store's pid from the state file it records. */
async function restartStores(env: NodeJS.ProcessEnv, name: string): Promise<number | undefined> {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'scripts/pk-mcp.js'), 'stack', 'up'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  if (err.trim()) console.error(err.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
  if (code !== 0) throw new Error(err.trim().split('\n').at(-1) ?? `stack up exited with code ${code}`);
  const state = readStackState(path.resolve(PROJECT_ROOT, parseEnv(env).PK_DATA_DIR));
  return state?.services[name as StoreName]?.pid;
}

/** The API or the worker process, started again after a crash with the same command. */
function platformProcess(name: string, entry: string, stopTimeoutMs: number): Unit {
  return {
    name,
    start: async () =>
      childProcessRunning(spawn(process.execPath, tsNodeArgs(entry), { cwd: PROJECT_ROOT, stdio: ['inherit', 'inherit', 'pipe'], env: process.env }), stopTimeoutMs),
  };
}

/**
 * A store this run's `stack up` started. Stores run detached (their own process groups, logs in
 * .data/logs/), so its end is seen by polling its pid; it is started again by `stackUp`, which restarts
 * what died on the same data and port and keeps what answers. The API and workers reconnect on their own.
 */
function storeProcess(report: ServiceReport, logsDir: string): Unit {
  let pid = report.pid;
  let first = true;
  const port = report.url ? new URL(report.url).port : '';
  const portVar = `STACK_${report.name.toUpperCase()}_PORT`;
  return {
    name: report.name,
    async start(): Promise<Running> {
      if (!first) {
        // A child the store forked (Redis' AOF rewrite) can hold the listening socket a moment longer than
        // the store itself: wait for the port, so the store comes back where the API and workers look for it.
        if (port) await portFree(Number(port), 15_000);
        // In a process of its own: get-port, which `stackUp` picks ports with, keeps each port it handed out
        // locked in that process for a while, so a second `stackUp` here would move the store to another port.
        pid = await restartStores({ ...process.env, ...(port ? { [portVar]: port } : {}) }, report.name);
      }
      first = false;
      const watched = pid;
      let stopped = false;
      const ended = (async () => {
        while (!stopped && isAlive(watched)) await sleep(1000);
        let lastError: string | undefined;
        try {
          lastError = readFileSync(path.join(logsDir, `${report.name}.log`), 'utf8').trimEnd().split('\n').at(-1)?.slice(0, 500);
        } catch {
          // no log
        }
        return { how: `pid ${watched} is gone`, lastError: lastError && `${lastError} (the last line of its log)` };
      })();
      return {
        pid: watched,
        ended,
        async stop() {
          stopped = true;
          await stackDown({ projectRoot: PROJECT_ROOT, only: [report.name as StoreName] });
        },
      };
    },
  };
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description(
      'bring up the local stack when needed, then the API and the workers, and keep them running: a process or local store that ends unexpectedly is started again after a backoff (1 s, doubling, at most 30 s) while the rest keep serving; one that ends --max-crashes times within --crash-window stops everything with its last error. Ctrl-C stops everything it started, in order (API, workers, stores)',
    )
    .option('--no-stack', 'do not start local stores (use the configured URLs only)')
    .addOption(new Option('--max-crashes <n>', 'ends of one process within --crash-window that stop everything (1-100)').env('PK_MCP_MAX_CRASHES').default(DEFAULT_POLICY.maxCrashes).argParser(wholeNumber('--max-crashes', 1, 100)))
    .addOption(new Option('--crash-window <seconds>', 'the window --max-crashes counts in (1-3600)').env('PK_MCP_CRASH_WINDOW').default(DEFAULT_POLICY.windowMs / 1000).argParser(wholeNumber('--crash-window', 1, 3600)))
    .action(async (opts: { stack: boolean; maxCrashes: number; crashWindow: number }) => {
      let storeReports: ServiceReport[] = [];
      if (opts.stack) {
        const reports = await stackUp({ projectRoot: PROJECT_ROOT });
        for (const r of reports) console.log(`  ${r.name.padEnd(9)} ${r.state.padEnd(8)} ${displayUrl(r.url)}`);
        storeReports = reports.filter((r) => r.state === 'started');
      }
      const config = loadConfig();
      if (config.semantic) {
        // The model is fetched on the first start, like Neo4j's jars; without it the platform still runs (full text and fast vectors).
        await prepareModel(config.semantic.model, config.semantic.modelDir, (m) => console.log(`  ${m}`)).catch((err: unknown) =>
          console.error(`  model: could not fetch ${config.semantic!.model} (${err instanceof Error ? err.message : String(err)}); search runs on full text and fast vectors until \`npx pk-mcp stack prepare\` succeeds`),
        );
      }
      const stopTimeoutMs = config.shutdownTimeoutMs + 5000;
      // Stopped in this order: HTTP first (no new work), then the workers, then the stores this run started.
      const supervisor = new Supervisor(
        [
          platformProcess('api', 'api/server.ts', stopTimeoutMs),
          platformProcess('workers', 'workers/main.ts', stopTimeoutMs),
          ...storeReports.map((r) => storeProcess(r, path.join(config.dataDir, 'logs'))),
        ],
        (line) => console.error(`supervisor: ${line}`),
        { ...DEFAULT_POLICY, maxCrashes: opts.maxCrashes, windowMs: opts.crashWindow * 1000 },
      );

      let stopping: Promise<void> | undefined;
      const stop = (code: number) =>
        (stopping ??= (async () => {
          await supervisor.stop();
          if (storeReports.length > 0) console.log(`stopped the local stores this run started: ${storeReports.map((r) => r.name).join(', ')}`);
          process.exit(code);
        })());
      process.on('SIGINT', () => void stop(0));
      process.on('SIGTERM', () => void stop(0));
      void supervisor.done.then((err) => {
        console.error(`supervisor: stopping: ${err.message}`);
        void stop(1);
      });
      await supervisor.start();

      const hostForUrl = config.api.host === '0.0.0.0' ? '127.0.0.1' : config.api.host;
      const base = `http://${hostForUrl}:${config.api.port}`;
      if (await waitForHealth(base, () => !stopping, 60_000)) {
        console.log(
          [
            '',
            'Personal Knowledge MCP is running',
            `  API        ${base}`,
            `  readiness  ${base}/ready`,
            `  MCP        ${base}/mcp (Streamable HTTP), or \`npx pk-mcp mcp\` over stdio`,
            `  dashboard  ${base}/admin/queues`,
            'Press Ctrl-C to stop.',
            '',
          ].join('\n'),
        );
      }
    });
}
