/**
 * Retrieval quality: does a question find the code that answers it?
 *
 *   node --import tsx bench/retrieval.bench.ts [--sets cosqa,docstring,repo] [--modes …] [--split dev|test|all] [--fresh]
 *
 * Three query sets, each indexed through the real pipeline (git → chunker →
 * Postgres full text, fast vectors and the local model's vectors in Chroma,
 * graph in Neo4j) on the local stack, and searched through the real search
 * service:
 * - cosqa: CoSQA's 500 test web queries over its 6,267 Python functions
 *   (../shared/datasets/cosqa), one file per function, scored as published
 *   (MRR, recall@k, nDCG@10); its 500 dev queries choose weights;
 * - docstring: the first sentence of a doc comment finds its function, doc
 *   removed, among thousands of functions of real npm and PyPI packages
 *   (bench/lib/docstring-pairs.ts), one file per function;
 * - repo: plain-English questions over real codebases (express, requests,
 *   pino, chi and cobra with their dependencies), each labelled with the
 *   file(s) that implement the answer (bench/datasets/repo-questions).
 * Modes, side by side: hash-only, text-only, model-only, the earlier
 * pipeline (fast vectors + full text, no re-scoring, no grouping) and the
 * full pipeline. Queries are split dev/test by a hash of their id: weights
 * are chosen on dev; the report gives test and dev apart.
 *
 * The stores keep the indexed corpora between runs (schema `bench_retrieval`,
 * Chroma prefix `bench-retrieval`), so the model embeds each text once ever;
 * `--fresh` drops them first; `--no-latency` skips the latency phase, `--no-record` the results files. Results: bench/results/retrieval-<date>.json and
 * retrieval.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createGraphExtractor } from '../shared/graph/extract.ts';
import { createChunker } from '../shared/indexing/chunker.ts';
import { createRepositoryService } from '../shared/indexing/repository.service.ts';
import { createLogger } from '../shared/logger.ts';
import { createPlatform } from '../shared/platform.ts';
import { createSearchService } from '../shared/search/hybrid-search.ts';
import { DEFAULT_RANKING, type RankingWeights } from '../shared/search/ranking.ts';
import { startWorkers } from '../workers/workers.ts';
import { PROJECT_ROOT } from '../scripts/project.ts';
import { latencyStats, log as logLine, machineInfo, machineLine, markdownTable, round, runConcurrently, sleep, spread, table, type LatencyStats } from './lib/common.ts';
import { docstringPairs } from './lib/docstring-pairs.ts';
import {
  cosqaCorpus,
  cosqaQueries,
  indexRepository,
  installCodebase,
  filesUnder,
  rankOf,
  repoQuestionFiles,
  repoQuestions,
  scoresOf,
  splitOf,
  writeRepository,
  MODES,
  type QueryCase,
  type Scores,
} from './lib/retrieval.ts';

const log = (m: string) => logLine('retrieval', m);


const { values: args } = parseArgs({
  options: {
    sets: { type: 'string', default: 'cosqa,docstring,repo' },
    modes: { type: 'string', default: Object.keys(MODES).join(',') },
    split: { type: 'string', default: 'all' },
    fresh: { type: 'boolean', default: false },
    weights: { type: 'string' },
    'no-record': { type: 'boolean', default: false },
    'no-latency': { type: 'boolean', default: false },
    // Prints the repository questions of the dev split that miss the top 5, with what came first instead.
    'show-misses': { type: 'boolean', default: false },
  },
});

async function main() {
  const dataDir = path.join(PROJECT_ROOT, '.data', 'bench', 'retrieval');
  mkdirSync(dataDir, { recursive: true });
  const env = {
    ...process.env,
    QUEUE_PREFIX: 'bench-retrieval',
    DATABASE_SCHEMA: 'bench_retrieval',
    CHROMA_COLLECTION_PREFIX: 'bench-retrieval',
    WORKSPACE_DIR: path.join(dataDir, 'workspaces'),
    EMBEDDING_PROVIDER: 'local',
    SEMANTIC_MODEL: process.env.SEMANTIC_MODEL && process.env.SEMANTIC_MODEL !== 'none' ? process.env.SEMANTIC_MODEL : 'bge-small-en-v1.5',
    // The default (half the cores) unless set: the latency phase measures searches beside the model as deployed.
    ...(process.env.SEMANTIC_THREADS ? { SEMANTIC_THREADS: process.env.SEMANTIC_THREADS } : {}),
    LOG_LEVEL: 'silent',
  };
  const config = loadConfig(env);
  const logger = createLogger({ logLevel: 'warn', logPretty: false }, { name: 'bench-retrieval', destination: 2 });
  const platform = createPlatform(config, logger);
  if (args.fresh) {
    log('dropping the stored benchmark index');
    const { rows } = await platform.stores.postgres.pool.query<{ id: string }>(`SELECT id FROM ${config.databaseSchema}.repositories`).catch(() => ({ rows: [] as Array<{ id: string }> }));
    for (const r of rows) {
      await platform.graph.deleteRepository(Number(r.id));
      await platform.vectors.deleteRepository(Number(r.id));
    }
    await platform.stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${config.databaseSchema} CASCADE`);
  }
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
  await platform.graph.ensureSchema();
  const chunker = await createChunker({ maxChunkChars: config.index.maxChunkChars });
  const workers = startWorkers({ ...platform, logger, chunker, graphExtractor: createGraphExtractor() });
  const repos = createRepositoryService(platform);
  const sets = new Set(args.sets!.split(','));
  const queries: QueryCase[] = [];
  const corpora: Array<{ name: string; files: number; chunks: number; indexMs: number; modelMs: number }> = [];

  const index = async (name: string, files: Array<{ path: string; content: string }>) => {
    const dir = path.join(dataDir, 'repos', name);
    writeRepository(dir, files);
    log(`${name}: ${files.length} files, indexing`);
    const r = await indexRepository({ platform, repos }, name, dir, log);
    log(`${name}: ${r.chunks} chunks, published in ${round(r.indexMs / 1000)} s, model vectors in ${round(r.modelMs / 1000)} s more`);
    corpora.push({ name, files: files.length, ...r });
  };

  try {
    if (sets.has('cosqa')) {
      await index('cosqa', cosqaCorpus());
      queries.push(...cosqaQueries('cosqa'));
    }
    if (sets.has('docstring')) {
      const pairs = await docstringPairs({ dir: path.join(PROJECT_ROOT, '.data', 'bench', 'docpairs'), log });
      const fileOf = (i: number) => `functions/${pairs[i]!.language}/f${String(i).padStart(5, '0')}${pairs[i]!.extension}`;
      await index('docstring', pairs.map((p, i) => ({ path: fileOf(i), content: `${p.code}\n` })));
      queries.push(
        ...pairs.map((p, i) => ({ id: p.id, set: 'docstring', split: splitOf(p.id), type: p.language, query: p.query, repository: 'docstring', relevant: [fileOf(i)] })),
      );
    }
    if (sets.has('repo')) {
      for (const spec of repoQuestionFiles()) {
        const root = installCodebase(spec, path.join(PROJECT_ROOT, '.data', 'bench', 'corpora'));
        await index(spec.codebase, filesUnder(root));
        queries.push(...repoQuestions(spec, spec.codebase));
      }
    }

    const weights: Partial<RankingWeights> = args.weights ? (JSON.parse(args.weights) as Partial<RankingWeights>) : {};
    const splits = args.split === 'all' ? ['dev', 'test'] : [args.split!];
    const results: Array<{ set: string; split: string; type: string; mode: string; scores: Scores }> = [];
    for (const modeName of args.modes!.split(',')) {
      const mode = MODES[modeName];
      if (!mode) throw new Error(`unknown mode ${modeName}: use ${Object.keys(MODES).join(', ')}`);
      const search = createSearchService(platform, { ...mode.options, ranking: { ...mode.options.ranking, ...weights } });
      const started = performance.now();
      const ranks = new Map<QueryCase, number | null>();
      for (const q of queries.filter((x) => splits.includes(x.split))) {
        // CoSQA is scored over the whole ranking (MRR); the search returns at most 100.
        const limit = q.set === 'cosqa' ? 100 : 10;
        const rank = await rankOf(search, q, limit, mode.perFile ? { perFile: mode.perFile } : {});
        ranks.set(q, rank);
        if (args['show-misses'] && q.set === 'repo' && q.split === 'dev' && (rank === null || rank > 5)) {
          const { hits } = await search.search({ query: q.query, repositories: [q.repository], limit: 5 });
          log(`miss (${modeName}, rank ${rank}): ${q.query}\n    wanted ${q.relevant.join(', ')}\n    got ${hits.map((h) => h.path).join(', ')}`);
        }
      }
      log(`${modeName}: ${ranks.size} queries in ${round((performance.now() - started) / 1000)} s`);
      const groups = new Map<string, Array<number | null>>();
      for (const [q, r] of ranks) {
        for (const key of [`${q.set}\0${q.split}\0all`, `${q.set}\0${q.split}\0${q.type}`]) {
          const g = groups.get(key) ?? [];
          g.push(r);
          groups.set(key, g);
        }
      }
      for (const [key, rs] of groups) {
        const [set, split, type] = key.split('\0') as [string, string, string];
        results.push({ set, split, type, mode: modeName, scores: scoresOf(rs) });
      }
    }

    const latency = !args['no-latency'] ? await measureLatency(platform, queries, { platform, repos }, dataDir) : undefined;
    report(results, corpora, { ...DEFAULT_RANKING, ...weights }, latency);
  } finally {
    await workers.close();
    chunker.close();
    await platform.close();
  }
}

interface Latency {
  queries: number;
  oneClient: LatencyStats;
  tenClients: LatencyStats;
  tenClientsWarmUp: LatencyStats;
  whileEmbedding: LatencyStats & { modelChunksPerSecond: number; peakRssMb: number };
}

/**
 * Search latency of the full pipeline, the model embedding each query (no
 * query is repeated, so the query-vector cache never answers): one client,
 * then ten at once after a warm-up pass of as many other queries, then ten at
 * once while the background tier embeds a fresh corpus in the same process.
 */
async function measureLatency(
  platform: ReturnType<typeof createPlatform>,
  queries: QueryCase[],
  ctx: { platform: ReturnType<typeof createPlatform>; repos: ReturnType<typeof createRepositoryService> },
  dataDir: string,
): Promise<Latency> {
  const pool = spread(queries.filter((q) => q.set !== 'cosqa').sort((a, b) => a.id.localeCompare(b.id)), 800);
  const [a, b, c, d] = [0, 1, 2, 3].map((k) => pool.filter((_, i) => i % 4 === k)) as [QueryCase[], QueryCase[], QueryCase[], QueryCase[]];
  const search = createSearchService(platform);
  const run = async (items: QueryCase[], clients: number) => {
    const { timings } = await runConcurrently(items, clients, (q) => search.search({ query: q.query, repositories: [q.repository], limit: 10 }));
    const errors = timings.filter((x) => x.error);
    if (errors.length > 0) throw new Error(`${errors.length} searches failed: ${errors[0]!.error}`);
    return latencyStats(timings.map((x) => x.ms));
  };
  log(`latency: ${a.length} queries, one client`);
  const oneClient = await run(a, 1);
  const tenClientsWarmUp = await run(b, 10);
  const tenClients = await run(c, 10);

  // A fresh corpus for the model to embed meanwhile: CoSQA's functions under another name, each with a
  // line that makes its text new to the embedding cache.
  const fresh = cosqaCorpus().slice(0, 3000).map((f, i) => ({ path: f.path, content: `# load ${Date.now()}-${i}\n${f.content}` }));
  const name = 'latency-load';
  writeRepository(path.join(dataDir, 'repos', name), fresh);
  const existing = await platform.repositories.findByName(name);
  if (existing) await ctx.repos.remove(name);
  const { jobId } = await ctx.repos.addAndIndex({ source: path.join(dataDir, 'repos', name), name });
  for (;;) {
    const job = await platform.queues.queues.index.getJob(jobId);
    if (job && (await job.getState()) === 'completed') break;
    await sleep(200);
  }
  const repo = (await platform.repositories.findByName(name))!;
  const covered = async () => ((await platform.semantic!.modelVectors.coverage(platform.semantic!.embeddings.id, [{ repositoryId: repo.id, branch: 'main' }])).values().next().value?.embedded ?? 0);
  await sleep(5000); // the semantic job is under way
  let peakRssMb = 0;
  const rss = setInterval(() => (peakRssMb = Math.max(peakRssMb, process.memoryUsage().rss / 2 ** 20)), 200);
  const before = await covered();
  const started = performance.now();
  const whileEmbedding = await run(d, 10);
  const after = await covered();
  clearInterval(rss);
  const modelChunksPerSecond = round((after - before) / ((performance.now() - started) / 1000));
  log(`latency: searches done; removing the load corpus`);
  await ctx.repos.remove(name);
  return { queries: a.length, oneClient, tenClients, tenClientsWarmUp, whileEmbedding: { ...whileEmbedding, modelChunksPerSecond, peakRssMb: round(peakRssMb) } };
}

function report(
  results: Array<{ set: string; split: string; type: string; mode: string; scores: Scores }>,
  corpora: Array<{ name: string; files: number; chunks: number; indexMs: number; modelMs: number }>,
  weights: RankingWeights,
  latency?: Latency,
) {
  const pct = (x: number) => (x * 100).toFixed(1);
  const rows = [['set', 'split', 'queries', 'mode', 'R@1', 'R@5', 'R@10', 'MRR', 'nDCG@10']];
  const main = results.filter((r) => r.type === 'all').sort((a, b) => a.set.localeCompare(b.set) || b.split.localeCompare(a.split));
  for (const r of main) rows.push([r.set, r.split, String(r.scores.queries), r.mode, pct(r.scores.recallAt1), pct(r.scores.recallAt5), pct(r.scores.recallAt10), r.scores.mrr.toFixed(3), r.scores.ndcgAt10.toFixed(3)]);
  const byType = [['set', 'split', 'type', 'queries', 'mode', 'R@5', 'MRR']];
  for (const r of results.filter((x) => x.type !== 'all' && x.set !== 'cosqa').sort((a, b) => a.set.localeCompare(b.set) || a.type.localeCompare(b.type) || a.mode.localeCompare(b.mode))) {
    byType.push([r.set, r.split, r.type, String(r.scores.queries), r.mode, pct(r.scores.recallAt5), r.scores.mrr.toFixed(3)]);
  }
  const corpusRows = [['corpus', 'files', 'chunks', 'index (s)', 'model vectors after publish (s)'], ...corpora.map((c) => [c.name, String(c.files), String(c.chunks), String(round(c.indexMs / 1000)), String(round(c.modelMs / 1000))])];
  const latencyRows = latency
    ? [
        ['search latency (full pipeline, model embeds each query)', 'queries', 'p50 ms', 'p95 ms', 'max ms', 'target p95'],
        ['one client', String(latency.oneClient.count), String(latency.oneClient.p50Ms), String(latency.oneClient.p95Ms), String(latency.oneClient.maxMs), '< 50'],
        ['10 clients, warm-up pass', String(latency.tenClientsWarmUp.count), String(latency.tenClientsWarmUp.p50Ms), String(latency.tenClientsWarmUp.p95Ms), String(latency.tenClientsWarmUp.maxMs), ''],
        ['10 clients', String(latency.tenClients.count), String(latency.tenClients.p50Ms), String(latency.tenClients.p95Ms), String(latency.tenClients.maxMs), '< 100'],
        [`10 clients while the model embeds (${latency.whileEmbedding.modelChunksPerSecond} chunks/s meanwhile, peak RSS ${latency.whileEmbedding.peakRssMb} MB)`, String(latency.whileEmbedding.count), String(latency.whileEmbedding.p50Ms), String(latency.whileEmbedding.p95Ms), String(latency.whileEmbedding.maxMs), ''],
      ]
    : undefined;
  const machine = machineInfo();
  console.log(['', 'Retrieval quality', machineLine(machine), '', table(rows), '', table(byType), '', table(corpusRows), '', ...(latencyRows ? [table(latencyRows), ''] : [])].join('\n'));
  if (args['no-record']) return;
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
  const date = new Date().toISOString().slice(0, 10);
  const dir = path.join(PROJECT_ROOT, 'bench', 'results');
  const jsonFile = path.join(dir, `retrieval-${date}.json`);
  const command = `node --import tsx bench/retrieval.bench.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  writeFileSync(jsonFile, `${JSON.stringify({ date: new Date().toISOString(), commit, command, machine, weights, modes: Object.fromEntries(Object.entries(MODES).map(([k, v]) => [k, v.about])), corpora, latency, results }, null, 2)}\n`);
  writeFileSync(
    path.join(dir, 'retrieval.md'),
    [
      '# Retrieval quality',
      '',
      `Recorded ${date} at commit \`${commit}\`. Command (from the repository root, with the local stack running):`,
      '',
      '```sh',
      command,
      '```',
      '',
      `Machine: ${machineLine(machine, 'MB RAM')}. Local model: bge-small-en-v1.5 (int8 ONNX). No API key: everything runs offline.`,
      '',
      'Modes:',
      ...Object.entries(MODES).map(([k, v]) => `- \`${k}\`: ${v.about}.`),
      '',
      'Queries are split dev/test by a hash of their id (CoSQA: its own dev and test files); ranking weights were chosen on dev only.',
      'CoSQA is scored as published (one file per function, ranked over the corpus; MRR over the first 100 results, nDCG@10 binary).',
      '',
      markdownTable(rows),
      '',
      '## By type',
      '',
      markdownTable(byType),
      '',
      '## Corpora',
      '',
      markdownTable(corpusRows),
      '',
      ...(latencyRows
        ? ['## Search latency', '', `One process holds the search side and the workers (the model tier with ${loadConfig({ ...process.env, SEMANTIC_MODEL: 'bge-small-en-v1.5' }).semantic!.threads} thread(s), \`SEMANTIC_THREADS\`), as \`npm start\` runs them side by side on one machine.`, '', markdownTable(latencyRows), '']
        : []),
      `Ranking weights: \`${JSON.stringify(weights)}\`.`,
      '',
      `All numbers: [\`${path.basename(jsonFile)}\`](${path.basename(jsonFile)}).`,
      '',
    ].join('\n'),
  );
  log(`recorded ${path.relative(PROJECT_ROOT, jsonFile)} and bench/results/retrieval.md`);
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
