/**
 * HNSW settings benchmark: what Chroma's graph settings cost to build and
 * what they give back in recall, on real vectors of an indexed repository.
 *
 *   node --import tsx bench/hnsw.bench.ts --repo NAME [--specs 16:8,32:8,64:12,100:16] [--queries 200] [--k 40] [--search-ef 100] [--out bench/results]
 *
 * NAME is a repository indexed in the configured deployment (e.g. the
 * indexing benchmark's corpus added with `npx pk-mcp repo add DIR --name
 * corpus --wait`). Its live chunks' vectors come from the embedding cache and
 * are written, with the metadata the embed job writes, to a scratch collection
 * per setting (`construction_ef:M`), through the same HTTP path the workers
 * use; each is removed after. Recall@k is measured against an exact
 * (brute-force cosine) search over the same vectors, for queries made of the
 * repository's symbol names embedded by the configured provider. Chroma's CPU
 * is read from /proc when the local stack runs it.
 *
 * Results go to stdout, `<out>/hnsw-<YYYY-MM-DD>.json` and `<out>/hnsw.md`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Collection } from 'chromadb';
import { loadConfig } from '../shared/config/config.ts';
import { createLogger } from '../shared/logger.ts';
import { createPlatform } from '../shared/platform.ts';
import { decodeVector } from '../shared/stores/chunk.repository.ts';
import { vectorMetadata } from '../workers/jobs/embed-batch.job.ts';
import { PROJECT_ROOT } from '../scripts/project.ts';
import { CLOCK_TICKS, latencyStats, log as logAs, machineInfo, markdownReport, markdownTable, round, spread, table, textReport } from './lib/common.ts';

const log = (m: string) => logAs('hnsw-bench', m);
const WRITE_BATCH = 1000;

function chromaTicks(dataDir: string): (() => number) | null {
  try {
    const stack = JSON.parse(readFileSync(path.join(dataDir, 'stack.json'), 'utf8')) as { services: { chroma?: { pid?: number } } };
    const pid = stack.services.chroma?.pid;
    if (!pid) return null;
    return () => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]);
    };
  } catch {
    return null;
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      repo: { type: 'string' },
      specs: { type: 'string', default: '16:8,32:8,64:12,100:16' },
      queries: { type: 'string', default: '200' },
      k: { type: 'string', default: '40' },
      'search-ef': { type: 'string', default: '100' },
      out: { type: 'string', default: path.join(PROJECT_ROOT, 'bench', 'results') },
    },
  });
  if (!values.repo) throw new Error('--repo NAME is required: a repository indexed in this deployment');
  const k = Number(values.k);
  const searchEf = Number(values['search-ef']);
  const specs = values.specs.split(',').map((s) => {
    const [ef, m] = s.split(':').map(Number);
    if (!ef || !m) throw new Error(`bad spec "${s}": construction_ef:M, e.g. 64:12`);
    return { ef, m };
  });

  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  const platform = createPlatform(config, createLogger({ logLevel: 'silent', logPretty: false }));
  try {
    const repo = (await platform.repositories.list()).find((r) => r.name === values.repo);
    const branch = repo?.branches.find((b) => b.branch === repo.defaultBranch && b.indexedCommit);
    if (!repo || !branch) throw new Error(`no indexed repository named "${values.repo}"`);
    const pool = platform.stores.postgres.pool;
    const { rows } = await pool.query(
      `SELECT c.id, c.path, c.language, c.start_line, c.end_line, c.symbol, c.kind, e.embedding
         FROM chunks c JOIN embedding_cache e ON e.model_id = $3 AND e.content_hash = c.content_hash
        WHERE c.repository_id = $1 AND c.branch = $2 ORDER BY c.id`,
      [repo.id, branch.branch, platform.embeddings.id],
    );
    if (rows.length === 0) throw new Error(`"${values.repo}" has no vectors of ${platform.embeddings.id} in the embedding cache`);
    const ids: string[] = rows.map((r) => r.id);
    const vectors: number[][] = rows.map((r) => decodeVector(r.embedding));
    const run = { repositoryId: repo.id, branch: branch.branch, commit: branch.indexedCommit! };
    const metadatas = rows.map((r) =>
      vectorMetadata(run, { path: r.path, language: r.language, startLine: r.start_line, endLine: r.end_line, symbol: r.symbol, kind: r.kind }),
    );
    const symbols = await pool.query<{ symbol: string }>(
      `SELECT DISTINCT symbol FROM chunks WHERE repository_id = $1 AND branch = $2 AND symbol ~ '^[A-Za-z_$][A-Za-z0-9_$.]{3,40}$' ORDER BY symbol`,
      [repo.id, branch.branch],
    );
    const queryTexts = spread(symbols.rows.map((r) => r.symbol), Number(values.queries));
    const queryVectors = await platform.embeddings.embed(queryTexts);
    log(`${ids.length} vectors of ${values.repo}, ${queryTexts.length} queries; exact top ${k} by brute force…`);
    const exact = queryVectors.map((q) => {
      const scored = vectors.map((v, i) => {
        let dot = 0;
        for (let j = 0; j < v.length; j++) dot += v[j]! * q[j]!;
        return [dot, i] as const;
      });
      scored.sort((a, b) => b[0] - a[0]);
      return new Set(scored.slice(0, k).map(([, i]) => ids[i]!));
    });

    const ticks = chromaTicks(config.dataDir);
    const results = [];
    for (const { ef, m } of specs) {
      const name = `bench-hnsw-${randomBytes(4).toString('hex')}-${ef}-${m}`;
      const collection: Collection = await platform.stores.chroma.client.getOrCreateCollection({
        name,
        embeddingFunction: null,
        metadata: { 'hnsw:space': 'cosine', 'hnsw:construction_ef': ef, 'hnsw:M': m, 'hnsw:search_ef': searchEf },
      });
      try {
        const t0 = ticks?.();
        const started = performance.now();
        for (let i = 0; i < ids.length; i += WRITE_BATCH) {
          await platform.stores.chroma.records.upsert(collection, {
            ids: ids.slice(i, i + WRITE_BATCH),
            embeddings: vectors.slice(i, i + WRITE_BATCH),
            metadatas: metadatas.slice(i, i + WRITE_BATCH),
          });
        }
        const writeMs = performance.now() - started;
        const cpuS = ticks && t0 !== undefined ? (ticks() - t0) / CLOCK_TICKS : null;
        let found = 0;
        const latencies: number[] = [];
        for (let i = 0; i < queryVectors.length; i++) {
          const t = performance.now();
          const hit = await platform.stores.chroma.records.query(collection, queryVectors[i]!, k);
          latencies.push(performance.now() - t);
          for (const id of hit.ids) if (exact[i]!.has(id)) found++;
        }
        const result = {
          constructionEf: ef,
          m,
          searchEf,
          vectorsPerSecond: round(ids.length / (writeMs / 1000)),
          chromaCpuSeconds: cpuS === null ? null : round(cpuS),
          recallAtK: round(found / (queryVectors.length * k), 3),
          query: latencyStats(latencies),
        };
        log(JSON.stringify(result));
        results.push(result);
      } finally {
        await platform.stores.chroma.client.deleteCollection({ name });
      }
    }

    const machine = machineInfo();
    const date = new Date().toISOString().slice(0, 10);
    mkdirSync(values.out, { recursive: true });
    const jsonFile = path.join(values.out, `hnsw-${date}.json`);
    const command = ['node', '--import', 'tsx', 'bench/hnsw.bench.ts', ...process.argv.slice(2)].join(' ');
    writeFileSync(jsonFile, `${JSON.stringify({ date, command, machine, repository: values.repo, vectors: ids.length, queries: queryTexts.length, k, results }, null, 2)}\n`);
    const rowsOut = [
      ['construction_ef:M', 'upsert vectors/s', 'Chroma CPU s', `recall@${k}`, 'query p50 / p95 ms'],
      ...results.map((r) => [
        `${r.constructionEf}:${r.m}`,
        String(r.vectorsPerSecond),
        r.chromaCpuSeconds === null ? 'n/a' : String(r.chromaCpuSeconds),
        String(r.recallAtK),
        `${r.query.p50Ms} / ${r.query.p95Ms}`,
      ]),
    ];
    const about = [
      `Vectors: ${ids.length} live chunks of \`${values.repo}\` (${platform.embeddings.id}), with the embed job's metadata; ${queryTexts.length} queries (symbol names), search_ef ${searchEf}, exact top ${k} by brute-force cosine.`,
    ];
    console.log(textReport(`HNSW settings benchmark — ${date}`, machine, [table(rowsOut)], jsonFile));
    writeFileSync(
      path.join(values.out, 'hnsw.md'),
      markdownReport({ heading: [`# HNSW settings (\`bench/hnsw.bench.ts\`) — ${date}`], command, machine, about, blocks: [markdownTable(rowsOut)], jsonFile }),
    );
  } finally {
    await platform.close();
  }
}

main().catch((err) => {
  console.error(`hnsw benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
