import type { Command } from 'commander';
import type { Platform } from '../../shared/platform.ts';
import { list, printJson, withPlatform } from './cli-support.ts';

interface ScopeOptions {
  repo?: string[];
  depth?: number;
  limit?: number;
  json?: boolean;
}

const int = (v: string) => Number(v);

const graphQueries = async (platform: Platform) => (await import('../../shared/graph/graph-query.service.ts')).createGraphQueryService(platform);

function commits(list: Array<{ repository: string; commit: string }>): string {
  return list.map((c) => `${c.repository}@${c.commit.slice(0, 12)}`).join(', ');
}

export function registerGraphCommands(program: Command): void {
  const graph = program.command('graph').description('ask the code graph: symbols, callers, callees, dependencies');

  graph
    .command('symbol')
    .description('find symbols by name (exact, or --prefix)')
    .argument('<name>', 'symbol name or qualified name (Class.method)')
    .option('--repo <names>', 'only these repositories (comma-separated)', list)
    .option('--prefix', 'match names starting with <name>')
    .option('--kind <kind>', 'function, method, class, interface, type, enum, struct, trait')
    .option('--limit <n>', 'at most this many (1-200)', int, 50)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: ScopeOptions & { prefix?: boolean; kind?: string }) => {
      await withPlatform(async (platform) => {
        const r = await (await graphQueries(platform)).findSymbol(name, { repositories: opts.repo, prefix: opts.prefix, kind: opts.kind, limit: opts.limit });
        if (opts.json) return printJson(r);
        if (r.results.length === 0) return console.log(`no symbol named "${name}"`);
        for (const s of r.results) console.log(`${s.repository}:${s.path}:${s.startLine}-${s.endLine}  ${s.kind} ${s.qualifiedName}`);
        console.error(`from ${commits(r.commits)}`);
      }, ['neo4j']);
    });

  for (const direction of ['callers', 'callees'] as const) {
    graph
      .command(direction)
      .description(direction === 'callers' ? 'who calls this symbol (to --depth levels)' : 'what this symbol calls (to --depth levels)')
      .argument('<symbol>', 'symbol name or qualified name (Class.method)')
      .option('--repo <names>', 'only these repositories (comma-separated)', list)
      .option('--path <path>', 'only the symbol defined in this file')
      .option('--depth <n>', 'levels to follow (1-5)', int, 1)
      .option('--limit <n>', 'at most this many (1-200)', int, 50)
      .option('--json', 'print JSON')
      .action(async (symbol: string, opts: ScopeOptions & { path?: string }) => {
        await withPlatform(async (platform) => {
          const service = (await graphQueries(platform));
          const r = await service[direction](symbol, { repositories: opts.repo, path: opts.path, depth: opts.depth, limit: opts.limit });
          if (opts.json) return printJson(r);
          if (r.results.length === 0) console.log(`no ${direction} of ${symbol} found`);
          for (const s of r.results) console.log(`${'  '.repeat(s.depth - 1)}${s.repository}:${s.path}:${s.startLine}  ${s.qualifiedName}`);
          console.error(`from ${commits(r.commits)}`);
        }, ['neo4j']);
      });
  }

  for (const direction of ['deps', 'dependents'] as const) {
    graph
      .command(direction)
      .description(direction === 'deps' ? 'files and modules this file imports (to --depth levels)' : 'files that import this file (to --depth levels)')
      .argument('<path>', 'repository-relative file path')
      .option('--repo <name>', 'repository (needed when several have this path)')
      .option('--depth <n>', 'levels to follow (1-5)', int, 1)
      .option('--limit <n>', 'at most this many (1-200)', int, 50)
      .option('--json', 'print JSON')
      .action(async (filePath: string, opts: { repo?: string; depth: number; limit: number; json?: boolean }) => {
        await withPlatform(async (platform) => {
          const service = (await graphQueries(platform));
          const options = { repository: opts.repo, depth: opts.depth, limit: opts.limit };
          const r = direction === 'deps' ? await service.dependencies(filePath, options) : await service.dependents(filePath, options);
          if (opts.json) return printJson(r);
          if (r.results.length === 0) console.log(direction === 'deps' ? `${r.path} imports nothing` : `nothing imports ${r.path}`);
          for (const x of r.results) console.log(`${'  '.repeat(x.depth - 1)}${x.kind === 'module' ? `module ${x.module}` : x.path}`);
          console.error(`from ${r.repository}@${r.commit.slice(0, 12)}`);
        }, ['neo4j']);
      });
  }

  graph
    .command('path')
    .description('shortest call path from one symbol to another')
    .argument('<from>', 'calling symbol')
    .argument('<to>', 'called symbol')
    .option('--repo <name>', 'repository')
    .option('--depth <n>', 'longest path to look for (1-10)', int, 6)
    .option('--json', 'print JSON')
    .action(async (from: string, to: string, opts: { repo?: string; depth: number; json?: boolean }) => {
      await withPlatform(async (platform) => {
        const r = await (await graphQueries(platform)).path(from, to, { repository: opts.repo, maxDepth: opts.depth });
        if (opts.json) return printJson(r);
        if (!r.found) return console.log(`no call path from ${from} to ${to} within ${opts.depth} calls`);
        console.log(r.path.map((s) => `${s.qualifiedName} (${s.path}:${s.startLine})`).join('\n  → '));
        console.error(`from ${r.repository}@${r.commit?.slice(0, 12)}`);
      }, ['neo4j']);
    });

  graph
    .command('architecture')
    .description("a repository's folders and the imports between them")
    .argument('<repo>', 'repository name')
    .option('--depth <n>', 'folder levels (1-4)', int, 1)
    .option('--json', 'print JSON')
    .action(async (repo: string, opts: { depth: number; json?: boolean }) => {
      await withPlatform(async (platform) => {
        const r = await (await graphQueries(platform)).architecture(repo, { depth: opts.depth });
        if (opts.json) return printJson(r);
        console.log('folders:');
        for (const f of r.folders) console.log(`  ${f.folder.padEnd(40)} ${f.files} files, ${f.symbols} symbols`);
        console.log('imports between folders:');
        for (const e of r.edges) console.log(`  ${e.from} → ${e.to}  (${e.imports})`);
        console.log('most used external modules:');
        for (const m of r.externalModules.slice(0, 15)) console.log(`  ${m.module}  (${m.importers} files)`);
        console.error(`from ${r.repository}@${r.commit.slice(0, 12)}`);
      }, ['neo4j']);
    });
}
