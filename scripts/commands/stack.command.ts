import type { Command } from 'commander';
import { PROJECT_ROOT } from '../project.ts';
import { displayUrl, SERVICES, stackDown, stackStatus, stackUp } from '../stack/stack.ts';
import type { StackContext } from '../stack/service.ts';
import { parseEnv, semanticConfig } from '../../shared/config/config.ts';
import { prepareModel } from '../stack/model.ts';
import path from 'node:path';

export function registerStackCommands(program: Command): void {
  const stack = program
    .command('stack')
    .description('run the real stores (Redis, Postgres, ChromaDB, Neo4j) as local processes on 127.0.0.1, data in .data/');

  stack
    .command('up')
    .description('start every store whose URL is not set in the environment; wait until each answers')
    .action(async () => {
      const reports = await stackUp({ projectRoot: PROJECT_ROOT });
      for (const r of reports) {
        console.log(`${r.name.padEnd(9)} ${r.state.padEnd(8)} ${displayUrl(r.url)}${r.pid ? `  (pid ${r.pid})` : ''}`);
      }
    });

  stack
    .command('down')
    .description('stop the stores this stack started (data is kept)')
    .action(async () => {
      const reports = await stackDown({ projectRoot: PROJECT_ROOT });
      if (reports.length === 0) console.log('nothing to stop');
      for (const r of reports) console.log(`${r.name.padEnd(9)} stopped`);
    });

  stack
    .command('status')
    .description('show each store: where it runs and whether it answers (exit 1 when any does not)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const reports = await stackStatus({ projectRoot: PROJECT_ROOT });
      if (opts.json) console.log(JSON.stringify(reports.map((r) => ({ ...r, url: r.url && displayUrl(r.url) })), null, 2));
      else {
        for (const r of reports) {
          const where = r.url ? displayUrl(r.url) : '-';
          console.log(`${r.name.padEnd(9)} ${r.status.padEnd(12)} ${r.source.padEnd(15)} ${where}${r.error ? `  ${r.error}` : ''}`);
        }
      }
      if (reports.some((r) => r.status !== 'ok')) process.exitCode = 1;
    });

  stack
    .command('prepare')
    .description('install and resolve what the local stores need (redis-server, Neo4j jars) and the local embedding model, without starting anything')
    .action(async () => {
      const env = parseEnv();
      const ctx: StackContext = {
        projectRoot: PROJECT_ROOT,
        dataDir: path.resolve(PROJECT_ROOT, env.PK_DATA_DIR),
        autoInstall: env.STACK_AUTO_INSTALL ?? true,
        log: (m) => console.error(m),
      };
      for (const service of SERVICES) {
        if (env[service.envVar]) continue;
        await service.prepare(ctx);
        console.log(`${service.name.padEnd(9)} ready to start`);
      }
      const semantic = semanticConfig(env, ctx.dataDir);
      if (semantic) {
        await prepareModel(semantic.model, semantic.modelDir, ctx.log);
        console.log(`${'model'.padEnd(9)} ${semantic.model} ready in ${path.relative(process.cwd(), semantic.modelDir) || '.'}`);
      }
    });
}
