import { fileKind, type FileKind } from './file-kind.ts';

/** The retrievers whose lists are fused: model vectors, fast (hashed) vectors, full text. */
export type Retriever = 'model' | 'vector' | 'text';

/**
 * How the fused list is scored and re-scored. The numbers were chosen on the
 * benchmark's development sets (bench/retrieval.bench.ts: CoSQA dev queries,
 * and docstring pairs and repository questions of packages apart from the
 * ones each set is scored on), never on the sets the results report.
 */
export interface RankingWeights {
  /** Reciprocal rank fusion constant: larger flattens the difference between the first ranks. */
  rrfK: number;
  /** Weight of each retriever's list in the fusion. */
  model: number;
  vector: number;
  text: number;
  /** In the re-scoring: weight of the model's query–chunk similarity (spread over the candidates) against the fused rank. */
  similarity: number;
  /** Multiplier of tests, docs, examples, benchmarks, declarations and config when a plain-English query does not ask for them. */
  nonCode: number;
  /** The same for a query that names identifiers: a test or a doc that holds the very name asked for may be what is wanted. */
  nonCodeIdentifier: number;
  /** Added (relative) when a chunk defines an identifier the query names. */
  symbol: number;
  /** Added (relative) at most, for the files most imported by others in the code graph. */
  centrality: number;
  /** Candidates re-scored. */
  candidates: number;
  /** Share of a file's second-best candidate added to each of its chunks: a file that answers in several places beats one lucky chunk. */
  fileEvidence: number;
}

export const DEFAULT_RANKING: Readonly<RankingWeights> = Object.freeze({
  rrfK: 60,
  model: 1,
  vector: 0.5,
  text: 0.8,
  similarity: 2,
  nonCode: 0.35,
  nonCodeIdentifier: 0.8,
  symbol: 0.5,
  centrality: 0.1,
  candidates: 60,
  fileEvidence: 0.15,
});

/** Why a hit ranks where it does: each retriever's rank of it (1-based), its model similarity, and what moved it. */
export interface RankExplanation {
  ranks: Partial<Record<Retriever, number>>;
  /** Cosine similarity of the query and the chunk under the local model, when it has a model vector. */
  similarity?: number;
  /** The fused score before re-scoring. */
  fused: number;
  /** What changed the score: e.g. `symbol:parseQuery`, `non-code:test ×0.35`, `central:12 importers`. */
  boosts: string[];
}

export interface Candidate {
  id: string;
  path: string;
  symbol: string | null;
  ranks: Partial<Record<Retriever, number>>;
  fused: number;
  similarity?: number;
}

/** Weighted reciprocal rank fusion of the retrievers' lists (each best first). */
export function fuse(lists: Partial<Record<Retriever, string[]>>, weights: RankingWeights): Map<string, { fused: number; ranks: Partial<Record<Retriever, number>> }> {
  const out = new Map<string, { fused: number; ranks: Partial<Record<Retriever, number>> }>();
  for (const [retriever, ids] of Object.entries(lists) as Array<[Retriever, string[]]>) {
    const w = weights[retriever];
    ids.forEach((id, i) => {
      const entry = out.get(id) ?? { fused: 0, ranks: {} };
      if (entry.ranks[retriever] !== undefined) return;
      entry.ranks[retriever] = i + 1;
      entry.fused += w / (weights.rrfK + i + 1);
      out.set(id, entry);
    });
  }
  return out;
}

/**
 * Identifiers the query names: words written as code (`parseQuery`,
 * `read_config`, `Router.handle`, `getX()`), lower-cased, with a dotted
 * name's last part too. Plain words are not identifiers: "parse the query"
 * names no symbol.
 */
export function queryIdentifiers(query: string): Set<string> {
  const out = new Set<string>();
  for (const raw of query.match(/[\p{L}_$][\p{L}\p{N}_$.]*(\(\))?/gu) ?? []) {
    const word = raw.replace(/\(\)$/, '').replace(/^\.+|\.+$/g, '');
    const codeLike = /\p{Ll}\p{Lu}|_|\.|\$/u.test(word) || raw.endsWith('()') || (/^\p{Lu}\p{Ll}+\p{Lu}/u.test(word));
    if (!codeLike || word.length < 3) continue;
    out.add(word.toLowerCase());
    const last = word.split('.').pop()!;
    if (last.length >= 3) out.add(last.toLowerCase());
  }
  return out;
}

/** The identifiers of `ids` that a chunk's symbol (one name, or several packed: `a, b, c`) defines. */
function symbolMatches(symbol: string | null, ids: Set<string>): string[] {
  if (!symbol || ids.size === 0) return [];
  const found: string[] = [];
  for (const name of symbol.split(/,\s*/)) {
    const lower = name.toLowerCase();
    const last = lower.split(/[.#:]+/).pop() ?? lower;
    if (ids.has(lower) || ids.has(last)) found.push(name);
  }
  return found;
}

export interface RescoreContext {
  weights: RankingWeights;
  /** Kinds the query or the caller asks for: these are not demoted. */
  wantedKinds: Set<FileKind>;
  identifiers: Set<string>;
  /** Files importing a candidate's file, from the code graph (undefined: unknown, no boost). */
  importers?: (c: Candidate) => number | undefined;
}

/**
 * The final order of the fused candidates: the fused score (relative to the
 * best), plus the model's query–chunk similarity spread over the candidates,
 * then multiplied by what the chunk is (implementation first), whether it
 * defines an identifier the query names, and how central its file is.
 */
export function rescore(candidates: Candidate[], ctx: RescoreContext): Array<Candidate & { score: number; explain: RankExplanation }> {
  const { weights } = ctx;
  const maxFused = Math.max(...candidates.map((c) => c.fused), Number.MIN_VALUE);
  const sims = candidates.flatMap((c) => (c.similarity === undefined ? [] : [c.similarity]));
  const lo = sims.length > 0 ? Math.min(...sims) : 0;
  const hi = sims.length > 0 ? Math.max(...sims) : 0;
  const importerCounts = candidates.map((c) => ctx.importers?.(c) ?? 0);
  const maxImporters = Math.max(1, ...importerCounts);
  return candidates.map((c, i) => {
    const boosts: string[] = [];
    let score = c.fused / maxFused;
    if (c.similarity !== undefined && hi > lo) score += (weights.similarity * (c.similarity - lo)) / (hi - lo);
    const kind = fileKind(c.path);
    if (kind !== 'code' && !ctx.wantedKinds.has(kind)) {
      const factor = ctx.identifiers.size > 0 ? weights.nonCodeIdentifier : weights.nonCode;
      score *= factor;
      boosts.push(`non-code:${kind} ×${factor}`);
    }
    const defined = symbolMatches(c.symbol, ctx.identifiers);
    if (defined.length > 0) {
      score *= 1 + weights.symbol;
      boosts.push(`symbol:${defined.join(',')}`);
    }
    const importers = importerCounts[i]!;
    if (importers > 0 && weights.centrality > 0) {
      score *= 1 + (weights.centrality * Math.log1p(importers)) / Math.log1p(maxImporters);
      boosts.push(`central:${importers} importer${importers === 1 ? '' : 's'}`);
    }
    const explain: RankExplanation = { ranks: c.ranks, fused: round(c.fused), boosts };
    if (c.similarity !== undefined) explain.similarity = round(c.similarity);
    return { ...c, score, explain };
  });
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * Adds to every candidate a share of the second-best score among its file's candidates (`fileEvidence`):
 * evidence from more than one place in a file. Order within a file is unchanged.
 */
export function withFileEvidence<T extends { score: number; explain: RankExplanation }>(scored: T[], fileOf: (c: T) => string, weight: number): T[] {
  if (weight <= 0) return scored;
  const best = new Map<string, [number, number]>();
  for (const c of scored) {
    const key = fileOf(c);
    const [first, second] = best.get(key) ?? [-Infinity, -Infinity];
    if (c.score > first) best.set(key, [c.score, first]);
    else if (c.score > second) best.set(key, [first, c.score]);
  }
  return scored.map((c) => {
    const second = best.get(fileOf(c))![1];
    if (!Number.isFinite(second) || second <= 0) return c;
    const bonus = weight * second;
    return { ...c, score: c.score + bonus, explain: { ...c.explain, boosts: [...c.explain.boosts, `file:+${round(bonus)}`] } };
  });
}
