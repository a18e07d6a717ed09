import { spawn, type ChildProcess } from 'node:child_process';
import type { Command } from 'commander';
import { loadConfig } from '../../shared/config/config.ts';
import { PROJECT_ROOT, tsNodeArgs } from '../project.ts';
import { sleep } from '../stack/process.ts';
import { displayUrl, stackDown, stackUp } from '../stack/stack.ts';
import { prepareModel } from '../stack/model.ts';
import type { StoreName } from '../../shared/stores/store.ts';

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${url}/health`)).ok) return true;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  return false;
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('bring up the local stack when needed, then the API and the workers; Ctrl-C stops everything it started')
    .option('--no-stack', 'do not start local stores (use the configured URLs only)')
    .action(async (opts: { stack: boolean }) => {
      let startedStores: StoreName[] = [];
      if (opts.stack) {
        const reports = await stackUp({ projectRoot: PROJECT_ROOT });
        for (const r of reports) console.log(`  ${r.name.padEnd(9)} ${r.state.padEnd(8)} ${displayUrl(r.url)}`);
        startedStores = reports.filter((r) => r.state === 'started').map((r) => r.name);
      }
      const config = loadConfig();
      if (config.semantic) {
        // The model is fetched on the first start, like Neo4j's jars; without it the platform still runs (full text and fast vectors).
        await prepareModel(config.semantic.model, config.semantic.modelDir, (m) => console.log(`  ${m}`)).catch((err: unknown) =>
          console.error(`  model: could not fetch ${config.semantic!.model} (${err instanceof Error ? err.message : String(err)}); search runs on full text and fast vectors until \`npx pk-mcp stack prepare\` succeeds`),
        );
      }
      const children = (['api/server.ts', 'workers/main.ts'] as const).map((entry) =>
        spawn(process.execPath, tsNodeArgs(entry), { cwd: PROJECT_ROOT, stdio: 'inherit', env: process.env }),
      );

      let stopping: Promise<void> | undefined;
      const stop = (code: number) =>
        (stopping ??= (async () => {
          await Promise.all(
            children.map(
              (c) =>
                new Promise<void>((resolve) => {
                  if (c.exitCode !== null || c.signalCode !== null) return resolve();
                  c.once('exit', () => resolve());
                  c.kill('SIGTERM');
                  setTimeout(() => c.kill('SIGKILL'), config.shutdownTimeoutMs + 5000).unref();
                }),
            ),
          );
          if (startedStores.length > 0) {
            console.log(`stopping the local stores this run started: ${startedStores.join(', ')}`);
            await stackDown({ projectRoot: PROJECT_ROOT, only: startedStores });
          }
          process.exit(code);
        })());
      process.on('SIGINT', () => void stop(0));
      process.on('SIGTERM', () => void stop(0));
      for (const child of children) {
        child.on('exit', (code, signal) => {
          if (!stopping) {
            console.error(`a platform process exited unexpectedly (${signal ?? `code ${code}`}); stopping`);
            void stop(1);
          }
        });
      }

      const hostForUrl = config.api.host === '0.0.0.0' ? '127.0.0.1' : config.api.host;
      const base = `http://${hostForUrl}:${config.api.port}`;
      if (await waitForHealth(base, children[0]!, 60_000)) {
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
