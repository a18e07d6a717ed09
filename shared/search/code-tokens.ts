/**
 * How full-text search tokenizes code, for the index and for queries alike.
 *
 * Postgres' own parser keeps an identifier whole: `getUserName` is one lexeme,
 * and `inst.refine` or `this._def.checks` are one "host" lexeme each, so the
 * words inside them could only be found through prefix patterns, which
 * expand to thousands of index entries. Instead the index holds sub-tokens:
 * text split at every non-alphanumeric character and at camelCase and acronym
 * boundaries, digits kept with the letters before them (`utf8`, `v2`), so that
 * a query matches exact lexemes.
 */

const NON_WORD = /[^\p{L}\p{N}]+/gu;
const CAMEL_BOUNDARY = /(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})/gu;
/** What Postgres' to_tsvector indexed of a chunk before: the first 100,000 characters. */
const MAX_INDEXED_CHARS = 100_000;

/** `parseHTTPRequest2(this._def)` → `parse HTTP Request2 this def`. */
export function codeSubtokens(text: string): string {
  return text.slice(0, MAX_INDEXED_CHARS).replace(NON_WORD, ' ').replace(CAMEL_BOUNDARY, ' ');
}

/** The words of a text, each whole and then by its parts when it has several: `getUserName x_y` → `getUserName get User Name x y`. */
export function codeWordsAndParts(text: string): string {
  const out: string[] = [];
  for (const word of queryWords(text.slice(0, MAX_INDEXED_CHARS))) {
    out.push(word);
    const parts = word.split(CAMEL_BOUNDARY);
    if (parts.length > 1) out.push(...parts);
  }
  return out.join(' ');
}

/** One word's parts, lower-cased: `parseHTTPRequest2` → `parse`, `http`, `request2`. */
export function wordParts(word: string): string[] {
  return word
    .split(CAMEL_BOUNDARY)
    .map((p) => p.toLowerCase())
    .filter((p) => p.length > 0);
}

/** The words of a text or query, split where the index splits them (`a.b_c` → `a`, `b`, `c`). */
export function queryWords(text: string): string[] {
  return text.split(NON_WORD).filter(Boolean);
}
