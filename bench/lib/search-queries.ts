/**
 * Search queries drawn from an indexed corpus, shared by the benchmarks that
 * time search (index and MCP), so both ask the same kind of questions.
 */
import type pg from 'pg';
import { spread } from './common.ts';

export interface SearchQuery {
  text: string;
  kind: 'identifier' | 'natural';
}

/**
 * Items in runs of `run` go alternately to the measured and the warm-up set:
 * disjoint, and alike in what they hold when the list is sorted (or, with
 * `run` 2, when it interleaves two kinds).
 */
export function alternate<T>(xs: T[], run = 1): { measured: T[]; warmup: T[] } {
  const measured = (i: number) => Math.floor(i / run) % 2 === 0;
  return { measured: xs.filter((_, i) => measured(i)), warmup: xs.filter((_, i) => !measured(i)) };
}

/** Both kinds interleaved, so every client of a timed pass sees both throughout. */
function interleave(identifiers: string[], natural: string[]): SearchQuery[] {
  const out: SearchQuery[] = [];
  for (let i = 0; i < Math.max(identifiers.length, natural.length); i++) {
    if (identifiers[i]) out.push({ text: identifiers[i]!, kind: 'identifier' });
    if (natural[i]) out.push({ text: natural[i]!, kind: 'natural' });
  }
  return out;
}

/**
 * `n` measured queries and `n` others for the warm-up pass before them: half
 * identifiers (symbol names the chunker found), half natural language
 * (Markdown headings of three to ten words, as people phrase questions),
 * sampled evenly from sorted lists so runs on the same corpus ask the same.
 */
export async function corpusSearchQueries(pool: pg.Pool, n: number): Promise<{ measured: SearchQuery[]; warmup: SearchQuery[] }> {
  const symbols = await pool.query<{ symbol: string }>(
    `SELECT DISTINCT symbol FROM chunks
      WHERE symbol ~ '^[A-Za-z_$][A-Za-z0-9_$.]{3,40}$' AND coalesce(language, '') <> 'markdown' ORDER BY symbol`,
  );
  const headings = await pool.query<{ symbol: string }>(
    `SELECT DISTINCT symbol FROM chunks WHERE language = 'markdown' AND symbol ~ '^[A-Za-z][A-Za-z ,''-]+$'
        AND array_length(regexp_split_to_array(trim(symbol), '\\s+'), 1) BETWEEN 3 AND 10 ORDER BY symbol`,
  );
  const natural = alternate(spread(headings.rows.map((r) => r.symbol.trim()), n));
  const identifiers = alternate(spread(symbols.rows.map((r) => r.symbol), 2 * n - natural.measured.length - natural.warmup.length));
  return {
    measured: interleave(identifiers.measured, natural.measured).slice(0, n),
    warmup: interleave(identifiers.warmup, natural.warmup).slice(0, n),
  };
}
