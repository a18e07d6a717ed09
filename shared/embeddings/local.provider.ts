import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { EmbeddingProvider, EmbedOptions } from './embedding-provider.ts';

/**
 * Offline embeddings with nothing to download: signed feature hashing over
 * code-aware sub-tokens. It captures vocabulary overlap, not meaning ("car"
 * is no closer to "vehicle" than to "banana"), which is what search over code
 * mostly needs when no model is configured.
 *
 * Features of each identifier, e.g. `getUserByID_v2`:
 * - its sub-tokens, lower-cased: get, user, by, id, v2 (split on camelCase,
 *   PascalCase and acronym boundaries, `_`, `-` and `$`; digits stay with the
 *   letters before them, so `v2` and `utf8` survive);
 * - the whole identifier with separators dropped, `getuserbyidv2`, so
 *   `getUserName`, `get_user_name` and `GET_USER_NAME` land on one feature;
 * - padded character trigrams of each sub-token (`^us`, `use`, `ser`, `er$`)
 *   at a lower weight, so `users` still lands near `user`.
 * Each feature adds ±(1 + ln tf) to one of `dimensions` buckets, chosen and
 * signed by a 32-bit hash; the sum is L2-normalised.
 *
 * Changing anything here changes the vector space: bump the version in the
 * id (`hash-v1`) so stored vectors are re-embedded rather than compared with
 * vectors they no longer match.
 */

const MODEL = 'hash-v1';

const TOKEN_SEED = 0x811c9dc5; // FNV-1a offset basis
const GRAM_SEED = 0x2f6b9a43; // another basis, so the trigram "use" and the word "use" are different features
const FNV_PRIME = 0x01000193;

const GRAM_WEIGHT = 0.4;
/** Words in nearly every chunk say little about which chunk is meant: damped, not dropped. */
const STOP_WEIGHT = 0.25;
/** Long runs (base64, minified code) would flood the vector with trigrams of noise. */
const MAX_GRAM_CHARS = 32;
/** Texts embedded between yields to the event loop: ~2-3 ms of work, so a worker's lock renewals keep running. */
const SLICE = 64;

// Separate bits of the 30-bit feature key pick the bucket (key % dimensions) and the sign.
const SIGN_BIT = 1 << 29;

const STOP_WORDS = [
  'a', 'an', 'and', 'as', 'at', 'be', 'by', 'for', 'from', 'if', 'in', 'is', 'it', 'of', 'on', 'or', 'the', 'this', 'to', 'with',
  'const', 'let', 'var', 'function', 'return', 'else', 'new', 'true', 'false', 'null', 'undefined', 'none', 'self',
  'import', 'export', 'def', 'public', 'private', 'static', 'void', 'int', 'string',
];

function mix(h: number): number {
  // murmur3's finaliser: FNV-1a alone leaves the low bits (the bucket) poorly mixed for short words.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 2; // 30 bits: stays a small integer, which keeps Map keys cheap
}

function lower(c: number): number {
  if (c >= 65 && c <= 90) return c + 32;
  if (c < 128) return c;
  return String.fromCharCode(c).toLowerCase().charCodeAt(0);
}

const isUpper = (c: number) => c >= 65 && c <= 90;
const isLower = (c: number) => c >= 97 && c <= 122;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isAsciiAlpha = (c: number) => isLower(c) || isUpper(c);

/** Identifier characters: ASCII letters, digits, `_`, `$`, and non-ASCII letters (approximated: above Latin-1 punctuation, outside the Unicode punctuation and space blocks). */
function isWordChar(c: number): boolean {
  if (c < 128) return isLower(c) || isUpper(c) || isDigit(c) || c === 95 || c === 36;
  return c >= 0xc0 && !(c >= 0x2000 && c <= 0x2bff) && !(c >= 0x3000 && c <= 0x303f) && c !== 0xfeff && c !== 0xd7 && c !== 0xf7;
}

function wordKey(word: string): number {
  let h = TOKEN_SEED;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ lower(word.charCodeAt(i)), FNV_PRIME);
  return mix(h);
}

const STOP_KEYS = new Set(STOP_WORDS.map(wordKey));

export class LocalEmbeddingProvider implements EmbeddingProvider {
  readonly id: string;
  readonly model = MODEL;
  readonly dimensions: number;

  /** The vector of a text with no identifiers (empty, whitespace, punctuation): see `embedOne`. */
  private readonly fallback: number[];
  // Scratch space reused across texts: embedding is synchronous, so one text at a time owns it.
  private readonly tokenCounts = new FeatureCounts();
  private readonly gramCounts = new FeatureCounts();
  private readonly sums: Float64Array;
  private tokensSeen = 0;
  private readonly counters = { calls: 0, inputs: 0, tokens: 0, retries: 0 };

  constructor(options: { dimensions: number }) {
    if (!Number.isInteger(options.dimensions) || options.dimensions < 2) {
      throw new Error(`local embeddings need an integer number of dimensions ≥ 2, got ${options.dimensions}`);
    }
    this.dimensions = options.dimensions;
    this.id = `local:${MODEL}:${options.dimensions}`;
    this.sums = new Float64Array(options.dimensions);
    this.fallback = new Array<number>(options.dimensions).fill(1 / Math.sqrt(options.dimensions));
  }

  stats() {
    return { ...this.counters };
  }

  /** Local CPU work that cannot fail the way a server does: retries and deadlines do not apply, only the signal. */
  async embed(texts: string[], options: EmbedOptions = {}): Promise<number[][]> {
    options.signal?.throwIfAborted();
    this.counters.calls++;
    const vectors: number[][] = [];
    for (let i = 0; i < texts.length; i++) {
      if (i > 0 && i % SLICE === 0) {
        await yieldToEventLoop();
        options.signal?.throwIfAborted();
      }
      vectors.push(this.embedOne(texts[i]!));
    }
    this.counters.inputs += texts.length;
    return vectors;
  }

  /**
   * One text, synchronously. A text without identifiers gets a fixed unit
   * vector with every component equal: an all-zero vector has no cosine, and
   * the uniform one sits at about the same, small, similarity to every real
   * vector (their signed components cancel), so it matches nothing in particular.
   */
  embedOne(text: string): number[] {
    this.tokenCounts.clear();
    this.gramCounts.clear();
    this.tokensSeen = 0;
    this.scan(text);
    this.counters.tokens += this.tokensSeen;

    const sums = this.sums;
    sums.fill(0);
    this.tokenCounts.forEach((key, tf) => this.add(key, (STOP_KEYS.has(key) ? STOP_WEIGHT : 1) * tf1(tf)));
    this.gramCounts.forEach((key, tf) => this.add(key, GRAM_WEIGHT * tf1(tf)));

    let norm = 0;
    for (let i = 0; i < sums.length; i++) norm += sums[i]! * sums[i]!;
    // Zero also when every feature cancelled another out in its bucket: rare, but possible.
    if (norm === 0) return [...this.fallback];
    const scale = 1 / Math.sqrt(norm);
    const vector = new Array<number>(sums.length);
    for (let i = 0; i < sums.length; i++) vector[i] = sums[i]! * scale;
    return vector;
  }

  private add(key: number, weight: number): void {
    this.sums[key % this.dimensions]! += key & SIGN_BIT ? -weight : weight;
  }

  /** Finds identifier runs; a `-` joins two of them (kebab-case) only between a letter or digit and a letter, so `a - 1` stays apart. */
  private scan(text: string): void {
    const n = text.length;
    let i = 0;
    while (i < n) {
      if (!isWordChar(text.charCodeAt(i))) {
        i++;
        continue;
      }
      const start = i;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (isWordChar(c)) i++;
        else if (c === 45 && i + 1 < n && isAsciiAlpha(text.charCodeAt(i + 1)) && isWordChar(text.charCodeAt(i - 1))) i++;
        else break;
      }
      this.identifier(text, start, i);
    }
  }

  /** Emits the sub-tokens of text[start, end) and, when it has several, the whole identifier. */
  private identifier(text: string, start: number, end: number): void {
    let whole = TOKEN_SEED;
    let parts = 0;
    let from = -1;
    for (let j = start; j < end; j++) {
      const c = text.charCodeAt(j);
      if (c === 95 || c === 45 || c === 36) {
        if (from >= 0) {
          this.subToken(text, from, j);
          parts++;
          from = -1;
        }
        continue;
      }
      if (from < 0) {
        from = j;
      } else if (isUpper(c)) {
        const prev = text.charCodeAt(j - 1);
        // fooBar, v2Name | HTTPServer → HTTP + Server
        const boundary =
          isLower(prev) || isDigit(prev) || (isUpper(prev) && j + 1 < end && isLower(text.charCodeAt(j + 1)));
        if (boundary) {
          this.subToken(text, from, j);
          parts++;
          from = j;
        }
      }
      whole = Math.imul(whole ^ lower(c), FNV_PRIME);
    }
    if (from >= 0) {
      this.subToken(text, from, end);
      parts++;
    }
    if (parts > 1) this.tokenCounts.count(mix(whole));
  }

  private subToken(text: string, from: number, to: number): void {
    this.tokensSeen++;
    let h = TOKEN_SEED;
    let digitsOnly = true;
    for (let k = from; k < to; k++) {
      const c = text.charCodeAt(k);
      if (!isDigit(c)) digitsOnly = false;
      h = Math.imul(h ^ lower(c), FNV_PRIME);
    }
    this.tokenCounts.count(mix(h));
    // Near-misses of numbers are not near in meaning; a one-letter word has no trigram worth having.
    if (digitsOnly || to - from < 2) return;

    const last = Math.min(to, from + MAX_GRAM_CHARS);
    let x = 94; // '^' marks the start
    let y = lower(text.charCodeAt(from));
    for (let k = from + 1; k <= last; k++) {
      let z: number;
      if (k < last) z = lower(text.charCodeAt(k));
      else if (last === to) z = 36; // '$' marks the end, unless the word was cut
      else break;
      this.gramCounts.count(mix(Math.imul(Math.imul(Math.imul(GRAM_SEED ^ x, FNV_PRIME) ^ y, FNV_PRIME) ^ z, FNV_PRIME)));
      x = y;
      y = z;
    }
  }
}

/** 1 + ln(tf), the damped term frequency; most features occur once. */
function tf1(tf: number): number {
  return tf === 1 ? 1 : 1 + Math.log(tf);
}

/**
 * Occurrences per feature key (a 30-bit integer), kept in first-seen order so
 * the vector's sums are added in the same order every time. Open addressing
 * over typed arrays: a chunk has a few hundred features and every character of
 * it adds one; embedding 20,000 corpus texts took 1.3–1.4 s this way and
 * 2.2–2.4 s with a Map of numbers per feature kind.
 */
class FeatureCounts {
  private slots = new Int32Array(1024); // key + 1, 0 when free
  private counts = new Int32Array(1024);
  private order = new Int32Array(512); // slots, in first-seen order
  private size = 0;

  count(key: number): void {
    const mask = this.slots.length - 1;
    let i = key & mask;
    for (;;) {
      const k = this.slots[i]!;
      if (k === key + 1) {
        this.counts[i]!++;
        return;
      }
      if (k === 0) break;
      i = (i + 1) & mask;
    }
    this.slots[i] = key + 1;
    this.counts[i] = 1;
    this.order[this.size++] = i;
    if (this.size * 2 >= this.slots.length) this.grow();
  }

  forEach(visit: (key: number, tf: number) => void): void {
    for (let n = 0; n < this.size; n++) {
      const i = this.order[n]!;
      visit(this.slots[i]! - 1, this.counts[i]!);
    }
  }

  /** Frees only the slots in use: a short text does not pay for the table a long one grew. */
  clear(): void {
    for (let n = 0; n < this.size; n++) this.slots[this.order[n]!] = 0;
    this.size = 0;
  }

  private grow(): void {
    const { slots, counts, order, size } = this;
    this.slots = new Int32Array(slots.length * 2);
    this.counts = new Int32Array(slots.length * 2);
    this.order = new Int32Array(slots.length);
    this.size = 0;
    for (let n = 0; n < size; n++) {
      const i = order[n]!;
      this.insert(slots[i]! - 1, counts[i]!);
    }
  }

  private insert(key: number, tf: number): void {
    const mask = this.slots.length - 1;
    let i = key & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = key + 1;
    this.counts[i] = tf;
    this.order[this.size++] = i;
  }
}
