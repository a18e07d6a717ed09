import type Parser from 'web-tree-sitter';
import { z } from 'zod';
import { detectLanguage, hasGrammar, TREE_SITTER_GRAMMARS, type GrammarLanguage, type Language } from './language.ts';
import { createParserLoader } from './tree-sitter.ts';

/**
 * Splits a file into the chunks that are embedded and searched: one per
 * function, method or type where the grammar knows them, markdown by
 * headings, anything else by overlapping line windows.
 *
 * Guarantees, whatever the input: every line with non-whitespace content is
 * in at least one chunk; no chunk is longer than maxChunkChars + minChunkChars
 * (tiny leftovers may join a full neighbour) and window pieces of very long
 * lines never exceed maxChunkChars; nothing throws on odd input (binary
 * garbage, U+FFFD, 200 KB lines), it falls back to windows instead.
 */

export type ChunkKind =
  | 'function'
  | 'method'
  | 'class'
  | 'interface'
  | 'type'
  | 'enum'
  | 'struct'
  | 'trait'
  | 'impl'
  | 'module'
  | 'namespace'
  | 'section'
  | 'block'
  | 'window';

export interface Chunk {
  content: string;
  /** 1-based, inclusive. */
  startLine: number;
  /** 1-based, inclusive. */
  endLine: number;
  /** `Cache.get` for a method, `parseArgs` for a function, the heading for a markdown section. */
  symbol: string | null;
  kind: ChunkKind;
}

export interface ChunkInput {
  path: string;
  content: string;
  /** Told from the path when undefined. */
  language: Language | undefined;
  /**
   * Called with the file's syntax tree before it is freed, so other readers of
   * the same file (the code-graph extractor) need not parse it again. Not
   * called for files without a grammar or whose parse failed.
   */
  withTree?: (tree: Parser.Tree) => void;
}

export interface ChunkerOptions {
  /** Default 1500: chunks are split to stay under this; ~400 tokens of code, inside a 512-token embedding model. */
  maxChunkChars?: number;
  /** Default min(200, maxChunkChars / 5): glue (imports, constants, closing braces) shorter than this joins a neighbouring chunk. */
  minChunkChars?: number;
  /**
   * Default maxChunkChars / 4: consecutive definitions each shorter than this
   * (one-line methods, small interfaces, accessor runs) share one chunk up to
   * maxChunkChars, named by all their symbols. A 60-character function alone
   * is a poor search result and one more vector to store; 0 keeps every
   * definition apart.
   */
  packDefsBelow?: number;
  /** Default 60: the most lines in one window of text (or of an oversized function). */
  windowLines?: number;
  /** Default 10: lines two consecutive windows share, scaled down for windows cut short by size. */
  windowOverlap?: number;
}

export interface Chunker {
  readonly options: Readonly<Required<ChunkerOptions>>;
  /** Async only while a grammar loads for the first time; each grammar is loaded once and its parser reused. */
  chunk(input: ChunkInput): Promise<Chunk[]>;
  /**
   * Loads a language's grammar ahead of its first file. Optional: a worker
   * can warm up at boot, since compiling a grammar takes up to a second.
   */
  load(language: Language): Promise<void>;
  /** Frees the parsers (wasm memory). */
  close(): void;
}

const optionsSchema = z
  .object({
    maxChunkChars: z.number().int().min(32).max(100_000).default(1500),
    minChunkChars: z.number().int().min(0).optional(),
    packDefsBelow: z.number().int().min(0).optional(),
    windowLines: z.number().int().min(1).max(10_000).default(60),
    windowOverlap: z.number().int().min(0).default(10),
  })
  .transform((o) => ({
    ...o,
    minChunkChars: o.minChunkChars ?? Math.min(200, Math.floor(o.maxChunkChars / 5)),
    packDefsBelow: o.packDefsBelow ?? Math.floor(o.maxChunkChars / 4),
  }))
  .refine((o) => o.minChunkChars < o.maxChunkChars, { message: 'minChunkChars must be below maxChunkChars' })
  .refine((o) => o.windowOverlap < o.windowLines, { message: 'windowOverlap must be below windowLines' });

/** Deeper than this, splitting falls back to windows: guards the stack on pathological nesting. */
const MAX_DEPTH = 48;
const MAX_SYMBOL_CHARS = 200;

export async function createChunker(opts: ChunkerOptions = {}): Promise<Chunker> {
  const options = optionsSchema.parse(opts);
  const loader = createParserLoader();
  const parserFor = (grammar: string) => loader.loadGrammar(grammar);

  async function chunk(input: ChunkInput): Promise<Chunk[]> {
    const content = input.content;
    if (content.trim() === '') return [];
    const language = input.language ?? detectLanguage(input.path);
    const lines = new Lines(content);
    const emitter = new Emitter(lines, options);

    if (language === 'markdown') {
      emitter.emitLevel(markdownItems(lines, 0, lines.count - 1), { kind: 'section', symbol: null }, 0);
    } else if (hasGrammar(language)) {
      const grammar = grammarFor(language, input.path);
      const parser = await parserFor(grammar);
      if (!chunkSyntax(parser, SPECS[grammar], content, lines, emitter, options.minChunkChars, input.withTree)) {
        emitter.reset();
        emitter.windows(0, lines.count - 1, { kind: 'window', symbol: null });
      }
    } else {
      emitter.windows(0, lines.count - 1, { kind: 'window', symbol: null });
    }
    return emitter.finish();
  }

  async function load(language: Language): Promise<void> {
    if (!hasGrammar(language)) return;
    await parserFor(TREE_SITTER_GRAMMARS[language]);
    // C headers go through the C++ grammar.
    if (language === 'c') await parserFor(TREE_SITTER_GRAMMARS.cpp);
  }

  return { options, chunk, load, close: loader.close };
}

type Grammar = (typeof TREE_SITTER_GRAMMARS)[GrammarLanguage];

/** `.h` is read as C by language detection, but C++ headers are common and the C++ grammar reads both. */
function grammarFor(language: GrammarLanguage, filePath: string): Grammar {
  if (language === 'c' && filePath.toLowerCase().endsWith('.h')) return TREE_SITTER_GRAMMARS.cpp;
  return TREE_SITTER_GRAMMARS[language];
}

function chunkSyntax(
  parser: Parser,
  spec: GrammarSpec,
  content: string,
  lines: Lines,
  emitter: Emitter,
  minChars: number,
  withTree?: (tree: Parser.Tree) => void,
): boolean {
  let tree: Parser.Tree;
  try {
    tree = parser.parse(spec.prepare ? spec.prepare(content) : content);
  } catch {
    // Timed out or ran out of memory; the parser must be reset before its next use.
    parser.reset();
    return false;
  }
  try {
    const builder = new TreeLevel({ spec, lines, minChars }, ROOT_SCOPE, 0);
    builder.addNodes(tree.rootNode.children);
    builder.finish(lines.count - 1);
    emitter.emitLevel(builder.items, { kind: 'block', symbol: null }, 0);
    // A reader of the tree failing must not cost the file its chunks.
    try {
      withTree?.(tree);
    } catch {
      // its own fallback applies
    }
    return true;
  } catch {
    // One odd file must not fail a whole indexing batch: it is windowed like
    // plain text instead, which loses structure but no content.
    return false;
  } finally {
    tree.delete();
  }
}

// ---------------------------------------------------------------------------
// Lines: offsets computed once, so any range's size and text are O(1).

class Lines {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly nonBlank: Uint8Array;
  readonly count: number;

  constructor(readonly content: string) {
    let start = 0;
    for (;;) {
      const nl = content.indexOf('\n', start);
      const stop = nl === -1 ? content.length : nl;
      this.starts.push(start);
      this.ends.push(stop > start && content.charCodeAt(stop - 1) === 13 ? stop - 1 : stop);
      if (nl === -1) break;
      start = nl + 1;
    }
    this.count = this.starts.length;
    this.nonBlank = new Uint8Array(this.count);
    for (let i = 0; i < this.count; i++) this.nonBlank[i] = hasContent(content, this.starts[i]!, this.ends[i]!) ? 1 : 0;
  }

  /** Characters of lines start..end, joined by their newlines. */
  size(start: number, end: number): number {
    return this.ends[end]! - this.starts[start]!;
  }

  length(line: number): number {
    return this.ends[line]! - this.starts[line]!;
  }

  text(start: number, end: number): string {
    return this.content.slice(this.starts[start], this.ends[end]);
  }

  blank(line: number): boolean {
    return this.nonBlank[line] === 0;
  }

  anyContent(start: number, end: number): boolean {
    for (let i = start; i <= end; i++) if (this.nonBlank[i] === 1) return true;
    return false;
  }
}

function hasContent(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 32 || c === 9 || c === 13 || c === 11 || c === 12) continue;
    if (c < 128 || !/\s/.test(s[i]!)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Items: the pieces of one level (a file, a class body, a markdown section).
//
// A def is a named unit (function, class, section); glue is everything else
// (imports, statements, fields, braces); attach is a comment or decorator
// that belongs to the def right below it. Rows are 0-based and inclusive.

interface Label {
  kind: ChunkKind;
  symbol: string | null;
}

interface Item {
  start: number;
  end: number;
  role: 'def' | 'glue' | 'attach';
  /** The def's own label; for glue, unused. */
  label: Label;
  /**
   * For a def that is too big: its members, as a level that opens with the
   * header from `from` (signature and opening brace, which fields then join
   * as glue). For glue that is too big: its children. Null when it cannot be
   * split along syntax, and is windowed instead.
   */
  expand: ((from: number) => { items: Item[]; label: Label | null }) | null;
}

interface OutChunk {
  start: number;
  end: number;
  kind: ChunkKind;
  symbol: string | null;
  /** Set for pieces of one over-long line, whose text is not a whole line range. */
  content?: string;
  /** The level that produced it, for glue that may still join a neighbour. */
  level: number;
  tinyGlue: boolean;
}

class Emitter {
  private out: OutChunk[] = [];
  private levels = 0;
  private readonly max: number;
  private readonly min: number;
  private readonly packBelow: number;

  constructor(
    private readonly lines: Lines,
    private readonly opts: Required<ChunkerOptions>,
  ) {
    this.max = opts.maxChunkChars;
    this.min = opts.minChunkChars;
    this.packBelow = opts.packDefsBelow;
  }

  reset(): void {
    this.out = [];
  }

  /**
   * Emits one level: defs become chunks of their own (split when too big),
   * runs of glue are packed up to the size cap, and glue left tiny joins the
   * next chunk (or the previous one) so that no chunk is a lone import line or
   * closing brace.
   */
  emitLevel(rawItems: Item[], label: Label, depth: number): void {
    const level = ++this.levels;
    const from = this.out.length;
    const items = attachLeading(rawItems);

    let group: { start: number; end: number } | null = null;
    const flush = () => {
      if (group) this.push(group.start, group.end, label, level);
      group = null;
    };
    // Consecutive small defs, packed into one chunk up to the size cap.
    let pack: { start: number; end: number; labels: Label[] } | null = null;
    const flushPack = () => {
      if (pack) this.push(pack.start, pack.end, packedLabel(pack.labels), 0);
      pack = null;
    };

    for (const item of items) {
      if (item.role === 'def') {
        flush();
        const size = this.lines.size(item.start, item.end);
        if (size < this.packBelow) {
          if (pack && this.lines.size(pack.start, item.end) <= this.max) {
            pack.end = item.end;
            pack.labels.push(item.label);
          } else {
            flushPack();
            pack = { start: item.start, end: item.end, labels: [item.label] };
          }
          continue;
        }
        flushPack();
        this.emitDef(item, depth);
        continue;
      }
      flushPack();
      if (this.lines.size(item.start, item.end) > this.max) {
        flush();
        const sub = item.expand && depth < MAX_DEPTH ? item.expand(item.start) : null;
        if (sub && sub.items.length > 0) this.emitLevel(sub.items, sub.label ?? label, depth + 1);
        else this.windows(item.start, item.end, label);
      } else if (group && this.lines.size(group.start, item.end) <= this.max) {
        group.end = item.end;
      } else {
        flush();
        group = { start: item.start, end: item.end };
      }
    }
    flush();
    flushPack();
    this.absorbTiny(from, level);
  }

  private emitDef(item: Item, depth: number): void {
    if (this.lines.size(item.start, item.end) <= this.max) {
      this.push(item.start, item.end, item.label, 0);
      return;
    }
    const sub = item.expand && depth < MAX_DEPTH ? item.expand(item.start) : null;
    if (sub && sub.items.length > 0) {
      this.emitLevel(sub.items, sub.label ?? item.label, depth + 1);
    } else {
      this.windows(item.start, item.end, item.label);
    }
  }

  /** Level 0 marks chunks that never join a neighbour (defs, windows). */
  private push(start: number, end: number, label: Label, level: number): void {
    const lines = this.lines;
    while (start <= end && lines.blank(start)) start++;
    while (end >= start && lines.blank(end)) end--;
    if (start > end) return;
    this.out.push({
      start,
      end,
      kind: label.kind,
      symbol: label.symbol,
      level,
      tinyGlue: level > 0 && lines.size(start, end) < this.min,
    });
  }

  /**
   * Line windows over start..end, at most windowLines lines and maxChunkChars
   * characters each, overlapping by windowOverlap lines (scaled down when a
   * window is cut short by size), evenly sized so that a function a little
   * over the cap splits in two halves rather than a full window and a scrap.
   */
  windows(start: number, end: number, label: Label): void {
    const { lines, max } = this;
    while (start <= end && lines.blank(start)) start++;
    while (end >= start && lines.blank(end)) end--;
    if (start > end) return;

    const total = lines.size(start, end);
    const lineCount = end - start + 1;
    const { windowLines, windowOverlap } = this.opts;
    if (total <= max && lineCount <= windowLines) {
      this.push(start, end, label, 0);
      return;
    }
    // Balance whichever limit decides how many windows there are; overlap is
    // budgeted for, so the windows come out about even instead of ending in a scrap.
    const ratio = windowOverlap / windowLines;
    const byChars = Math.ceil(total / max);
    const byLines = Math.ceil(lineCount / windowLines);
    const charLimit = byChars >= byLines ? Math.min(max, Math.ceil((total / byChars) * (1 + ratio) + total / lineCount)) : max;
    const lineLimit = byLines >= byChars ? Math.min(windowLines, Math.ceil((lineCount / byLines) * (1 + ratio)) + 1) : windowLines;

    let ws = start;
    while (ws <= end) {
      while (ws <= end && lines.blank(ws)) ws++;
      if (ws > end) break;
      if (lines.length(ws) > max) {
        this.longLine(ws, label);
        ws++;
        continue;
      }
      let we = ws;
      while (
        we < end &&
        we + 1 - ws + 1 <= lineLimit &&
        lines.size(ws, we + 1) <= charLimit &&
        lines.length(we + 1) <= max
      ) {
        we++;
      }
      // Prefer to end a window at a blank line (a paragraph or statement
      // boundary) when one is in its second half.
      if (we < end && !lines.blank(we + 1)) {
        for (let b = we; b > ws + (we - ws) / 2; b--) {
          if (lines.blank(b)) {
            we = b - 1;
            break;
          }
        }
      }
      this.push(ws, we, label, 0);
      if (we >= end) break;
      const count = we - ws + 1;
      const overlap = Math.min(Math.floor(count / 2), Math.round(count * ratio));
      ws = Math.max(ws + 1, we + 1 - overlap);
    }
  }

  /** A line longer than maxChunkChars (minified code, data, a long paragraph) is cut into pieces. */
  private longLine(line: number, label: Label): void {
    const { lines, max } = this;
    const text = lines.text(line, line);
    let pos = 0;
    while (pos < text.length) {
      let cut = Math.min(text.length, pos + max);
      if (cut < text.length) {
        // Cut after a space or punctuation near the limit rather than mid-word.
        const floor = pos + Math.floor(max * 0.8);
        for (let i = cut; i > floor; i--) {
          const c = text.charCodeAt(i - 1);
          if (c === 32 || c === 44 || c === 59 || c === 9) {
            cut = i;
            break;
          }
        }
        const c = text.charCodeAt(cut - 1);
        if (c >= 0xd800 && c <= 0xdbff) cut--;
      }
      const piece = text.slice(pos, cut);
      if (piece.trim() !== '') {
        this.out.push({ start: line, end: line, kind: label.kind, symbol: label.symbol, content: piece, level: 0, tinyGlue: false });
      }
      pos = cut;
    }
  }

  /** Tiny glue of this level joins the next chunk, else the previous one, when the result stays under the hard cap. */
  private absorbTiny(from: number, level: number): void {
    const out = this.out;
    const cap = this.max + this.min;
    const kept: OutChunk[] = [];
    let pendingStart = -1;
    for (let i = from; i < out.length; i++) {
      const c = out[i]!;
      if (pendingStart >= 0) {
        c.start = pendingStart;
        pendingStart = -1;
      }
      if (c.tinyGlue && c.level === level) {
        const next = out[i + 1];
        if (next && next.content === undefined && this.lines.size(c.start, next.end) <= cap) {
          pendingStart = c.start;
          continue;
        }
        const prev = kept[kept.length - 1];
        if (prev && prev.content === undefined && this.lines.size(prev.start, c.end) <= cap) {
          prev.end = c.end;
          prev.tinyGlue &&= this.lines.size(prev.start, prev.end) < this.min;
          continue;
        }
      }
      kept.push(c);
    }
    out.length = from;
    for (const c of kept) out.push(c);
  }

  finish(): Chunk[] {
    this.ensureCoverage();
    const lines = this.lines;
    return this.out.map((c) => ({
      content: c.content ?? lines.text(c.start, c.end),
      startLine: c.start + 1,
      endLine: c.end + 1,
      symbol: c.symbol,
      kind: c.kind,
    }));
  }

  /**
   * The levels above cover every line by construction; this is the net under
   * that promise: a line no chunk holds (a grammar quirk) gets a window.
   */
  private ensureCoverage(): void {
    const lines = this.lines;
    const covered = new Int32Array(lines.count + 1);
    for (const c of this.out) {
      covered[c.start]!++;
      covered[c.end + 1]!--;
    }
    let depth = 0;
    let gapStart = -1;
    const gaps: Array<[number, number]> = [];
    for (let i = 0; i < lines.count; i++) {
      depth += covered[i]!;
      const missing = depth === 0 && !lines.blank(i);
      if (missing && gapStart < 0) gapStart = i;
      if (!missing && depth > 0 && gapStart >= 0) {
        gaps.push([gapStart, i - 1]);
        gapStart = -1;
      }
    }
    if (gapStart >= 0) gaps.push([gapStart, lines.count - 1]);
    if (gaps.length === 0) return;
    for (const [s, e] of gaps) this.windows(s, e, { kind: 'window', symbol: null });
    this.out.sort((a, b) => a.start - b.start || a.end - b.end);
  }
}

/** Comments and decorators directly above a def (no blank line between) become part of it. */
function attachLeading(items: Item[]): Item[] {
  const result: Item[] = [];
  for (let i = 0; i < items.length; ) {
    const item = items[i]!;
    if (item.role !== 'attach') {
      result.push(item);
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < items.length && items[j + 1]!.role === 'attach' && adjacent(items[j]!, items[j + 1]!)) j++;
    const next = items[j + 1];
    if (next && next.role === 'def' && adjacent(items[j]!, next)) {
      next.start = item.start;
    } else {
      for (let k = i; k <= j; k++) result.push({ ...items[k]!, role: 'glue' });
    }
    i = j + 1;
  }
  return result;
}

function adjacent(a: Item, b: Item): boolean {
  return b.start <= a.end + 1;
}

// ---------------------------------------------------------------------------
// Markdown: sections by heading, nested by level, fenced code ignored.

interface Heading {
  row: number;
  level: number;
  text: string;
}

const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const NOT_PARAGRAPH = /^ {0,3}([-*+>|]|\d+[.)]|#|<)/;

function markdownHeadings(lines: Lines): Heading[] {
  const headings: Heading[] = [];
  let fence: string | null = null;
  let row = 0;
  // YAML front matter is not a setext heading.
  if (lines.count > 1 && lines.text(0, 0) === '---') {
    for (let i = 1; i < lines.count; i++) {
      const t = lines.text(i, i);
      if (t === '---' || t === '...') {
        row = i + 1;
        break;
      }
    }
  }
  for (; row < lines.count; row++) {
    if (lines.length(row) > 400) continue;
    const text = lines.text(row, row);
    const f = FENCE.exec(text);
    if (fence !== null) {
      if (f && f[1]![0] === fence[0] && f[1]!.length >= fence.length && text.trim() === f[1]) fence = null;
      continue;
    }
    if (f) {
      fence = f[1]!;
      continue;
    }
    const atx = ATX.exec(text);
    if (atx) {
      headings.push({ row, level: atx[1]!.length, text: (atx[2] ?? '').trim() });
      continue;
    }
    if (row + 1 < lines.count && !lines.blank(row) && !NOT_PARAGRAPH.test(text) && (row === 0 || lines.blank(row - 1))) {
      const underline = SETEXT.exec(lines.text(row + 1, row + 1));
      if (underline) {
        headings.push({ row, level: underline[1]![0] === '=' ? 1 : 2, text: text.trim() });
        row++;
      }
    }
  }
  return headings;
}

function markdownItems(lines: Lines, start: number, end: number): Item[] {
  const headings = markdownHeadings(lines);
  return sectionItems(lines, headings, 0, headings.length, start, end);
}

/** Items for lines start..end holding headings[from..to): leading text, then each top section with its subtree. */
function sectionItems(lines: Lines, headings: Heading[], from: number, to: number, start: number, end: number): Item[] {
  const items: Item[] = [];
  const firstRow = from < to ? headings[from]!.row : end + 1;
  if (firstRow > start && lines.anyContent(start, firstRow - 1)) items.push(glue(start, firstRow - 1, null));
  let i = from;
  while (i < to) {
    const h = headings[i]!;
    let j = i + 1;
    while (j < to && headings[j]!.level > h.level) j++;
    const sectionEnd = j < to ? headings[j]!.row - 1 : end;
    const childFrom = i + 1;
    const childTo = j;
    const label: Label = { kind: 'section', symbol: truncateSymbol(h.text) || null };
    items.push({
      start: h.row,
      end: sectionEnd,
      role: 'def',
      label,
      expand:
        childFrom < childTo
          ? (fromRow) => ({ items: sectionItems(lines, headings, childFrom, childTo, fromRow, sectionEnd), label })
          : null,
    });
    i = j;
  }
  return items;
}

function glue(start: number, end: number, expand: Item['expand']): Item {
  return { start, end, role: 'glue', label: NO_LABEL, expand };
}

const NO_LABEL: Label = { kind: 'block', symbol: null };

// ---------------------------------------------------------------------------
// Syntax trees: which nodes are defs, what they are called, where their body is.

type Node = Parser.SyntaxNode;

interface DefInfo {
  kind: ChunkKind;
  name: string | null;
  /** Members live here; null for units that are never split along syntax (functions). */
  body: Node | null;
  /** A type named by the def itself: the receiver of a Go method, `Cache` in C++ `Cache::get`. */
  owner?: string | null;
}

type Classifier = (node: Node) => DefInfo | null;

interface GrammarSpec {
  defs: Record<string, Classifier>;
  /** Nodes around a def (export, decorators, template<>): the range is theirs, the rest the inner node's. */
  wrappers?: Record<string, (node: Node) => Node | null>;
  /** Member lists nested in a member list (Java enum bodies). */
  transparent?: ReadonlySet<string>;
  /** Besides comments, what sticks to the def below it. */
  attach?: ReadonlySet<string>;
  /**
   * Rewrites the source before parsing, keeping every line's length so rows
   * still match: a way around syntax newer than the grammar.
   */
  prepare?: (content: string) => string;
}

interface Scope {
  /** Enclosing types, outermost first: methods are named `Outer.Inner.method`. */
  types: string[];
  inType: boolean;
}

const ROOT_SCOPE: Scope = { types: [], inType: false };

interface TreeContext {
  spec: GrammarSpec;
  lines: Lines;
  minChars: number;
}
const TYPE_KINDS = new Set<ChunkKind>(['class', 'interface', 'struct', 'enum', 'trait', 'impl']);

class TreeLevel {
  readonly items: Item[] = [];

  private readonly spec: GrammarSpec;
  private readonly lines: Lines;

  constructor(
    private readonly ctx: TreeContext,
    private readonly scope: Scope,
    private cursor: number,
  ) {
    this.spec = ctx.spec;
    this.lines = ctx.lines;
  }

  addNodes(nodes: Node[]): void {
    for (const node of nodes) {
      if (this.spec.transparent?.has(node.type)) this.addNodes(node.children);
      else this.addNode(node);
    }
  }

  /** Lines after the last node (a Ruby `end`, a stray token) up to `end`. */
  finish(end: number): void {
    if (this.cursor <= end && this.lines.anyContent(this.cursor, end)) this.items.push(glue(this.cursor, end, null));
    this.cursor = end + 1;
  }

  private addNode(node: Node): void {
    const startRow = node.startPosition.row;
    const endRow = lastRow(node);
    if (endRow < this.cursor) return;
    if (startRow > this.cursor && this.lines.anyContent(this.cursor, startRow - 1)) {
      this.items.push(glue(this.cursor, startRow - 1, null));
    }
    const start = Math.max(startRow, this.cursor);
    this.cursor = endRow + 1;

    if (node.type.endsWith('comment') || this.spec.attach?.has(node.type)) {
      this.items.push({ start, end: endRow, role: 'attach', label: NO_LABEL, expand: null });
      return;
    }
    const def = classify(node, this.spec);
    // A one-line typedef or type alias is a declaration like a constant: it
    // joins its neighbours instead of making a chunk of forty characters.
    if (!def || (def.kind === 'type' && this.lines.size(start, endRow) < this.ctx.minChars)) {
      this.items.push(glue(start, endRow, node.childCount > 0 ? this.expandGlue(node, endRow) : null));
      return;
    }
    const kind = def.kind === 'function' && (this.scope.inType || def.owner) ? 'method' : def.kind;
    const qualifiers = def.owner ? [...this.scope.types, def.owner] : this.scope.types;
    const symbol = def.name ? truncateSymbol([...qualifiers, def.name].join('.')) : null;
    const label: Label = { kind, symbol };
    this.items.push({
      start,
      end: endRow,
      role: 'def',
      label,
      expand: def.body ? this.expandDef(def, def.body, label, endRow) : null,
    });
  }

  private expandGlue(node: Node, endRow: number): Item['expand'] {
    return (from) => {
      const level = new TreeLevel(this.ctx, this.scope, from);
      level.addNodes(node.children);
      level.finish(endRow);
      return { items: level.items, label: null };
    };
  }

  private expandDef(def: DefInfo, body: Node, label: Label, endRow: number): Item['expand'] {
    return (from) => {
      const isType = TYPE_KINDS.has(def.kind);
      const scope: Scope = {
        types: isType && def.name ? [...this.scope.types, ...(def.owner ? [def.owner] : []), def.name] : this.scope.types,
        inType: isType,
      };
      // The header runs to the line of the body's opening brace, or to the
      // line before its first statement where bodies have no brace (Python).
      const first = body.firstChild;
      const firstRow = first ? first.startPosition.row : body.startPosition.row;
      const headerEnd = Math.max(from, first && first.isNamed ? firstRow - 1 : firstRow);
      const level = new TreeLevel(this.ctx, scope, headerEnd + 1);
      level.items.push(glue(from, headerEnd, null));
      level.addNodes(body.children);
      level.finish(endRow);
      return { items: level.items, label };
    };
  }
}

/** A node that ends at column 0 ends with the newline before that row. */
function lastRow(node: Node): number {
  const end = node.endPosition;
  return end.column === 0 && end.row > node.startPosition.row ? end.row - 1 : end.row;
}

function classify(node: Node, spec: GrammarSpec): DefInfo | null {
  let inner = node;
  for (let i = 0; i < 4; i++) {
    const unwrap = spec.wrappers?.[inner.type];
    if (!unwrap) break;
    const next = unwrap(inner);
    if (!next) return null;
    inner = next;
  }
  const classifier = spec.defs[inner.type];
  return classifier ? classifier(inner) : null;
}

/** The label of packed defs: the first one's kind, every symbol in order (`with, clone, brand`). */
function packedLabel(labels: Label[]): Label {
  if (labels.length === 1) return labels[0]!;
  const symbols = [...new Set(labels.map((l) => l.symbol).filter((x): x is string => !!x))];
  return { kind: labels[0]!.kind, symbol: symbols.length > 0 ? truncateSymbol(symbols.join(', ')) : null };
}

function truncateSymbol(symbol: string): string {
  const s = symbol.replace(/\s+/g, ' ').trim();
  return s.length > MAX_SYMBOL_CHARS ? s.slice(0, MAX_SYMBOL_CHARS) : s;
}

// Small builders for the grammar tables below.

function fieldText(node: Node, field: string): string | null {
  const child = node.childForFieldName(field);
  return child ? child.text : null;
}

function childOfType(node: Node, types: readonly string[]): Node | null {
  for (const child of node.namedChildren) if (types.includes(child.type)) return child;
  return null;
}

/** `&mut Cache<T>`, `*Cache[T]`, `fmt::Display`, `Outer.Inner` → the bare type name. */
function baseTypeName(text: string | null | undefined): string | null {
  if (!text) return null;
  let s = text.replace(/^[\s&*(]*(mut\s+|const\s+)?/, '');
  const generic = s.search(/[<[(\s]/);
  if (generic > 0) s = s.slice(0, generic);
  const parts = s.split(/::|\./).filter(Boolean);
  return parts[parts.length - 1] ?? null;
}

const unit =
  (kind: ChunkKind): Classifier =>
  (n) => ({ kind, name: fieldText(n, 'name'), body: null });

const container =
  (kind: ChunkKind, bodyField = 'body'): Classifier =>
  (n) => ({ kind, name: fieldText(n, 'name'), body: n.childForFieldName(bodyField) });

/** Only with a body: a bare signature (interface method, prototype) is glue next to its neighbours. */
const withBody =
  (classifier: Classifier, bodyField = 'body'): Classifier =>
  (n) => (n.childForFieldName(bodyField) ? classifier(n) : null);

// TypeScript, TSX, JavaScript

const FUNCTION_VALUES = new Set(['arrow_function', 'function_expression', 'function', 'generator_function']);

const jsVariable: Classifier = (n) => {
  let declarator: Node | null = null;
  for (const child of n.namedChildren) {
    if (child.type !== 'variable_declarator') continue;
    if (declarator) return null;
    declarator = child;
  }
  const value = declarator?.childForFieldName('value');
  if (!declarator || !value) return null;
  const name = fieldText(declarator, 'name');
  if (FUNCTION_VALUES.has(value.type)) return { kind: 'function', name, body: null };
  if (value.type === 'class') return { kind: 'class', name, body: value.childForFieldName('body') };
  return null;
};

const jsField: Classifier = (n) => {
  const value = n.childForFieldName('value');
  if (!value || !FUNCTION_VALUES.has(value.type)) return null;
  return { kind: 'function', name: fieldText(n, 'name') ?? fieldText(n, 'property'), body: null };
};

const jsModule: Classifier = (n) => ({
  kind: n.type === 'internal_module' ? 'namespace' : 'module',
  name: fieldText(n, 'name')?.replace(/^['"]|['"]$/g, '') ?? null,
  body: n.childForFieldName('body'),
});

const JS_SPEC: GrammarSpec = {
  defs: {
    function_declaration: unit('function'),
    generator_function_declaration: unit('function'),
    method_definition: unit('function'),
    class_declaration: container('class'),
    abstract_class_declaration: container('class'),
    class: container('class'),
    interface_declaration: container('interface'),
    type_alias_declaration: unit('type'),
    enum_declaration: container('enum'),
    internal_module: jsModule,
    module: jsModule,
    public_field_definition: jsField,
    field_definition: jsField,
    lexical_declaration: jsVariable,
    variable_declaration: jsVariable,
  },
  wrappers: {
    export_statement: (n) => n.childForFieldName('declaration'),
    // `namespace X {}` parses as an expression statement.
    expression_statement: (n) => {
      const inner = n.firstNamedChild;
      return inner && (inner.type === 'internal_module' || inner.type === 'module') ? inner : null;
    },
    ambient_declaration: (n) => n.firstNamedChild,
  },
  attach: new Set(['decorator']),
};

// Python

const PYTHON_SPEC: GrammarSpec = {
  defs: {
    function_definition: unit('function'),
    class_definition: container('class'),
  },
  wrappers: { decorated_definition: (n) => n.childForFieldName('definition') },
};

// Go

const goType: Classifier = (n) => {
  const specs = n.namedChildren.filter((c) => c.type === 'type_spec' || c.type === 'type_alias');
  if (specs.length !== 1) return null;
  const spec = specs[0]!;
  const type = spec.childForFieldName('type');
  const name = fieldText(spec, 'name');
  if (type?.type === 'struct_type') return { kind: 'struct', name, body: childOfType(type, ['field_declaration_list']) };
  if (type?.type === 'interface_type') return { kind: 'interface', name, body: type };
  return { kind: 'type', name, body: null };
};

const GO_SPEC: GrammarSpec = {
  defs: {
    function_declaration: unit('function'),
    method_declaration: (n) => {
      const receiver = n.childForFieldName('receiver');
      const param = receiver ? childOfType(receiver, ['parameter_declaration']) : null;
      return { kind: 'method', name: fieldText(n, 'name'), body: null, owner: baseTypeName(param ? fieldText(param, 'type') : null) };
    },
    type_declaration: goType,
  },
};

// Java

const JAVA_SPEC: GrammarSpec = {
  defs: {
    class_declaration: container('class'),
    interface_declaration: container('interface'),
    enum_declaration: container('enum'),
    record_declaration: container('class'),
    annotation_type_declaration: container('interface'),
    method_declaration: withBody(unit('function')),
    constructor_declaration: unit('function'),
    compact_constructor_declaration: unit('function'),
  },
  transparent: new Set(['enum_body_declarations']),
};

// Rust

const RUST_SPEC: GrammarSpec = {
  defs: {
    function_item: unit('function'),
    struct_item: container('struct'),
    union_item: container('struct'),
    enum_item: container('enum'),
    trait_item: container('trait'),
    impl_item: (n) => ({ kind: 'impl', name: baseTypeName(fieldText(n, 'type')), body: n.childForFieldName('body') }),
    mod_item: withBody(container('module')),
    macro_definition: unit('function'),
    type_item: unit('type'),
  },
  attach: new Set(['attribute_item']),
};

// C#

const FILE_SCOPED_NAMESPACE = /^[ \t]*namespace[ \t]+[\w.]+[ \t]*;/m;

const csharpFunction: Classifier = (n) =>
  n.childForFieldName('body') || childOfType(n, ['arrow_expression_clause', 'block'])
    ? { kind: 'function', name: fieldText(n, 'name'), body: null }
    : null;

const CSHARP_SPEC: GrammarSpec = {
  // The C# grammar predates file-scoped namespaces (C# 10): `namespace X;`
  // swallows the file into an error. Blanked out, the types below it parse
  // as top-level ones (namespaces do not qualify symbols anyway).
  prepare: (content) => content.replace(FILE_SCOPED_NAMESPACE, (m) => ' '.repeat(m.length)),
  defs: {
    class_declaration: container('class'),
    struct_declaration: container('struct'),
    interface_declaration: container('interface'),
    enum_declaration: container('enum'),
    record_declaration: container('class'),
    record_struct_declaration: container('struct'),
    namespace_declaration: container('namespace'),
    method_declaration: csharpFunction,
    constructor_declaration: csharpFunction,
    destructor_declaration: (n) => {
      const f = csharpFunction(n);
      return f && f.name ? { ...f, name: `~${f.name}` } : f;
    },
    operator_declaration: (n) => {
      const f = csharpFunction(n);
      return f ? { ...f, name: `operator ${fieldText(n, 'operator') ?? ''}`.trim() } : f;
    },
    local_function_statement: csharpFunction,
  },
};

// C and C++

const DECLARATOR_WRAPPERS = new Set([
  'function_declarator',
  'pointer_declarator',
  'reference_declarator',
  'parenthesized_declarator',
  'attributed_declarator',
  'array_declarator',
]);

/** `int *(*name)(void)`: follow the declarator down to the name. */
function declaratorName(node: Node): Node | null {
  let current: Node | null = node.childForFieldName('declarator');
  for (let i = 0; current && i < 8 && DECLARATOR_WRAPPERS.has(current.type); i++) {
    current = current.childForFieldName('declarator') ?? current.firstNamedChild;
  }
  return current;
}

const cFunction: Classifier = (n) => {
  const nameNode = declaratorName(n);
  if (!nameNode) return { kind: 'function', name: null, body: null };
  if (nameNode.type === 'qualified_identifier') {
    // Out-of-line `Cache::get`: namespace and class look alike, so the last qualifier is taken as the class.
    const parts = nameNode.text.split('::').map((p) => p.trim()).filter(Boolean);
    if (parts.length >= 2) return { kind: 'function', name: parts[parts.length - 1]!, body: null, owner: baseTypeName(parts[parts.length - 2]) };
  }
  return { kind: 'function', name: nameNode.text, body: null };
};

const cTypedef: Classifier = (n) => {
  const type = n.childForFieldName('type');
  const name = declaratorName(n)?.text ?? fieldText(n, 'declarator');
  const body = type?.childForFieldName('body') ?? null;
  if (body && (type!.type === 'struct_specifier' || type!.type === 'union_specifier')) return { kind: 'struct', name, body };
  if (body && type!.type === 'enum_specifier') return { kind: 'enum', name, body };
  return { kind: 'type', name, body: null };
};

const C_DEFS: Record<string, Classifier> = {
  function_definition: cFunction,
  struct_specifier: withBody(container('struct')),
  union_specifier: withBody(container('struct')),
  enum_specifier: withBody(container('enum')),
  type_definition: cTypedef,
};

const CPP_DEF_TYPES = ['function_definition', 'class_specifier', 'struct_specifier', 'union_specifier', 'enum_specifier', 'declaration', 'alias_declaration', 'concept_definition'];

const C_SPEC: GrammarSpec = { defs: C_DEFS };

const CPP_SPEC: GrammarSpec = {
  defs: {
    ...C_DEFS,
    class_specifier: withBody(container('class')),
    namespace_definition: container('namespace'),
  },
  wrappers: { template_declaration: (n) => childOfType(n, CPP_DEF_TYPES) },
};

// Ruby, PHP, Kotlin, Swift, Scala

const RUBY_SPEC: GrammarSpec = {
  defs: {
    method: unit('function'),
    singleton_method: unit('function'),
    class: container('class'),
    module: container('module'),
  },
};

const PHP_SPEC: GrammarSpec = {
  defs: {
    class_declaration: container('class'),
    interface_declaration: container('interface'),
    trait_declaration: container('trait'),
    enum_declaration: container('enum'),
    function_definition: unit('function'),
    method_declaration: withBody(unit('function')),
    namespace_definition: withBody(container('namespace')),
  },
  attach: new Set(['attribute_list']),
};

const kotlinClass: Classifier = (n) => {
  let kind: ChunkKind = 'class';
  for (const child of n.children) {
    if (child.type === 'interface' && !child.isNamed) kind = 'interface';
    if (child.type === 'enum_class_body') kind = 'enum';
  }
  return {
    kind,
    name: childOfType(n, ['type_identifier', 'simple_identifier'])?.text ?? null,
    body: childOfType(n, ['class_body', 'enum_class_body']),
  };
};

const KOTLIN_SPEC: GrammarSpec = {
  defs: {
    class_declaration: kotlinClass,
    object_declaration: kotlinClass,
    companion_object: kotlinClass,
    function_declaration: (n) => ({ kind: 'function', name: childOfType(n, ['simple_identifier'])?.text ?? null, body: null }),
  },
};

const SWIFT_KINDS: Record<string, ChunkKind> = { class: 'class', struct: 'struct', enum: 'enum', extension: 'impl', actor: 'class' };

const SWIFT_SPEC: GrammarSpec = {
  defs: {
    class_declaration: (n) => ({
      kind: SWIFT_KINDS[fieldText(n, 'declaration_kind') ?? ''] ?? 'class',
      name: baseTypeName(fieldText(n, 'name')),
      body: n.childForFieldName('body'),
    }),
    protocol_declaration: container('interface'),
    function_declaration: unit('function'),
    init_declaration: () => ({ kind: 'function', name: 'init', body: null }),
    deinit_declaration: () => ({ kind: 'function', name: 'deinit', body: null }),
  },
};

const SCALA_SPEC: GrammarSpec = {
  defs: {
    class_definition: container('class'),
    object_definition: container('class'),
    trait_definition: container('trait'),
    enum_definition: container('enum'),
    function_definition: unit('function'),
  },
};

const SPECS: Record<Grammar, GrammarSpec> = {
  typescript: JS_SPEC,
  tsx: JS_SPEC,
  javascript: JS_SPEC,
  python: PYTHON_SPEC,
  go: GO_SPEC,
  java: JAVA_SPEC,
  rust: RUST_SPEC,
  c_sharp: CSHARP_SPEC,
  c: C_SPEC,
  cpp: CPP_SPEC,
  ruby: RUBY_SPEC,
  php: PHP_SPEC,
  kotlin: KOTLIN_SPEC,
  swift: SWIFT_SPEC,
  scala: SCALA_SPEC,
};
