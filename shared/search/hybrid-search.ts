import { queryWords, wordParts } from './code-tokens.ts';
import { compilePathGlob } from '../path-glob.ts';
import { EmbeddingError, type EmbeddingErrorKind } from '../embeddings/embedding-provider.ts';
import { badRequest, findNulCharacter, notFound, nulCharacterMessage } from '../errors.ts';
import { LANGUAGES } from '../indexing/language.ts';
import { isChromaUnavailable } from '../stores/chroma.connection.ts';
import type { Logger } from '../logger.ts';
import type { Platform } from '../platform.ts';

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
  language: string | null;
  snippet: string;
  score: number;
  /** Which retrievers found it: vector, text or both. */
  matchedBy: Array<'vector' | 'text'>;
}

/**
 * Something that made a search answer less than it could, while still
 * answering. `vector_search_unavailable`: the query could not be embedded,
 * so the hits come from full text alone.
 */
export interface SearchWarning {
  code: 'vector_search_unavailable';
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

const VECTOR_STORE_UNAVAILABLE: SearchWarning = Object.freeze({
  code: 'vector_search_unavailable',
  message: 'vector search unavailable: the vector store (ChromaDB) could not be reached or did not answer in time; results come from full-text search alone',
});

/** Reciprocal rank fusion constant (Cormack et al.): damps the weight of the very top ranks. */
const RRF_K = 60;
const MAX_LIMIT = 100;
const SNIPPET_LINES = 12;
const SNIPPET_CHARS = 700;

/** Words that carry no meaning in a question about code, and would make every chunk match. */
const STOP_WORDS = new Set(
  'a an and are as at be by can do does for from how i in is it of on or that the this to what when where which who why with'.split(' '),
);

export interface FullTextQuery {
  /** tsquery: every query word. */
  all: string;
  /** tsquery: any query word. */
  any: string;
  words: number;
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
  const exprs = new Set<string>();
  for (const word of searchWords(query)) {
    const lower = word.toLowerCase();
    const parts = wordParts(word);
    exprs.add(parts.length > 1 ? `(${lower} | ${parts.join(' & ')})` : lower);
    if (exprs.size >= MAX_QUERY_WORDS) break;
  }
  if (exprs.size === 0) return null;
  const list = [...exprs];
  return { all: list.join(' & '), any: list.join(' | '), words: list.length };
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

/**
 * Hybrid search: nearest vectors from ChromaDB and full-text matches from
 * Postgres, fused by reciprocal rank. Postgres is the arbiter of what is
 * live: a vector whose chunk is not in the published index is dropped, so
 * results always come from each branch's indexed commit. When the query
 * cannot be embedded in time (`QUERY_EMBEDDING`), the search answers from
 * full text and says so in `warnings`; the full reason goes to the log.
 */
export function createSearchService(platform: Platform, options: { logger?: Pick<Logger, 'warn'> } = {}) {
  return {
    async search(q: SearchQuery): Promise<SearchResult> {
      const started = performance.now();
      const text = q.query.trim();
      if (!text) throw badRequest('query must not be empty', 'invalid_query');
      if (text.length > 2000) throw badRequest('query must be at most 2000 characters', 'invalid_query');
      const limit = Math.min(Math.max(q.limit ?? 10, 1), MAX_LIMIT);
      // The CLI calls this directly, without the API's or the MCP server's check: Postgres cannot take a NUL,
      // and a language holding one failed the search as an internal error.
      const nul = findNulCharacter({ query: q.query, repositories: q.repositories, language: q.language, pathGlob: q.pathGlob });
      if (nul !== undefined) throw badRequest(nulCharacterMessage(nul), 'invalid_query');
      if (q.language !== undefined && !(LANGUAGES as readonly string[]).includes(q.language)) {
        throw badRequest(`unknown language "${q.language}": use one of ${LANGUAGES.join(', ')}`, 'invalid_language');
      }
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

      // Language and path filters apply to the vector side after retrieval (Chroma's filtered search is a
      // scan), so it fetches deeper when one is set; full text filters language in SQL.
      const depth = Math.min(limit * (isMatch || q.language ? 10 : 4), 500);
      const fullText = fullTextQuery(text);
      const snippetWords = [...new Set(searchWords(text).map((w) => w.toLowerCase()))];
      const [vectorHits, textIds] = await Promise.all([
        platform.embeddings.embed([text], QUERY_EMBEDDING).then(
          ([v]) =>
            platform.vectors.query(v!, depth, { repositoryBranches }).catch((err: unknown) => {
              // Chroma down or stuck: full text still answers. Anything else (a bug) fails the search.
              if (!isChromaUnavailable(err)) throw err;
              options.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'vector store unavailable; answering from full text alone');
              warnings.push(VECTOR_STORE_UNAVAILABLE);
              return [];
            }),
          (err: unknown) => {
            // Anything but an embedding failure (a bug, the caller's abort) still fails the search.
            if (!(err instanceof EmbeddingError)) throw err;
            options.logger?.warn({ kind: err.kind, err: err.message }, 'search query could not be embedded; answering from full text alone');
            warnings.push(vectorSearchUnavailable(err));
            return [];
          },
        ),
        platform.chunks.fullText(fullText, { repositoryBranches, ...(q.language ? { language: q.language } : {}) }, depth, { enough: limit }),
      ]);

      const scores = new Map<string, { score: number; by: Set<'vector' | 'text'> }>();
      const add = (id: string, rank: number, by: 'vector' | 'text') => {
        const entry = scores.get(id) ?? { score: 0, by: new Set() };
        entry.score += 1 / (RRF_K + rank + 1);
        entry.by.add(by);
        scores.set(id, entry);
      };
      vectorHits.forEach((h, i) => add(h.id, i, 'vector'));
      textIds.forEach((id, i) => add(id, i, 'text'));
      const ranked = [...scores.entries()].sort((a, b) => b[1].score - a[1].score || a[0].localeCompare(b[0]));

      // Content only for what is shown: fetched in pages, best first, until enough pass the filters.
      const byTarget = new Map(targets.map((t) => [`${t.repositoryId}\0${t.branch}`, t]));
      const hits: SearchHit[] = [];
      const page = isMatch || q.language ? limit * 4 : limit + Math.ceil(limit / 2);
      for (let offset = 0; offset < ranked.length && hits.length < limit; offset += page) {
        const slice = ranked.slice(offset, offset + page);
        const live = new Map((await platform.chunks.liveChunks(slice.map(([id]) => id))).map((c) => [c.id, c]));
        for (const [id, { score, by }] of slice) {
          const chunk = live.get(id);
          if (!chunk) continue; // a vector from a run not yet published, or one being removed
          const target = byTarget.get(`${chunk.repositoryId}\0${chunk.branch}`);
          if (!target) continue;
          if (isMatch && !isMatch(chunk.path)) continue;
          if (q.language && chunk.language !== q.language) continue;
          hits.push({
            repository: target.name,
            branch: chunk.branch,
            commit: target.commit,
            path: chunk.path,
            startLine: chunk.startLine,
            endLine: chunk.endLine,
            symbol: chunk.symbol,
            kind: chunk.kind,
            language: chunk.language,
            snippet: snippet(chunk.content, snippetWords),
            score: Math.round(score * 1e6) / 1e6,
            matchedBy: [...by].sort(),
          });
          if (hits.length >= limit) break;
        }
      }
      return { hits, tookMs: Math.round(performance.now() - started), warnings };
    },
  };
}

export type SearchService = ReturnType<typeof createSearchService>;
