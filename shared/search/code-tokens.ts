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

// Character classes of code points, for the scanner below (the same as NON_WORD's and CAMEL_BOUNDARY's).
const OTHER = 0; // neither letter nor number: a separator
const LOWER = 1; // \p{Ll}
const UPPER = 2; // \p{Lu}
const LETTER = 3; // any other \p{L} (titlecase, modifier, other letters)
const NUMBER = 4; // \p{N}

const ASCII_CLASS = new Uint8Array(128).map((_, c) =>
  c >= 97 && c <= 122 ? LOWER : c >= 65 && c <= 90 ? UPPER : c >= 48 && c <= 57 ? NUMBER : OTHER,
);
const unicodeClasses = new Map<number, number>();
function classOf(cp: number): number {
  if (cp < 128) return ASCII_CLASS[cp]!;
  let cls = unicodeClasses.get(cp);
  if (cls === undefined) {
    const ch = String.fromCodePoint(cp);
    cls = /\p{Ll}/u.test(ch) ? LOWER : /\p{Lu}/u.test(ch) ? UPPER : /\p{L}/u.test(ch) ? LETTER : /\p{N}/u.test(ch) ? NUMBER : OTHER;
    if (unicodeClasses.size < 65_536) unicodeClasses.set(cp, cls);
  }
  return cls;
}

/**
 * `parseHTTPRequest2(this._def)` → `parse HTTP Request2 this def`: each run of
 * characters that are neither letters nor numbers becomes one space, and a
 * space goes in at camelCase and acronym boundaries. The same result as
 * `.replace(NON_WORD, ' ').replace(CAMEL_BOUNDARY, ' ')`, in one pass over the
 * text: two regular-expression passes with look-behind took most of the
 * worker's time spent building the full-text index.
 */
export function codeSubtokens(text: string): string {
  const n = Math.min(text.length, MAX_INDEXED_CHARS);
  let out = '';
  let copied = 0; // text[copied, i) is still to be copied to out
  let prev = OTHER; // class of the last character written (a space counts as OTHER), none at the start
  let i = 0;
  while (i < n) {
    const cp = codePointAt(text, i, n);
    const cls = classOf(cp);
    if (cls === OTHER) {
      let end = i + width(cp);
      while (end < n) {
        const next = codePointAt(text, end, n);
        if (classOf(next) !== OTHER) break;
        end += width(next);
      }
      out += text.slice(copied, i) + ' ';
      copied = end;
      prev = OTHER;
      i = end;
      continue;
    }
    if (cls === UPPER && (prev === LOWER || prev === NUMBER || (prev === UPPER && classAt(text, i + width(cp), n) === LOWER))) {
      out += text.slice(copied, i) + ' ';
      copied = i;
    }
    prev = cls;
    i += width(cp);
  }
  return copied === 0 && n === text.length ? text : out + text.slice(copied, n);
}

/**
 * The code point at text[i]; a surrogate pair counts as one only when both halves lie before `n`
 * (a pair cut by the 100,000-character limit is cut in the result too, as slice() cuts it).
 */
function codePointAt(text: string, i: number, n: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
    const low = text.charCodeAt(i + 1);
    if (low >= 0xdc00 && low <= 0xdfff) return 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
  }
  return c;
}

const width = (cp: number) => (cp > 0xffff ? 2 : 1);

/** The class of the character at text[i], OTHER past the end (where the look-ahead sees no letter). */
function classAt(text: string, i: number, n: number): number {
  return i < n ? classOf(codePointAt(text, i, n)) : OTHER;
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
