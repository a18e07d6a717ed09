import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/config.ts';
import { createSearchService } from '../../shared/search/hybrid-search.ts';
import { cosqaCorpus, cosqaQueries, indexRepository, MODES, rankOf, scoresOf, writeRepository, type QueryCase } from '../../bench/lib/retrieval.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';

/**
 * A regression floor for search quality, from the retrieval benchmark
 * (bench/retrieval.bench.ts) cut to what a test run can afford: 60 of
 * CoSQA's dev queries over their 60 answers and 440 other functions of its
 * corpus, indexed through the real pipeline with the local model. The floors
 * sit below what the full pipeline measured on this subset (see each
 * assertion), so a change that costs search quality fails here before it
 * ships; the benchmark itself measures the full sets.
 */
const modelDir = path.join(loadConfig({ ...process.env, SEMANTIC_MODEL: 'bge-small-en-v1.5' }).dataDir, 'models');

describe('retrieval quality floor', () => {
  let t: TestPlatform;
  let dir: string;
  let queries: QueryCase[];

  beforeAll(async () => {
    const corpus = cosqaCorpus();
    queries = cosqaQueries('cosqa')
      .filter((q) => q.split === 'dev')
      .sort((a, b) => a.id.localeCompare(b.id))
      .filter((_, i) => i % 8 === 0)
      .slice(0, 60)
      .map((q) => ({ ...q, repository: 'cosqa-subset' }));
    const answers = new Set(queries.flatMap((q) => q.relevant));
    const others = corpus.filter((f) => !answers.has(f.path)).filter((_, i) => i % 13 === 0).slice(0, 440);
    dir = mkdtempSync(path.join(tmpdir(), 'pk-floor-'));
    writeRepository(dir, [...corpus.filter((f) => answers.has(f.path)), ...others]);
    t = await openTestPlatform({ semantic: { model: 'bge-small-en-v1.5', modelDir, threads: 2, batch: 8 } });
    await t.startWorkers();
    await indexRepository({ platform: t.platform, repos: t.repos }, 'cosqa-subset', dir, () => undefined);
  }, 300_000);

  afterAll(async () => {
    await t?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const measure = async (mode: keyof typeof MODES) => {
    const search = createSearchService(t.platform, MODES[mode]!.options);
    const ranks: Array<number | null> = [];
    for (const q of queries) ranks.push(await rankOf(search, q, 50));
    return scoresOf(ranks);
  };

  it('the full pipeline finds web questions’ answers well above full text alone', async () => {
    const [full, text] = [await measure('full'), await measure('text-only')];
    // Measured on this subset when the floor was set (2026-12-04): full MRR 0.794, R@5 0.883; text-only MRR 0.561, R@5 0.700.
    expect(full.mrr).toBeGreaterThanOrEqual(0.7);
    expect(full.recallAt5).toBeGreaterThanOrEqual(0.8);
    expect(full.mrr).toBeGreaterThan(text.mrr + 0.15);
  }, 120_000);
});
