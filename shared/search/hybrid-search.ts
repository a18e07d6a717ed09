import { queryWords, wordParts } from './code-tokens.ts';
import { compilePathGlob } from '../path-glob.ts';
import { EmbeddingError, type EmbeddingErrorKind } from '../embeddings/embedding-provider.ts';
import { badRequest, findNulCharacter, notFound, nulCharacterMessage } from '../errors.ts';
import { LANGUAGES } from '../indexing/language.ts';
import { isChromaUnavailable } from '../stores/chroma.connection.ts';
import type { Logger } from '../logger.ts';
import type { Platform } from '../platform.ts';
import type { LiveChunk } from '../stores/chunk.repository.ts';
import { coverageKey, type SemanticCoverage } from '../stores/model-vector.repository.ts';
import { FILE_KINDS, fileKind, kindsAskedFor, type FileKind } from './file-kind.ts';
import { redactEach } from '../redaction/secret-redaction.ts';
import { DEFAULT_RANKING, fuse, queryIdentifiers, rescore, withFileEvidence, type RankExplanation, type RankingWeights, type Retriever } from './ranking.ts';

export interface SearchQuery {
  query: string;
  /** Repository names; all repositories of the allowed instances when omitted. */
  repositories?: string[];
  /** Instances the caller may see; every instance when omitted. */
  instances?: string[];
  language?: string;
  /** Glob over repository-relative paths, e.g. `src/**\/*.ts`. */
  pathGlob?: string;
  limit?: number;
  /** Only files of these kinds (code, test, docs, types, example, bench, config); every kind when omitted, implementation first. */
  kinds?: FileKind[];
  /** Hits of one file at most (default 1: one file does not fill the list unless asked). */
  perFile?: number;
}

export interface SearchHit {
  repository: string;
  branch: string;
  commit: string;
  path: string;
  startLine: number;
  endLine: number;
  symbol: string | null;
  kind: string;
  /** What the file is for, from its path: implementation code, or tests, docs, examples, benchmarks, type declarations, config. */
  fileKind: FileKind;
  language: string | null;
  snippet: string;
  score: number;
  /** Which retrievers found it: model (the local model's vectors), vector (fast vectors, or the API model's), text. */
  matchedBy: Retriever[];
  /** Why it ranks here: each retriever's rank, the model similarity, and what boosted or demoted it. */
  explain: RankExplanation;
}

/**
 * Something that made a search answer less than it could, while still
 * answering. `vector_search_unavailable`: the query could not be embedded
 * or the vector store did not answer, so the hits come from the rest;
 * `model_search_unavailable`: the local model could not embed the query;
 * `semantic_coverage_incomplete`: the background model tier has not yet
 * embedded every chunk of a repository, so those rank by text and fast
 * vectors alone.
 */
export const SEARCH_WARNING_CODES = ['vector_search_unavailable', 'model_search_unavailable', 'semantic_coverage_incomplete'] as const;
export type SearchWarningCode = (typeof SEARCH_WARNING_CODES)[number];

export interface SearchWarning {
  code: SearchWarningCode;
  /** For people and agents: what is missing and why, without internals (URLs, server messages). */
  message: string;
}

export interface SearchResult {
  hits: SearchHit[];
  tookMs: number;
  /** Empty when both retrievers answered. */
  warnings: SearchWarning[];
}

/**
 * The query embedding is waited for by a person or an agent, unlike an
 * indexing batch (6 retries over about a minute and a half, then the queue
 * retries the job): a one-input request takes OpenAI a few hundred
 * milliseconds, a refused connection fails at once and one retry after a
 * ~0.5 s backoff rides out a blip, and past two seconds the search answers
 * from full text rather than keep the caller waiting.
 */
export const QUERY_EMBEDDING = Object.freeze({ timeoutMs: 2000, maxRetries: 1 });

/** Why the query could not be embedded, in words safe to show any caller: an API key rejection message can quote part of the key. */
const EMBEDDING_FAILURE: Record<EmbeddingErrorKind, string> = {
  network: 'the embedding server could not be reached',
  timeout: 'the embedding server did not answer in time',
  rate_limited: 'the embedding server is rate limiting requests',
  server: 'the embedding server failed',
  quota: 'the embedding account has run out of quota',
  auth: 'the embedding server rejected the API key',
  forbidden: 'the embedding server refused access to the model',
  not_found: 'the embedding server does not offer the configured model',
  too_large: 'the embedding server found the query too large',
  bad_request: 'the embedding server rejected the query',
  invalid_response: 'the embedding server answered with something other than an embedding',
  config: 'embeddings are not configured correctly',
};

function vectorSearchUnavailable(err: EmbeddingError): SearchWarning {
  return {
    code: 'vector_search_unavailable',
    message: `vector search unavailable: ${EMBEDDING_FAILURE[err.kind]}; results come from full-text search alone`,
  };
}

function modelSearchUnavailable(err: EmbeddingError): SearchWarning {
  const why = err.kind === 'config' ? 'its files are missing or damaged (run `npx pk-mcp stack prepare`)' : err.kind === 'timeout' ? 'it did not answer in time' : 'it failed';
  return { code: 'model_search_unavailable', message: `the local embedding model could not embed the query: ${why}; results come from full text and fast vectors` };
}

function coverageIncomplete(repository: string, c: SemanticCoverage): SearchWarning {
  const pct = c.total === 0 ? 100 : Math.floor((100 * (c.embedded + c.failed)) / c.total);
  return {
    code: 'semantic_coverage_incomplete',
    message: `${repository}: the local model has embedded ${c.embedded} of ${c.total} chunks (${pct}%) so far; the rest rank by full text and fast vectors until it catches up`,
  };
}

const VECTOR_STORE_UNAVAILABLE: SearchWarning = Object.freeze({
  code: 'vector_search_unavailable',
  message: 'vector search unavailable: the vector store (ChromaDB) could not be reached or did not answer in time; results come from full-text search alone',
});

const MAX_LIMIT = 100;
const SNIPPET_LINES = 12;
const SNIPPET_CHARS = 700;

/** Words that carry no meaning in a question about code, and would make every chunk match. */
const STOP_WORDS = new Set(
  'a an and are as at be by can do does for from how i in is it of on or that the this to what when where which who why with'.split(' '),
);

export interface FullTextTerm {
  /** tsquery of one query word: the word (with its plain forms), or an identifier whole or by all its parts. */
  expr: string;
  /** The same, matching only in symbols and paths (weights A and B). */
  named: string;
  /** The lexemes it looks for, to weigh it by how rare they are. */
  lexemes: string[];
}

export interface FullTextQuery {
  /** tsquery: every query word. */
  all: string;
  /** tsquery: any query word. */
  any: string;
  words: number;
  terms: FullTextTerm[];
}

const MAX_QUERY_WORDS = 16;

/**
 * The full-text query for a search, shaped by how the index tokenizes code
 * (code-tokens.ts): content by sub-tokens (`get`, `user`, `name`; split at
 * punctuation and camelCase/acronym boundaries, digits kept with their
 * letters: `utf8`), symbols also whole (`getusername`). So each query word
 * matches either whole or by all its parts (`(getusername | get & user &
 * name)`, which also finds `getUserNameById` and `user.getName`), always as
 * exact lexemes: prefix patterns expand to thousands of index entries. Stop
 * words and one-letter words are dropped; null when nothing is left to search
 * for. Characters tsquery would read as operators never reach it: words are
 * letters and digits only.
 */
export function fullTextQuery(query: string): FullTextQuery | null {
  const terms = new Map<string, FullTextTerm>();
  for (const word of searchWords(query)) {
    const lower = word.toLowerCase();
    const parts = wordParts(word);
    const forms = parts.length > 1 ? [lower] : wordForms(lower);
    const whole = forms.length > 1 ? `(${forms.join(' | ')})` : lower;
    const expr = parts.length > 1 ? `(${lower} | ${parts.join(' & ')})` : whole;
    const named = parts.length > 1 ? `(${lower}:AB | ${parts.map((p) => `${p}:AB`).join(' & ')})` : `(${forms.map((f) => `${f}:AB`).join(' | ')})`;
    terms.set(expr, { expr, named, lexemes: parts.length > 1 ? [lower, ...parts] : forms });
    if (terms.size >= MAX_QUERY_WORDS) break;
  }
  if (terms.size === 0) return null;
  const list = [...terms.keys()];
  return { all: list.join(' & '), any: list.join(' | '), words: list.length, terms: [...terms.values()] };
}

/**
 * A plain word and the forms code is likely to hold it in: questions say
 * "passwords", "handles", "parsing" and "escaped" where code says
 * `password`, `handle`, `parse`, `escape`. Suffixes only, no dictionary: a
 * wrong form costs nothing but a lexeme no chunk holds.
 */
export function wordForms(word: string): string[] {
  const forms = new Set([word]);
  if (word.length >= 5) {
    if (word.endsWith('ies')) forms.add(`${word.slice(0, -3)}y`);
    else if (word.endsWith('es') && /(s|x|z|ch|sh)es$/.test(word)) forms.add(word.slice(0, -2));
    else if (word.endsWith('s') && !word.endsWith('ss') && !word.endsWith('us')) forms.add(word.slice(0, -1));
    if (word.endsWith('ing')) {
      forms.add(word.slice(0, -3));
      forms.add(`${word.slice(0, -3)}e`);
    }
    if (word.endsWith('ed')) {
      forms.add(word.slice(0, -2));
      forms.add(word.slice(0, -1));
    }
  }
  return [...forms];
}

/** The query's words that say something: no stop words, no one-letter words. */
function searchWords(query: string): string[] {
  return queryWords(query).filter((w) => w.length >= 2 && !STOP_WORDS.has(w.toLowerCase()));
}

/** Lines shown above the best-matching line, for context. */
const SNIPPET_LEAD = 2;

/**
 * The lines of a chunk to show: from just above the line holding the most
 * query words, so a hit on the fourth of several small functions packed into
 * one chunk shows that function, not the first.
 */
export function snippet(content: string, words: string[]): string {
  const all = content.split('\n');
  let best = 0;
  let bestScore = 0;
  if (words.length > 0 && all.length > SNIPPET_LINES) {
    for (let i = 0; i < all.length; i++) {
      const line = all[i]!.toLowerCase();
      let score = 0;
      for (const w of words) if (line.includes(w)) score++;
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
  }
  const from = Math.max(0, Math.min(best - SNIPPET_LEAD, all.length - SNIPPET_LINES));
  const lines = all.slice(from, from + SNIPPET_LINES).join('\n');
  return lines.length > SNIPPET_CHARS ? `${lines.slice(0, SNIPPET_CHARS)}…` : lines;
}

/** Query vectors of the local model, by query text: an agent repeats and refines its questions. */
const QUERY_VECTOR_CACHE = 500;

/** How long an incomplete coverage count is reused: the background tier moves on in the meantime. */
const COVERAGE_TTL_MS = 5000;
const isComplete = (c: SemanticCoverage | undefined) => !c || c.embedded + c.failed >= c.total;

/** Results of one file: an answer is a place in the code, and five hits of one file hide four others. */
const DEFAULT_PER_FILE = 1;

export interface SearchOptions {
  logger?: Pick<Logger, 'warn'>;
  /** Ranking weights (benchmarks and experiments); the defaults otherwise. */
  ranking?: Partial<RankingWeights>;
  /** Retrievers to use (benchmarks compare them alone and together); all that are configured otherwise. */
  retrievers?: readonly Retriever[];
  /** Re-score the fused candidates (model similarity, kind, symbols, graph); on by default. */
  rescore?: boolean;
  /**
   * How full text ranks a query of several words: by how rare each word is (the default), or as before
   * (`all-then-any`: chunks with every word, then a bounded sample of chunks with any), which the
   * benchmark keeps to compare against.
   */
  textRanking?: 'rarity' | 'all-then-any';
}

/**
 * Hybrid search: the local model's nearest vectors (where the background
 * tier has filled them in), fast hashed vectors and full-text matches, fused
 * by weighted reciprocal rank, then re-scored (ranking.ts) and grouped by
 * file. Postgres is the arbiter of what is live: a vector whose chunk is not
 * in the published index is dropped, so results always come from each
 * branch's indexed commit. When the query cannot be embedded in time
 * (`QUERY_EMBEDDING`) or a vector store does not answer, the search answers
 * from what is left and says so in `warnings`; the full reason goes to the log.
 */
export function createSearchService(platform: Platform, options: SearchOptions = {}) {
  const weights: RankingWeights = { ...DEFAULT_RANKING, ...options.ranking };
  const retrievers = new Set<Retriever>(options.retrievers ?? ['model', 'vector', 'text']);
  const semantic = retrievers.has('model') ? platform.semantic : null;
  const queryVectors = new Map<string, Promise<number[]>>();
  const importersByCommit = new Map<string, Promise<Map<string, number>>>();

  /** The model's vector of a query, cached by text (a failed one is not kept). */
  function modelQueryVector(text: string): Promise<number[]> {
    let v = queryVectors.get(text);
    if (v) {
      queryVectors.delete(text);
      queryVectors.set(text, v); // most recently used last
      return v;
    }
    v = semantic!.embeddings.embed([text], { ...QUERY_EMBEDDING, purpose: 'query' }).then(([x]) => x!);
    v.catch(() => queryVectors.delete(text));
    return remember(queryVectors, text, v, QUERY_VECTOR_CACHE);
  }

  /**
   * Model coverage of the searched branches: a count over every chunk of a branch, so it is kept, for a
   * commit whose coverage is whole until the branch moves on, otherwise for a few seconds (the warning may
   * lag the background work by that much).
   */
  const coverageCache = new Map<string, { at: number; value: SemanticCoverage }>();
  async function coverageOf(targets: Array<{ repositoryId: number; branch: string; commit: string }>): Promise<Map<string, SemanticCoverage>> {
    const keyOf = (t: { repositoryId: number; branch: string; commit: string }) => `${coverageKey(t)}\0${t.commit}`;
    const now = Date.now();
    const stale = targets.filter((t) => {
      const hit = coverageCache.get(keyOf(t));
      return !hit || (!isComplete(hit.value) && now - hit.at > COVERAGE_TTL_MS);
    });
    if (stale.length > 0) {
      const fresh = await semantic!.modelVectors.coverage(semantic!.embeddings.id, stale);
      for (const t of stale) remember(coverageCache, keyOf(t), { at: now, value: fresh.get(coverageKey(t)) ?? { embedded: 0, failed: 0, total: 0 } }, 1000);
    }
    return new Map(targets.map((t) => [coverageKey(t), coverageCache.get(keyOf(t))!.value]));
  }

  /** Files importing each file of a branch at its commit, read once per commit from the graph. */
  function importers(target: { repositoryId: number; branch: string; commit: string }): Promise<Map<string, number>> {
    const key = `${target.repositoryId}\0${target.branch}\0${target.commit}`;
    let m = importersByCommit.get(key);
    if (!m) {
      m = platform.graph.importerCounts({ repoId: target.repositoryId, branch: target.branch });
      m.catch(() => importersByCommit.delete(key));
      remember(importersByCommit, key, m, 64);
    }
    return m;
  }

  return {
    async search(q: SearchQuery): Promise<SearchResult> {
      const started = performance.now();
      const text = q.query.trim();
      if (!text) throw badRequest('query must not be empty', 'invalid_query');
      if (text.length > 2000) throw badRequest('query must be at most 2000 characters', 'invalid_query');
      const limit = Math.min(Math.max(q.limit ?? 10, 1), MAX_LIMIT);
      const perFile = Math.min(Math.max(q.perFile ?? DEFAULT_PER_FILE, 1), MAX_LIMIT);
      // The CLI calls this directly, without the API's or the MCP server's check: Postgres cannot take a NUL,
      // and a language holding one failed the search as an internal error.
      const nul = findNulCharacter({ query: q.query, repositories: q.repositories, language: q.language, pathGlob: q.pathGlob });
      if (nul !== undefined) throw badRequest(nulCharacterMessage(nul), 'invalid_query');
      if (q.language !== undefined && !(LANGUAGES as readonly string[]).includes(q.language)) {
        throw badRequest(`unknown language "${q.language}": use one of ${LANGUAGES.join(', ')}`, 'invalid_language');
      }
      const kinds = q.kinds?.length ? new Set(q.kinds) : undefined;
      const unknownKind = q.kinds?.find((k) => !(FILE_KINDS as readonly string[]).includes(k));
      if (unknownKind !== undefined) throw badRequest(`unknown kind "${unknownKind}": use one of ${FILE_KINDS.join(', ')}`, 'invalid_kind');
      let isMatch: ((p: string) => boolean) | undefined;
      if (q.pathGlob) {
        const matches = compilePathGlob(q.pathGlob);
        // Chunks of one file share its path: each path is matched once.
        const seen = new Map<string, boolean>();
        isMatch = (p) => {
          let matched = seen.get(p);
          if (matched === undefined) seen.set(p, (matched = matches(p)));
          return matched;
        };
      }

      const all = await platform.repositories.list(q.instances ? { instances: q.instances } : {});
      const wanted = q.repositories?.length ? all.filter((r) => q.repositories!.includes(r.name)) : all;
      if (q.repositories?.length) {
        const missing = q.repositories.filter((n) => !wanted.some((r) => r.name === n));
        if (missing.length > 0) throw notFound(`no repository named ${missing.map((m) => `"${m}"`).join(', ')}`, 'repository_not_found');
      }
      // Each repository is searched at its default branch's indexed commit.
      const targets = wanted.flatMap((r) => {
        const b = r.branches.find((x) => x.branch === r.defaultBranch && x.indexedCommit);
        return b ? [{ repositoryId: r.id, branch: b.branch, name: r.name, commit: b.indexedCommit! }] : [];
      });
      const warnings: SearchWarning[] = [];
      if (targets.length === 0) return { hits: [], tookMs: Math.round(performance.now() - started), warnings };
      const repositoryBranches = targets.map((t) => ({ repositoryId: t.repositoryId, branch: t.branch }));

      // Filters apply after retrieval (Chroma's filtered search is a scan), so retrieval goes deeper when one
      // is set; grouping by file needs more candidates than hits too.
      const filtered = Boolean(isMatch || q.language || kinds);
      const depth = Math.min(Math.max(limit * perFile * (filtered ? 10 : 4), weights.candidates), 500);
      const fullText = fullTextQuery(text);
      const snippetWords = [...new Set(searchWords(text).map((w) => w.toLowerCase()))];

      const vectorUnavailable = (err: unknown): [] => {
        // Chroma down or stuck: the other retrievers still answer. Anything else (a bug) fails the search.
        if (!isChromaUnavailable(err)) throw err;
        options.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'vector store unavailable; answering without it');
        if (!warnings.some((w) => w.code === 'vector_search_unavailable')) warnings.push(VECTOR_STORE_UNAVAILABLE);
        return [];
      };
      const embeddingFailed = (err: unknown, which: 'fast' | 'model'): [] => {
        // Anything but an embedding failure (a bug, the caller's abort) still fails the search.
        if (!(err instanceof EmbeddingError)) throw err;
        options.logger?.warn({ kind: err.kind, err: err.message }, `search query could not be embedded (${which}); answering without it`);
        warnings.push(which === 'fast' ? vectorSearchUnavailable(err) : modelSearchUnavailable(err));
        return [];
      };

      // Coverage first (cached: no query once a commit is whole): where the model covers every target, the
      // fast vectors add little the model does not already find, and cost a Chroma query per search.
      const coverage = semantic ? await coverageOf(targets) : undefined;
      const modelComplete = coverage !== undefined && targets.every((t) => isComplete(coverage.get(coverageKey(t))));
      if (coverage) {
        for (const t of targets) {
          const c = coverage.get(coverageKey(t));
          if (c && !isComplete(c)) warnings.push(coverageIncomplete(t.name, c));
        }
      }
      const useFast = retrievers.has('vector') && (options.retrievers !== undefined || !modelComplete);

      let modelVector: number[] | undefined;
      const [vectorHits, textIds, modelHits] = await Promise.all([
        useFast
          ? platform.embeddings.embed([text], QUERY_EMBEDDING).then(
              ([v]) => platform.vectors.query(v!, depth, { repositoryBranches }).catch(vectorUnavailable),
              (err: unknown) => embeddingFailed(err, 'fast'),
            )
          : [],
        retrievers.has('text')
          ? fullText && fullText.words > 1 && options.textRanking !== 'all-then-any'
            ? platform.chunks.fullTextWeighted(fullText, { repositoryBranches, ...(q.language ? { language: q.language } : {}) }, depth)
            : platform.chunks.fullText(fullText, { repositoryBranches, ...(q.language ? { language: q.language } : {}) }, depth, { enough: limit })
          : [],
        semantic
          ? modelQueryVector(text).then(
              (v) => {
                modelVector = v;
                return semantic.vectors.query(v, depth, { repositoryBranches }).catch(vectorUnavailable);
              },
              (err: unknown) => embeddingFailed(err, 'model'),
            )
          : [],
      ]);

      const fusedMap = fuse(
        { model: modelHits.map((h) => h.id), vector: vectorHits.map((h) => h.id), text: textIds },
        weights,
      );
      const similarityOf = new Map(modelHits.map((h) => [h.id, 1 - h.distance]));
      const ranked = [...fusedMap.entries()].sort((a, b) => b[1].fused - a[1].fused || a[0].localeCompare(b[0]));

      // Content only for candidates: fetched in pages, best first, until enough pass the filters.
      const byTarget = new Map(targets.map((t) => [`${t.repositoryId}\0${t.branch}`, t]));
      const pool: Array<{ chunk: LiveChunk; target: (typeof targets)[number] }> = [];
      // Twice the hits asked for: grouping by file folds a file's several candidate chunks into one hit.
      const poolSize = Math.max(options.rescore === false ? 0 : weights.candidates, limit * perFile * 2);
      const page = filtered ? poolSize * 2 : poolSize + Math.ceil(poolSize / 2);
      for (let offset = 0; offset < ranked.length && pool.length < poolSize; offset += page) {
        const slice = ranked.slice(offset, offset + page);
        const live = new Map((await platform.chunks.liveChunks(slice.map(([id]) => id))).map((c) => [c.id, c]));
        for (const [id] of slice) {
          const chunk = live.get(id);
          if (!chunk) continue; // a vector from a run not yet published, or one being removed
          const target = byTarget.get(`${chunk.repositoryId}\0${chunk.branch}`);
          if (!target) continue;
          if (isMatch && !isMatch(chunk.path)) continue;
          if (q.language && chunk.language !== q.language) continue;
          if (kinds && !kinds.has(fileKind(chunk.path))) continue;
          pool.push({ chunk, target });
          if (pool.length >= poolSize) break;
        }
      }

      let scored: Array<{ id: string; score: number; explain: RankExplanation }>;
      if (options.rescore === false) {
        scored = pool.map(({ chunk }) => {
          const f = fusedMap.get(chunk.id)!;
          return { id: chunk.id, score: f.fused, explain: { ranks: f.ranks, fused: f.fused, boosts: [] } };
        });
      } else {
        // Candidates the model did not retrieve may still have a model vector: their similarity comes from the cache.
        if (modelVector && semantic) {
          const without = pool.filter(({ chunk }) => !similarityOf.has(chunk.id)).map(({ chunk }) => chunk.id);
          for (const [id, v] of await semantic.modelVectors.vectorsOf(semantic.embeddings.id, without)) similarityOf.set(id, dot(modelVector, v));
        }
        const importerMaps = weights.centrality > 0 ? await importerLookup(pool.map((p) => p.target), importers, options.logger) : undefined;
        const wantedKinds = new Set<FileKind>([...kindsAskedFor(text), ...(kinds ?? [])]);
        const candidates = pool.map(({ chunk }) => {
          const f = fusedMap.get(chunk.id)!;
          const sim = similarityOf.get(chunk.id);
          return { id: chunk.id, path: chunk.path, symbol: chunk.symbol, ranks: f.ranks, fused: f.fused, ...(sim === undefined ? {} : { similarity: sim }) };
        });
        const scopeOf = new Map(pool.map((p) => [p.chunk.id, `${p.chunk.repositoryId}\0${p.chunk.branch}`]));
        scored = rescore(candidates, {
          weights,
          wantedKinds,
          identifiers: queryIdentifiers(text),
          ...(importerMaps ? { importers: (c: { id: string; path: string }) => importerMaps.get(`${scopeOf.get(c.id)}\0${c.path}`) } : {}),
        });
      }
      const chunkOf = new Map(pool.map((p) => [p.chunk.id, p]));
      if (options.rescore !== false) {
        scored = withFileEvidence(scored, (s) => {
          const c = chunkOf.get(s.id)!.chunk;
          return `${c.repositoryId}\0${c.branch}\0${c.path}`;
        }, weights.fileEvidence);
      }
      scored.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));

      const perPath = new Map<string, number>();
      const hits: SearchHit[] = [];
      for (const s of scored) {
        const { chunk, target } = chunkOf.get(s.id)!;
        const fileKey = `${chunk.repositoryId}\0${chunk.branch}\0${chunk.path}`;
        const seen = perPath.get(fileKey) ?? 0;
        if (seen >= perFile) continue;
        perPath.set(fileKey, seen + 1);
        hits.push({
          repository: target.name,
          branch: chunk.branch,
          commit: target.commit,
          path: chunk.path,
          startLine: chunk.startLine,
          endLine: chunk.endLine,
          symbol: chunk.symbol,
          kind: chunk.kind,
          fileKind: fileKind(chunk.path),
          language: chunk.language,
          snippet: snippet(chunk.content, snippetWords),
          score: Math.round(s.score * 1e6) / 1e6,
          matchedBy: (Object.keys(s.explain.ranks) as Retriever[]).sort(),
          explain: s.explain,
        });
        if (hits.length >= limit) break;
      }
      // Chunks indexed before secrets were redacted at index time may still hold some: an answer never does.
      const redacted = await redactEach(hits.map((h) => h.snippet));
      hits.forEach((h, i) => (h.snippet = redacted.texts[i]!));
      return { hits, tookMs: Math.round(performance.now() - started), warnings };
    },
  };
}

/** Sets `key` in a map kept to `max` entries, the oldest going first; returns `value`. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): V {
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
  return value;
}

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length && i < b.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * How many files import each candidate's file, across the searched branches. The graph is an extra signal,
 * never a requirement: when Neo4j does not answer, the search ranks without it.
 */
async function importerLookup(
  targets: Array<{ repositoryId: number; branch: string; commit: string }>,
  importers: (t: { repositoryId: number; branch: string; commit: string }) => Promise<Map<string, number>>,
  logger?: Pick<Logger, 'warn'>,
): Promise<Map<string, number> | undefined> {
  const unique = [...new Map(targets.map((t) => [`${t.repositoryId}\0${t.branch}`, t])).values()];
  try {
    const maps = await Promise.all(unique.map(importers));
    const merged = new Map<string, number>();
    unique.forEach((t, i) => {
      for (const [p, n] of maps[i]!) merged.set(`${t.repositoryId}\0${t.branch}\0${p}`, n);
    });
    return merged;
  } catch (err) {
    logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'code graph unavailable; ranking without it');
    return undefined;
  }
}

export type SearchService = ReturnType<typeof createSearchService>;
