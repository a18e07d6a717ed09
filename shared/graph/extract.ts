import type Parser from 'web-tree-sitter';
import type { Language } from '../indexing/language.ts';
import { createParserLoader } from '../indexing/tree-sitter.ts';

/**
 * The code graph of one file, read from its syntax tree alone (no I/O, no
 * type information): the symbols it defines, what each of them calls, what
 * the file imports, and which types a type extends or implements.
 *
 * Names are syntactic. A call is recorded by the callee's bare name
 * (`obj.save()` → `save`), so linking a call to a definition is a best-effort
 * match by name that the graph store makes later, against the file itself
 * and the files it imports.
 */

export type SymbolKind = 'function' | 'method' | 'class' | 'interface' | 'type' | 'enum' | 'struct' | 'trait';

export interface ExtractedSymbol {
  name: string;
  /** Enclosing symbols joined with dots: `Cache.get`, `Server.Start` for a Go method, `outer.inner` for a nested function. */
  qualifiedName: string;
  kind: SymbolKind;
  /** 1-based, inclusive; starts at the export keyword or the first decorator when there is one. */
  startLine: number;
  endLine: number;
  /** Callees' bare names (`foo`, `bar` for `this.bar()`, `Func` for `pkg.Func()`, `Thing` for `new Thing()`), deduplicated, first call first. */
  calls: string[];
  /** The same calls with their receiver when it is a plain name chain (`this.bar`, `pkg.Func`, `a.b.c`); `::` paths are written with dots. */
  qualifiedCalls: string[];
  /** Bare names of base types (`Base` for `extends ns.Base<T>`); Go embedded types and Rust supertraits count as extends. */
  extends: string[];
  implements: string[];
  exported: boolean;
}

export interface ExtractedImport {
  /** As written: `./util`, `@app/core`, `.models`, `os.path`, `github.com/x/y`, `java.util.List`, `std::io::Read`. */
  specifier: string;
  /** Imported names, not local aliases; `*` for a namespace or wildcard, `default` for a default import; empty for a bare side-effect import. */
  names: string[];
  line: number;
}

export interface FileGraph {
  symbols: ExtractedSymbol[];
  imports: ExtractedImport[];
  /** Calls at file top level, outside any symbol. */
  topLevelCalls: string[];
  topLevelQualifiedCalls: string[];
}

export interface GraphExtractor {
  /**
   * The graph of one file, or null for a language without graph support.
   * Async only while a grammar loads for the first time. Never throws on odd
   * content: a file that cannot be parsed yields an empty graph.
   */
  extract(input: { path: string; content: string; language: Language }): Promise<FileGraph | null>;
  /**
   * The graph from a tree someone already parsed (the chunker hands its tree
   * over, so indexing parses each file once). The tree stays the caller's to free.
   */
  extractTree(tree: Parser.Tree, language: Language): FileGraph | null;
  /** Frees the parsers (wasm memory). */
  close(): void;
}

export const GRAPH_LANGUAGES = ['typescript', 'tsx', 'javascript', 'python', 'go', 'java', 'rust', 'csharp'] as const;
export type GraphLanguage = (typeof GRAPH_LANGUAGES)[number];

export function hasGraphSupport(language: Language): language is GraphLanguage {
  return (GRAPH_LANGUAGES as readonly string[]).includes(language);
}

export function createGraphExtractor(): GraphExtractor {
  const loader = createParserLoader();

  async function extract(input: { path: string; content: string; language: Language }): Promise<FileGraph | null> {
    if (!hasGraphSupport(input.language)) return null;
    const parser = await loader.loadParser(input.language);
    return extractWith(parser, SPECS[input.language], input.content);
  }

  function extractTree(tree: Parser.Tree, language: Language): FileGraph | null {
    if (!hasGraphSupport(language)) return null;
    return walkTree(tree, SPECS[language]);
  }

  return { extract, extractTree, close: loader.close };
}

function emptyGraph(): FileGraph {
  return { symbols: [], imports: [], topLevelCalls: [], topLevelQualifiedCalls: [] };
}

function extractWith(parser: Parser, spec: LanguageSpec, content: string): FileGraph {
  if (content.trim() === '') return emptyGraph();
  let tree: Parser.Tree;
  try {
    tree = parser.parse(content);
  } catch {
    // Timed out or ran out of memory; the parser must be reset before its next use.
    parser.reset();
    return emptyGraph();
  }
  try {
    return walkTree(tree, spec);
  } finally {
    tree.delete();
  }
}

function walkTree(tree: Parser.Tree, spec: LanguageSpec): FileGraph {
  try {
    const ctx = new Context();
    walk(tree, spec, ctx);
    spec.finish?.(ctx);
    return ctx.result();
  } catch {
    // One odd file must not fail a whole indexing batch.
    return emptyGraph();
  }
}

// ---------------------------------------------------------------------------
// Walking: only the nodes a language has a handler or a skip rule for, found
// by one `descendantsOfType` call that walks the tree inside tree-sitter's
// wasm and returns them in document (pre-)order. Stepping a cursor from
// JavaScript over every node instead crossed into wasm three times per node
// (punctuation included) and was half the cost of indexing a file. Nesting is
// rebuilt from byte ranges: in pre-order, a later node lies inside an earlier
// one exactly when it starts before that one ends. Iterative, so deep nesting
// (long operator chains in generated code) cannot overflow the stack.

type Node = Parser.SyntaxNode;

/** Returns false to skip the node's subtree. */
type Handler = (node: Node, ctx: Context) => boolean | void;

interface LanguageSpec {
  /** A Map, not an object: node types such as `constructor` must not find Object.prototype's. */
  handlers: ReadonlyMap<string, Handler>;
  /** Subtrees that hold nothing of interest. */
  skip: ReadonlySet<string>;
  /** After the walk: facts that need the whole file (Rust impls, JS export lists). */
  finish?: (ctx: Context) => void;
}

const walkedTypes = new WeakMap<LanguageSpec, string[]>();

function walk(tree: Parser.Tree, spec: LanguageSpec, ctx: Context): void {
  let types = walkedTypes.get(spec);
  if (!types) walkedTypes.set(spec, (types = [...new Set([...spec.handlers.keys(), ...spec.skip])]));
  // End offsets of the visited nodes enclosing the current one; their count is the depth frames record.
  const open: number[] = [];
  let skipEnd = -1;
  const leave = () => {
    open.pop();
    ctx.depth = open.length;
    ctx.leave();
  };
  for (const node of tree.rootNode.descendantsOfType(types)) {
    const start = node.startIndex;
    if (start < skipEnd) continue; // inside a subtree a handler or skip rule passed over
    while (open.length > 0 && open[open.length - 1]! <= start) leave();
    ctx.depth = open.length;
    const handler = spec.handlers.get(node.type);
    const descend = handler !== undefined ? handler(node, ctx) !== false : !spec.skip.has(node.type);
    open.push(node.endIndex);
    if (!descend) {
      skipEnd = node.endIndex;
      leave();
    }
  }
  while (open.length > 0) leave();
}

// ---------------------------------------------------------------------------
// Collecting.

interface CallSink {
  calls: Set<string>;
  qualifiedCalls: Set<string>;
}

interface SymbolRecord extends CallSink {
  name: string;
  qualifiedName: string;
  kind: SymbolKind;
  startLine: number;
  endLine: number;
  extends: string[];
  implements: string[];
  /** Its own visibility (modifiers, naming); it is exported only if its enclosing symbol is too. */
  exported: boolean;
  parent: SymbolRecord | null;
  /** Defined at file level, not inside another symbol or type scope. */
  topLevel: boolean;
}

interface Frame {
  /** Depth of the node that opened the frame: it closes when the walk leaves that node. */
  depth: number;
  sink: CallSink;
  /** Qualifier of what is defined inside. */
  path: string[];
  /** Functions defined directly inside are methods. */
  isType: boolean;
  symbol: SymbolRecord | null;
  /** The innermost symbol around, this frame's own or, for a scope that is not a symbol, its parent's. */
  enclosing: SymbolRecord | null;
  /** For scopes that are not symbols (Rust impls, anonymous classes): whether their members can be visible at all. */
  exported: boolean;
  /** The kind of type scope: members of an interface or trait are public without saying so. */
  kind: SymbolKind | 'impl' | null;
}

interface Definition {
  name: string | null | undefined;
  kind: SymbolKind;
  /** The node whose first line the symbol starts at, when not the definition's own (export, decorators). */
  outer?: Node | null;
  /** A type named by the definition itself: a Go method's receiver. */
  owner?: string | null;
  extends?: string[];
  implements?: string[];
  /** Its own visibility; `define` does not look at the enclosing symbol's, which may still change (JS export lists). */
  exported: boolean;
}

class Context {
  depth = 0;
  readonly symbols: SymbolRecord[] = [];
  readonly imports: ExtractedImport[] = [];
  readonly root: Frame = {
    depth: -1,
    sink: { calls: new Set(), qualifiedCalls: new Set() },
    path: [],
    isType: false,
    symbol: null,
    enclosing: null,
    exported: true,
    kind: null,
  };
  private readonly frames: Frame[] = [this.root];
  /** Names exported by a separate statement (`export { a, b }`, `export default a`). */
  readonly exportedNames = new Set<string>();
  /** Rust `impl Trait for Type`: type name → traits. */
  readonly traitImpls = new Map<string, string[]>();

  get frame(): Frame {
    return this.frames[this.frames.length - 1]!;
  }

  /** Inside a function body (where definitions are local and never exported). */
  get inFunction(): boolean {
    const kind = this.frame.enclosing?.kind;
    return kind === 'function' || kind === 'method';
  }

  leave(): void {
    while (this.frames.length > 1 && this.frame.depth >= this.depth) this.frames.pop();
  }

  define(node: Node, def: Definition): void {
    const parent = this.frame;
    if (def.name && !isUsableName(def.name, parent.path)) def = { ...def, name: null };
    if (!def.name) {
      // An anonymous class still scopes its members; an anonymous function is not a symbol.
      if (def.kind !== 'function' && def.kind !== 'method') this.scope({ name: null, isType: true, exported: false, kind: def.kind });
      return;
    }
    const kind: SymbolKind = def.kind === 'function' && parent.isType ? 'method' : def.kind;
    const qualifier = def.owner ? [...parent.path, def.owner] : parent.path;
    const start = withLeadingAttributes(def.outer ?? node).startPosition.row;
    const symbol: SymbolRecord = {
      name: def.name,
      qualifiedName: [...qualifier, def.name].join('.'),
      kind,
      startLine: start + 1,
      endLine: Math.max(start, lastRow(node)) + 1,
      calls: new Set(),
      qualifiedCalls: new Set(),
      extends: def.extends ?? [],
      implements: def.implements ?? [],
      exported: def.exported,
      parent: parent.enclosing,
      topLevel: parent === this.root,
    };
    this.symbols.push(symbol);
    this.frames.push({
      depth: this.depth,
      sink: symbol,
      path: [...qualifier, def.name],
      isType: kind !== 'function' && kind !== 'method',
      symbol,
      enclosing: symbol,
      exported: def.exported,
      kind,
    });
  }

  /** A scope that qualifies what it holds without being a symbol itself (Rust `impl`, anonymous classes). */
  scope(opts: { name: string | null; isType: boolean; exported: boolean; kind: Frame['kind'] }): void {
    const parent = this.frame;
    this.frames.push({
      depth: this.depth,
      sink: parent.sink,
      path: opts.name ? [...parent.path, opts.name] : parent.path,
      isType: opts.isType,
      symbol: null,
      enclosing: parent.enclosing,
      exported: opts.exported,
      kind: opts.kind,
    });
  }

  call(name: string | null | undefined, qualified?: string | null): void {
    if (!name) return;
    const sink = this.frame.sink;
    sink.calls.add(name);
    sink.qualifiedCalls.add(qualified || name);
  }

  addImport(node: Node, specifier: string | null | undefined, names: string[]): void {
    if (!specifier) return;
    this.imports.push({ specifier, names: [...new Set(names)], line: node.startPosition.row + 1 });
  }

  result(): FileGraph {
    // Parents precede their members, so one pass settles visibility from the outside in.
    const visible = new Map<SymbolRecord, boolean>();
    for (const s of this.symbols) visible.set(s, s.exported && (s.parent ? visible.get(s.parent)! : true));
    return {
      symbols: this.symbols.map((s) => ({
        name: s.name,
        qualifiedName: s.qualifiedName,
        kind: s.kind,
        startLine: s.startLine,
        endLine: s.endLine,
        calls: [...s.calls],
        qualifiedCalls: [...s.qualifiedCalls],
        extends: s.extends,
        implements: s.implements,
        exported: visible.get(s)!,
      })),
      imports: this.imports,
      topLevelCalls: [...this.root.sink.calls],
      topLevelQualifiedCalls: [...this.root.sink.qualifiedCalls],
    };
  }
}

// ---------------------------------------------------------------------------
// Helpers shared by the languages.

/** A node that ends at column 0 ends with the newline before that row. */
function lastRow(node: Node): number {
  const end = node.endPosition;
  return end.column === 0 && end.row > node.startPosition.row ? end.row - 1 : end.row;
}

/**
 * Decorators of a TS class member and Rust attributes (`#[derive]`) are the
 * definition's previous siblings rather than its children: the symbol starts
 * at the first of them, as it does where the grammar nests them.
 */
function withLeadingAttributes(node: Node): Node {
  let first = node;
  for (let prev = node.previousNamedSibling; prev && (prev.type === 'decorator' || prev.type === 'attribute_item'); prev = prev.previousNamedSibling) {
    first = prev;
  }
  return first;
}

/** Longest name a symbol may have; longer "names" are expressions or generated, not identifiers. */
const MAX_NAME_LENGTH = 256;
/** Longest qualified name: it is indexed, and index entries are limited in size. */
const MAX_QUALIFIED_NAME_LENGTH = 1024;

/** A name worth a graph node: short and on one line (a computed key can be any expression). */
function isUsableName(name: string, qualifier: string[]): boolean {
  if (name.length > MAX_NAME_LENGTH || /[\r\n]/.test(name)) return false;
  return qualifier.reduce((n, q) => n + q.length + 1, name.length) <= MAX_QUALIFIED_NAME_LENGTH;
}

/**
 * A class member's name as code would call it: `foo`, `#foo`, `'foo'` and
 * `['foo']` give `foo`; a computed key that is not a literal
 * (`[Symbol.iterator]`, `[(_x = new WeakMap(), …)]`) gives `[Symbol.iterator]`
 * when it is a plain name chain and nothing otherwise.
 */
function jsMemberName(node: Node | null): string | null {
  if (!node) return null;
  if (node.type === 'string') return node.namedChildren.map((c) => c.text).join('') || null;
  if (node.type !== 'computed_property_name') return node.text;
  const inner = node.namedChildren[0];
  if (!inner || node.namedChildren.length !== 1) return null;
  if (inner.type === 'string') return jsMemberName(inner);
  const chain = nameChain(inner, JS_MEMBER, 'object', 'property');
  return chain ? `[${chain}]` : null;
}

function field(node: Node, name: string): string | null {
  return node.childForFieldName(name)?.text ?? null;
}

function hasToken(node: Node, token: string): boolean {
  for (let i = 0; i < node.childCount; i++) if (node.child(i)!.type === token) return true;
  return false;
}

function childOfType(node: Node, types: readonly string[]): Node | null {
  for (const child of node.namedChildren) if (types.includes(child.type)) return child;
  return null;
}

/** `ns.Base<T>`, `*pkg.Other`, `a::b::C<T>`, `Generic[T]` → `Base`, `Other`, `C`, `Generic`. */
function bareTypeName(text: string): string | null {
  let s = text.replace(/^[\s&*(]*(?:mut\s+|const\s+|dyn\s+)?/, '');
  const generic = s.search(/[<[(\s{]/);
  if (generic >= 0) s = s.slice(0, generic);
  const parts = s.split(/::|\./).filter(Boolean);
  const last = parts[parts.length - 1];
  return last && /^[\p{L}_$][\p{L}\p{N}_$]*$/u.test(last) ? last : null;
}

function typeNames(nodes: Iterable<Node>): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    const name = bareTypeName(n.text);
    if (name && !out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * `a.b.c` for a receiver made of names only (identifiers, `this`, member
 * access), else null: `foo().bar` or `a[0]` say nothing a graph can use.
 */
function nameChain(node: Node | null, members: ReadonlySet<string>, objectField: string, propertyField: string, depth = 0): string | null {
  if (!node || depth > 6) return null;
  if (members.has(node.type)) {
    const object = nameChain(node.childForFieldName(objectField), members, objectField, propertyField, depth + 1);
    const property = node.childForFieldName(propertyField);
    return object && property ? `${object}.${property.text}` : null;
  }
  return NAME_TYPES.has(node.type) ? node.text : null;
}

const NAME_TYPES = new Set([
  'identifier',
  'this',
  'super',
  'self',
  'crate',
  'type_identifier',
  'field_identifier',
  'property_identifier',
  'package_identifier',
  'base',
]);

function unquote(node: Node | null): string | null {
  if (!node) return null;
  if (node.type === 'template_string' && node.namedChildren.some((c) => c.type === 'template_substitution')) return null;
  const text = node.text;
  if (text.length < 2) return null;
  const q = text[0];
  if ((q === '"' || q === "'" || q === '`') && text[text.length - 1] === q) return text.slice(1, -1);
  return null;
}

// ---------------------------------------------------------------------------
// TypeScript, TSX, JavaScript

const JS_FUNCTIONS = new Set(['arrow_function', 'function_expression', 'function', 'generator_function']);
const JS_MEMBER = new Set(['member_expression']);

function jsExported(node: Node): boolean {
  return node.parent?.type === 'export_statement';
}

/** A class member is visible outside when its class is exported and it is not private. */
function jsMemberExported(node: Node, name: string, ctx: Context): boolean {
  if (ctx.frame.symbol === null || name.startsWith('#')) return false;
  const access = childOfType(node, ['accessibility_modifier']);
  return !access || access.text === 'public';
}

function jsHeritage(node: Node): { extends: string[]; implements: string[] } {
  const ext: Node[] = [];
  const impl: Node[] = [];
  const heritage = childOfType(node, ['class_heritage']);
  if (heritage) {
    for (const clause of heritage.namedChildren) {
      if (clause.type === 'extends_clause') {
        // `extends Base<T>` keeps its value; `extends mixin(Base)` names no class.
        const value = clause.childForFieldName('value') ?? clause.firstNamedChild;
        if (value) ext.push(value);
      } else if (clause.type === 'implements_clause') {
        impl.push(...clause.namedChildren);
      } else {
        // JavaScript: `class_heritage` holds the expression itself.
        ext.push(clause);
      }
    }
  }
  const names = (nodes: Node[]) => typeNames(nodes.filter((n) => n.type !== 'call_expression' && n.type !== 'comment'));
  return { extends: names(ext), implements: names(impl) };
}

function jsClass(kind: SymbolKind): Handler {
  return (node, ctx) => {
    ctx.define(node, {
      name: field(node, 'name'),
      kind,
      outer: node.parent?.type === 'export_statement' ? node.parent : null,
      ...jsHeritage(node),
      exported: jsExported(node),
    });
  };
}

function jsFunction(node: Node, ctx: Context): void {
  ctx.define(node, {
    name: field(node, 'name'),
    kind: 'function',
    outer: node.parent?.type === 'export_statement' ? node.parent : null,
    exported: jsExported(node),
  });
}

/** The statement a declarator starts, when it is the statement's only declarator. */
function jsDeclarationOuter(declarator: Node): Node | null {
  const decl = declarator.parent;
  if (!decl || (decl.type !== 'lexical_declaration' && decl.type !== 'variable_declaration')) return null;
  if (decl.namedChildren.filter((c) => c.type === 'variable_declarator').length !== 1) return null;
  return decl.parent?.type === 'export_statement' ? decl.parent : decl;
}

const jsDeclarator: Handler = (node, ctx) => {
  const value = node.childForFieldName('value');
  const nameNode = node.childForFieldName('name');
  if (!value || nameNode?.type !== 'identifier') return;
  let kind: SymbolKind | null = null;
  let heritage: { extends: string[]; implements: string[] } = { extends: [], implements: [] };
  if (JS_FUNCTIONS.has(value.type)) kind = 'function';
  else if (value.type === 'class') {
    kind = 'class';
    heritage = jsHeritage(value);
  } else if (value.type === 'call_expression' && ctx.frame === ctx.root) {
    // `export const Button = forwardRef((props) => …)`: a module-level
    // function wrapped in a higher-order call is still that function.
    const args = value.childForFieldName('arguments');
    if (args?.namedChildren.some((a) => JS_FUNCTIONS.has(a.type))) kind = 'function';
  }
  if (!kind) return;
  const outer = jsDeclarationOuter(node);
  ctx.define(node, {
    name: nameNode.text,
    kind,
    outer,
    ...heritage,
    exported: outer?.type === 'export_statement',
  });
};

const jsMethod: Handler = (node, ctx) => {
  // Object-literal methods are not symbols: `{ get() {} }` would flood the graph with `get`.
  if (node.parent?.type !== 'class_body') return;
  const name = jsMemberName(node.childForFieldName('name'));
  if (!name) return;
  ctx.define(node, { name, kind: 'method', exported: jsMemberExported(node, name, ctx) });
};

const jsField: Handler = (node, ctx) => {
  const value = node.childForFieldName('value');
  if (!value || !JS_FUNCTIONS.has(value.type)) return;
  const name = jsMemberName(node.childForFieldName('name') ?? node.childForFieldName('property'));
  if (!name) return;
  ctx.define(node, { name, kind: 'method', exported: jsMemberExported(node, name, ctx) });
};

/** `X.prototype.y = function`, `exports.y = () => …`: the pre-class ways of defining methods and exports. */
const jsAssignment: Handler = (node, ctx) => {
  const left = node.childForFieldName('left');
  const right = node.childForFieldName('right');
  if (!left || !right || left.type !== 'member_expression' || ctx.inFunction) return;
  const name = field(left, 'property');
  const object = nameChain(left.childForFieldName('object'), JS_MEMBER, 'object', 'property');
  if (object === 'module' && name === 'exports') {
    // `module.exports = { a, b: c }` / `module.exports = a`: CommonJS's export list.
    if (right.type === 'identifier') ctx.exportedNames.add(right.text);
    for (const p of right.type === 'object' ? right.namedChildren : []) {
      if (p.type === 'shorthand_property_identifier') ctx.exportedNames.add(p.text);
      else if (p.type === 'pair' && p.childForFieldName('value')?.type === 'identifier') ctx.exportedNames.add(p.childForFieldName('value')!.text);
    }
    return;
  }
  if (!name || !object || !JS_FUNCTIONS.has(right.type)) return;
  const isExports = object === 'exports' || object === 'module.exports';
  const proto = /^(.+)\.prototype$/.exec(object);
  const outer = node.parent?.type === 'expression_statement' ? node.parent : null;
  if (proto) {
    ctx.define(node, { name, kind: 'method', owner: proto[1]!, outer, exported: false });
  } else {
    ctx.define(node, { name, kind: 'function', owner: isExports ? null : object, outer, exported: isExports });
  }
};

function jsCallee(fn: Node | null): { name: string; qualified: string | null } | null {
  if (!fn) return null;
  if (fn.type === 'identifier') return { name: fn.text, qualified: null };
  if (fn.type === 'member_expression') {
    const property = fn.childForFieldName('property');
    if (!property) return null;
    const object = nameChain(fn.childForFieldName('object'), JS_MEMBER, 'object', 'property');
    return { name: property.text, qualified: object ? `${object}.${property.text}` : null };
  }
  return null;
}

/** What `require('x')` / `import('x')` binds: `{ a, b }` destructured, `*` for a whole module, nothing for a bare call. */
function jsBoundNames(call: Node): string[] {
  let node: Node | null = call.parent;
  while (node && (node.type === 'await_expression' || node.type === 'parenthesized_expression')) node = node.parent;
  if (node?.type !== 'variable_declarator') return [];
  const target = node.childForFieldName('name');
  if (target?.type === 'identifier') return ['*'];
  if (target?.type === 'object_pattern') {
    const names: string[] = [];
    for (const p of target.namedChildren) {
      if (p.type === 'shorthand_property_identifier_pattern') names.push(p.text);
      else if (p.type === 'pair_pattern') {
        const key = field(p, 'key');
        if (key) names.push(key);
      }
    }
    return names;
  }
  return [];
}

const jsCall: Handler = (node, ctx) => {
  const fn = node.childForFieldName('function');
  if (!fn) return;
  if (fn.type === 'import' || (fn.type === 'identifier' && fn.text === 'require')) {
    const args = node.childForFieldName('arguments');
    const first = args?.firstNamedChild ?? null;
    if (args?.namedChildCount === 1 && (first?.type === 'string' || first?.type === 'template_string')) {
      ctx.addImport(node, unquote(first), jsBoundNames(node));
      return false;
    }
    if (fn.type === 'import') return;
  }
  const callee = jsCallee(fn);
  if (callee) ctx.call(callee.name, callee.qualified);
};

const jsNew: Handler = (node, ctx) => {
  const callee = jsCallee(node.childForFieldName('constructor'));
  if (callee) ctx.call(callee.name, callee.qualified);
};

const jsImport: Handler = (node, ctx) => {
  const require = childOfType(node, ['import_require_clause']);
  if (require) {
    ctx.addImport(node, unquote(require.childForFieldName('source')), ['*']);
    return false;
  }
  const names: string[] = [];
  const clause = childOfType(node, ['import_clause']);
  for (const part of clause?.namedChildren ?? []) {
    if (part.type === 'identifier') names.push('default');
    else if (part.type === 'namespace_import') names.push('*');
    else if (part.type === 'named_imports') {
      for (const spec of part.namedChildren) {
        const name = spec.type === 'import_specifier' ? field(spec, 'name') : null;
        if (name) names.push(name);
      }
    }
  }
  ctx.addImport(node, unquote(node.childForFieldName('source')), names);
  return false;
};

const jsExport: Handler = (node, ctx) => {
  const source = node.childForFieldName('source');
  const clause = childOfType(node, ['export_clause']);
  if (source) {
    const names: string[] = [];
    if (hasToken(node, '*') || childOfType(node, ['namespace_export'])) names.push('*');
    for (const spec of clause?.namedChildren ?? []) {
      const name = spec.type === 'export_specifier' ? field(spec, 'name') : null;
      if (name) names.push(name);
    }
    ctx.addImport(node, unquote(source), names);
    return false;
  }
  if (ctx.frame !== ctx.root) return;
  for (const spec of clause?.namedChildren ?? []) {
    const name = spec.type === 'export_specifier' ? field(spec, 'name') : null;
    if (name) ctx.exportedNames.add(name);
  }
  const value = node.childForFieldName('value');
  if (value?.type === 'identifier') ctx.exportedNames.add(value.text);
};

function jsFinish(ctx: Context): void {
  if (ctx.exportedNames.size === 0) return;
  for (const s of ctx.symbols) if (s.topLevel && ctx.exportedNames.has(s.name)) s.exported = true;
}

/** Rendering `<Button />` calls the component; lower-case tags are HTML elements. */
const jsxElement: Handler = (node, ctx) => {
  const callee = jsCallee(node.childForFieldName('name'));
  if (callee && /^\p{Lu}/u.test(callee.name)) ctx.call(callee.name, callee.qualified);
};

const JS_HANDLERS: Record<string, Handler> = {
  function_declaration: jsFunction,
  generator_function_declaration: jsFunction,
  class_declaration: jsClass('class'),
  abstract_class_declaration: jsClass('class'),
  interface_declaration: (node, ctx) => {
    const clause = childOfType(node, ['extends_type_clause']);
    ctx.define(node, {
      name: field(node, 'name'),
      kind: 'interface',
      outer: node.parent?.type === 'export_statement' ? node.parent : null,
      extends: clause ? typeNames(clause.namedChildren) : [],
      exported: jsExported(node),
    });
    // Nothing in an interface body calls anything.
    return false;
  },
  type_alias_declaration: (node, ctx) => {
    ctx.define(node, {
      name: field(node, 'name'),
      kind: 'type',
      outer: node.parent?.type === 'export_statement' ? node.parent : null,
      exported: jsExported(node),
    });
    return false;
  },
  enum_declaration: (node, ctx) => {
    ctx.define(node, {
      name: field(node, 'name'),
      kind: 'enum',
      outer: node.parent?.type === 'export_statement' ? node.parent : null,
      exported: jsExported(node),
    });
  },
  // `export default class {}`: members scoped by an anonymous class.
  class: (node, ctx) => {
    if (node.parent?.type !== 'variable_declarator') ctx.scope({ name: null, isType: true, exported: false, kind: 'class' });
  },
  variable_declarator: jsDeclarator,
  method_definition: jsMethod,
  public_field_definition: jsField,
  field_definition: jsField,
  assignment_expression: jsAssignment,
  call_expression: jsCall,
  new_expression: jsNew,
  import_statement: jsImport,
  export_statement: jsExport,
  jsx_opening_element: jsxElement,
  jsx_self_closing_element: jsxElement,
};

const JS_SPEC: LanguageSpec = {
  handlers: new Map(Object.entries(JS_HANDLERS)),
  skip: new Set(['comment', 'string', 'regex', 'type_annotation', 'type_arguments', 'type_parameters']),
  finish: jsFinish,
};

// ---------------------------------------------------------------------------
// Python

const PY_MEMBER = new Set(['attribute']);

/** `_private` is internal by convention; `__dunder__` methods are not. */
function pyPublic(name: string): boolean {
  return !name.startsWith('_') || (name.startsWith('__') && name.endsWith('__') && name.length > 4);
}

function pyOuter(node: Node): Node | null {
  return node.parent?.type === 'decorated_definition' ? node.parent : null;
}

const PYTHON_SPEC: LanguageSpec = {
  handlers: new Map(Object.entries<Handler>({
    function_definition: (node, ctx) => {
      const name = field(node, 'name');
      ctx.define(node, {
        name,
        kind: 'function',
        outer: pyOuter(node),
        exported: !!name && pyPublic(name) && !ctx.inFunction,
      });
    },
    class_definition: (node, ctx) => {
      const name = field(node, 'name');
      const bases = node.childForFieldName('superclasses')?.namedChildren ?? [];
      ctx.define(node, {
        name,
        kind: 'class',
        outer: pyOuter(node),
        // `metaclass=M` and other keywords are not bases.
        extends: typeNames(bases.filter((b) => b.type === 'identifier' || b.type === 'attribute' || b.type === 'subscript')),
        exported: !!name && pyPublic(name) && !ctx.inFunction,
      });
    },
    call: (node, ctx) => {
      const fn = node.childForFieldName('function');
      if (fn?.type === 'identifier') ctx.call(fn.text);
      else if (fn?.type === 'attribute') {
        const attr = field(fn, 'attribute');
        const object = nameChain(fn.childForFieldName('object'), PY_MEMBER, 'object', 'attribute');
        ctx.call(attr, object && attr ? `${object}.${attr}` : null);
      }
    },
    import_statement: (node, ctx) => {
      for (const name of node.childrenForFieldName('name')) {
        const module = name.type === 'aliased_import' ? name.childForFieldName('name') : name;
        ctx.addImport(node, module?.text.replace(/\s+/g, ''), ['*']);
      }
      return false;
    },
    import_from_statement: (node, ctx) => {
      const names = node.childrenForFieldName('name').map((n) => (n.type === 'aliased_import' ? field(n, 'name') ?? '' : n.text));
      if (childOfType(node, ['wildcard_import'])) names.push('*');
      ctx.addImport(node, field(node, 'module_name')?.replace(/\s+/g, ''), names.filter(Boolean));
      return false;
    },
    future_import_statement: (node, ctx) => {
      ctx.addImport(node, '__future__', node.childrenForFieldName('name').map((n) => n.text));
      return false;
    },
  })),
  skip: new Set(['comment', 'type']),
};

// ---------------------------------------------------------------------------
// Go

const GO_MEMBER = new Set(['selector_expression']);

function goExported(name: string | null): boolean {
  return !!name && /^\p{Lu}/u.test(name);
}

/** `*Server[T]` → `Server`. */
function goReceiverType(node: Node): string | null {
  const receiver = node.childForFieldName('receiver');
  const param = receiver ? childOfType(receiver, ['parameter_declaration', 'variadic_parameter_declaration']) : null;
  const type = param?.childForFieldName('type');
  return type ? bareTypeName(type.text) : null;
}

/** Embedded fields of a struct, embedded interfaces of an interface. */
function goEmbedded(type: Node | null): string[] {
  if (!type) return [];
  const embedded: Node[] = [];
  if (type.type === 'struct_type') {
    const fields = childOfType(type, ['field_declaration_list']);
    for (const f of fields?.namedChildren ?? []) {
      if (f.type !== 'field_declaration' || f.childForFieldName('name')) continue;
      const t = f.childForFieldName('type');
      if (t) embedded.push(t);
    }
  } else if (type.type === 'interface_type') {
    for (const el of type.namedChildren) {
      if (el.type !== 'constraint_elem' && el.type !== 'type_elem') continue;
      // `int | float64` is a type set, not an embedded interface.
      if (el.namedChildCount === 1 && GO_TYPE_REFS.has(el.firstNamedChild!.type)) embedded.push(el.firstNamedChild!);
    }
  }
  return typeNames(embedded);
}

const GO_TYPE_REFS = new Set(['type_identifier', 'qualified_type', 'generic_type', 'pointer_type']);

function goTypeSpec(node: Node, ctx: Context): boolean {
  const name = field(node, 'name');
  const type = node.childForFieldName('type');
  const kind: SymbolKind =
    node.type === 'type_alias' ? 'type' : type?.type === 'struct_type' ? 'struct' : type?.type === 'interface_type' ? 'interface' : 'type';
  const decl = node.parent;
  ctx.define(node, {
    name,
    kind,
    outer: decl?.type === 'type_declaration' && decl.namedChildCount === 1 ? decl : null,
    extends: node.type === 'type_spec' ? goEmbedded(type) : [],
    exported: goExported(name),
  });
  return false;
}

const GO_SPEC: LanguageSpec = {
  handlers: new Map(Object.entries<Handler>({
    function_declaration: (node, ctx) => {
      const name = field(node, 'name');
      ctx.define(node, { name, kind: 'function', exported: goExported(name) });
    },
    method_declaration: (node, ctx) => {
      const name = field(node, 'name');
      ctx.define(node, { name, kind: 'method', owner: goReceiverType(node), exported: goExported(name) });
    },
    type_spec: goTypeSpec,
    type_alias: goTypeSpec,
    call_expression: (node, ctx) => {
      let fn = node.childForFieldName('function');
      // Generic instantiation in older grammars: `Map[K, V](…)`.
      if (fn?.type === 'index_expression') fn = fn.childForFieldName('operand');
      if (fn?.type === 'identifier') ctx.call(fn.text);
      else if (fn?.type === 'selector_expression') {
        const name = field(fn, 'field');
        const operand = nameChain(fn.childForFieldName('operand'), GO_MEMBER, 'operand', 'field');
        ctx.call(name, operand && name ? `${operand}.${name}` : null);
      }
    },
    import_declaration: (node, ctx) => {
      const specs = node.namedChildren.flatMap((c) => (c.type === 'import_spec_list' ? c.namedChildren : [c]));
      for (const spec of specs) {
        if (spec.type !== 'import_spec') continue;
        const path = unquote(spec.childForFieldName('path'));
        if (!path) continue;
        const alias = spec.childForFieldName('name');
        const name = !alias ? goPackageName(path) : alias.type === 'dot' ? '*' : alias.text;
        ctx.addImport(spec, path, [name]);
      }
      return false;
    },
  })),
  skip: new Set(['comment', 'interpreted_string_literal', 'raw_string_literal']),
};

/** The package name an import path binds by default: its last element, skipping a `/v2` major version or a gopkg.in `.v3`. */
export function goPackageName(importPath: string): string {
  const parts = importPath.split('/').filter(Boolean);
  let last = parts[parts.length - 1] ?? importPath;
  if (/^v\d+$/.test(last) && parts.length > 1) last = parts[parts.length - 2]!;
  return last.replace(/\.v\d+$/, '');
}

// ---------------------------------------------------------------------------
// Java

const JAVA_MEMBER = new Set(['field_access']);

function javaModifiers(node: Node): Set<string> {
  const mods = childOfType(node, ['modifiers']);
  const out = new Set<string>();
  if (mods) for (let i = 0; i < mods.childCount; i++) out.add(mods.child(i)!.type);
  return out;
}

/** Public, or a member of an interface (public without saying so), inside a scope that is itself visible. */
function javaExported(node: Node, ctx: Context): boolean {
  const mods = javaModifiers(node);
  if (mods.has('private')) return false;
  const inInterface = ctx.frame.kind === 'interface';
  return (mods.has('public') || inInterface) && !ctx.inFunction;
}

function javaTypes(node: Node | null): string[] {
  if (!node) return [];
  const list = node.type === 'type_list' ? node : childOfType(node, ['type_list']);
  return typeNames(list ? list.namedChildren : node.namedChildren);
}

function javaType(kind: SymbolKind): Handler {
  return (node, ctx) => {
    const isInterface = node.type === 'interface_declaration' || node.type === 'annotation_type_declaration';
    ctx.define(node, {
      name: field(node, 'name'),
      kind,
      extends: isInterface ? javaTypes(childOfType(node, ['extends_interfaces'])) : javaTypes(node.childForFieldName('superclass')),
      implements: isInterface ? [] : javaTypes(node.childForFieldName('interfaces')),
      exported: javaExported(node, ctx),
    });
  };
}

const javaMethod: Handler = (node, ctx) => {
  // A bodiless declaration (interface, abstract, native) calls nothing and is not a definition.
  if (!node.childForFieldName('body')) return false;
  ctx.define(node, { name: field(node, 'name'), kind: 'function', exported: javaExported(node, ctx) });
};

/** `Thing`, `Map<K, V>`, `a.b.Thing` → `Thing`. */
function javaCreatedType(type: Node | null): string | null {
  return type ? bareTypeName(type.text) : null;
}

const JAVA_SPEC: LanguageSpec = {
  handlers: new Map(Object.entries<Handler>({
    class_declaration: javaType('class'),
    record_declaration: javaType('class'),
    interface_declaration: javaType('interface'),
    annotation_type_declaration: javaType('interface'),
    enum_declaration: javaType('enum'),
    method_declaration: javaMethod,
    constructor_declaration: javaMethod,
    compact_constructor_declaration: javaMethod,
    method_invocation: (node, ctx) => {
      const name = field(node, 'name');
      const object = nameChain(node.childForFieldName('object'), JAVA_MEMBER, 'object', 'field');
      ctx.call(name, object && name ? `${object}.${name}` : null);
    },
    object_creation_expression: (node, ctx) => {
      ctx.call(javaCreatedType(node.childForFieldName('type')));
    },
    import_declaration: (node, ctx) => {
      const path = childOfType(node, ['scoped_identifier', 'identifier'])?.text.replace(/\s+/g, '');
      if (!path) return false;
      const dot = path.lastIndexOf('.');
      if (childOfType(node, ['asterisk'])) ctx.addImport(node, path, ['*']);
      // `import static a.b.C.member`: the dependency is on the class.
      else if (hasToken(node, 'static') && dot > 0) ctx.addImport(node, path.slice(0, dot), [path.slice(dot + 1)]);
      else ctx.addImport(node, path, [path.slice(dot + 1)]);
      return false;
    },
  })),
  skip: new Set(['line_comment', 'block_comment', 'string_literal', 'package_declaration']),
};

// ---------------------------------------------------------------------------
// Rust

const RUST_MEMBER = new Set(['field_expression', 'scoped_identifier']);

function rustPub(node: Node): boolean {
  return childOfType(node, ['visibility_modifier'])?.text === 'pub';
}

function rustItem(kind: SymbolKind): Handler {
  return (node, ctx) => {
    const name = field(node, 'name');
    const bounds = kind === 'trait' ? node.childForFieldName('bounds') : null;
    ctx.define(node, {
      name,
      kind,
      extends: bounds ? typeNames(bounds.namedChildren.filter((b) => b.type !== 'lifetime')) : [],
      exported: rustPub(node) && !ctx.inFunction,
    });
    if (kind === 'type') return false;
  };
}

/** A callee path: `a::b::c` → `c` with `a.b.c`; `Vec::<u8>::new` → `new` with `Vec.new`. */
function rustPath(node: Node): { name: string; qualified: string | null } | null {
  const name = field(node, 'name');
  if (!name) return null;
  const parts: string[] = [name];
  let path = node.childForFieldName('path');
  for (let i = 0; path && i < 6; i++) {
    if (path.type === 'scoped_identifier') {
      parts.unshift(field(path, 'name') ?? '');
      path = path.childForFieldName('path');
    } else {
      parts.unshift(path.type === 'generic_type' ? (field(path, 'type') ?? '') : path.text);
      path = null;
    }
  }
  return { name, qualified: path || parts.some((p) => !p) ? null : parts.join('.') };
}

function rustCall(node: Node, ctx: Context): void {
  let fn = node.childForFieldName('function');
  if (fn?.type === 'generic_function') fn = fn.childForFieldName('function');
  if (!fn) return;
  if (fn.type === 'identifier') ctx.call(fn.text);
  else if (fn.type === 'scoped_identifier') {
    const callee = rustPath(fn);
    if (callee) ctx.call(callee.name, callee.qualified);
  } else if (fn.type === 'field_expression') {
    const name = field(fn, 'field');
    const value = nameChain(fn.childForFieldName('value'), RUST_MEMBER, 'value', 'field');
    ctx.call(name, value && name ? `${value}.${name}` : null);
  }
}

interface UseLeaf {
  path: string[];
  name: string;
}

/** Flattens a use tree (`a::{b, c::D as E, self}`) into its imported paths. */
function rustUseLeaves(node: Node | null, prefix: string[], out: UseLeaf[], depth = 0): void {
  if (!node || depth > 8) return;
  switch (node.type) {
    case 'identifier':
    case 'crate':
    case 'super':
    case 'self':
    case 'metavariable':
    case 'scoped_identifier': {
      const parts = node.text.replace(/\s+/g, '').split('::').filter(Boolean);
      // `a::{self}` imports `a` itself.
      const path = parts[parts.length - 1] === 'self' && prefix.length + parts.length > 1 ? [...prefix, ...parts.slice(0, -1)] : [...prefix, ...parts];
      if (path.length > 0) out.push({ path, name: path[path.length - 1]! });
      return;
    }
    case 'use_as_clause':
      rustUseLeaves(node.childForFieldName('path'), prefix, out, depth + 1);
      return;
    case 'use_wildcard': {
      const inner = node.firstNamedChild;
      const parts = inner ? inner.text.replace(/\s+/g, '').split('::').filter(Boolean) : [];
      out.push({ path: [...prefix, ...parts], name: '*' });
      return;
    }
    case 'scoped_use_list': {
      const path = node.childForFieldName('path');
      const parts = path ? path.text.replace(/\s+/g, '').split('::').filter(Boolean) : [];
      rustUseLeaves(node.childForFieldName('list'), [...prefix, ...parts], out, depth + 1);
      return;
    }
    case 'use_list':
      for (const child of node.namedChildren) rustUseLeaves(child, prefix, out, depth + 1);
      return;
  }
}

const RUST_SPEC: LanguageSpec = {
  handlers: new Map(Object.entries<Handler>({
    function_item: (node, ctx) => {
      // Items of a trait, and of a trait's impl, are as visible as the trait.
      const inherits = ctx.frame.kind === 'trait' || (ctx.frame.kind === 'impl' && ctx.frame.exported);
      ctx.define(node, {
        name: field(node, 'name'),
        kind: 'function',
        exported: (rustPub(node) || inherits) && !ctx.inFunction,
      });
    },
    function_signature_item: () => false,
    struct_item: rustItem('struct'),
    union_item: rustItem('struct'),
    enum_item: rustItem('enum'),
    trait_item: rustItem('trait'),
    type_item: rustItem('type'),
    impl_item: (node, ctx) => {
      const type = node.childForFieldName('type');
      const typeName = type ? bareTypeName(type.text) : null;
      const trait = node.childForFieldName('trait');
      const traitName = trait ? bareTypeName(trait.text) : null;
      if (typeName && traitName) {
        const traits = ctx.traitImpls.get(typeName) ?? [];
        if (!traits.includes(traitName)) traits.push(traitName);
        ctx.traitImpls.set(typeName, traits);
      }
      // Methods of a trait impl are as visible as the trait; inherent ones need `pub`.
      ctx.scope({ name: typeName, isType: true, exported: !!traitName, kind: 'impl' });
    },
    call_expression: rustCall,
    use_declaration: (node, ctx) => {
      const leaves: UseLeaf[] = [];
      rustUseLeaves(node.childForFieldName('argument'), [], leaves);
      for (const leaf of leaves) {
        const spec = leaf.path.join('::');
        if (spec) ctx.addImport(node, spec, [leaf.name]);
      }
      return false;
    },
    extern_crate_declaration: (node, ctx) => {
      ctx.addImport(node, field(node, 'name'), ['*']);
      return false;
    },
  })),
  skip: new Set(['line_comment', 'block_comment', 'string_literal', 'raw_string_literal', 'attribute_item']),
  finish: (ctx) => {
    // `impl Trait for Type` sits apart from `struct Type`: join them when both are in this file.
    for (const s of ctx.symbols) {
      const traits = s.topLevel && s.kind !== 'function' && s.kind !== 'method' ? ctx.traitImpls.get(s.name) : undefined;
      if (traits) for (const t of traits) if (!s.implements.includes(t)) s.implements.push(t);
    }
  },
};

// ---------------------------------------------------------------------------
// C#

const CSHARP_MEMBER = new Set(['member_access_expression']);

function csModifiers(node: Node): Set<string> {
  const out = new Set<string>();
  for (const child of node.namedChildren) if (child.type === 'modifier') out.add(child.text);
  return out;
}

function csExported(node: Node, ctx: Context): boolean {
  const mods = csModifiers(node);
  if (mods.has('private')) return false;
  return (mods.has('public') || ctx.frame.kind === 'interface') && !ctx.inFunction;
}

/**
 * `: Base, IThing`: the syntax does not say which is the class. By .NET
 * convention interfaces are named `IXxx`, so a class's first base not named
 * so is its superclass and the rest are interfaces; an interface's bases are
 * all extended; a struct's all implemented.
 */
function csBases(node: Node, kind: SymbolKind): { extends: string[]; implements: string[] } {
  const list = node.childForFieldName('bases') ?? childOfType(node, ['base_list']);
  const names = list ? typeNames(list.namedChildren.filter((c) => c.type !== 'argument_list')) : [];
  if (kind === 'interface') return { extends: names, implements: [] };
  if (kind !== 'class' || names.length === 0) return { extends: [], implements: names };
  const first = names[0]!;
  return /^I\p{Lu}/u.test(first) ? { extends: [], implements: names } : { extends: [first], implements: names.slice(1) };
}

function csType(kind: SymbolKind): Handler {
  return (node, ctx) => {
    ctx.define(node, { name: field(node, 'name'), kind, ...csBases(node, kind), exported: csExported(node, ctx) });
  };
}

const csMethod: Handler = (node, ctx) => {
  if (!node.childForFieldName('body') && !childOfType(node, ['arrow_expression_clause', 'block'])) return false;
  ctx.define(node, { name: field(node, 'name'), kind: 'function', exported: csExported(node, ctx) });
};

/** `Gen<int>` → `Gen`; `A.B.C` → `C`. */
function csName(node: Node | null): string | null {
  if (!node) return null;
  if (node.type === 'identifier') return node.text;
  if (node.type === 'generic_name') return childOfType(node, ['identifier'])?.text ?? null;
  if (node.type === 'qualified_name' || node.type === 'alias_qualified_name') return bareTypeName(node.text);
  return null;
}

const CSHARP_SPEC: LanguageSpec = {
  handlers: new Map(Object.entries<Handler>({
    class_declaration: csType('class'),
    record_declaration: csType('class'),
    struct_declaration: csType('struct'),
    record_struct_declaration: csType('struct'),
    interface_declaration: csType('interface'),
    enum_declaration: csType('enum'),
    method_declaration: csMethod,
    constructor_declaration: csMethod,
    local_function_statement: csMethod,
    invocation_expression: (node, ctx) => {
      const fn = node.childForFieldName('function');
      if (fn?.type === 'member_access_expression') {
        const name = csName(fn.childForFieldName('name'));
        const object = nameChain(fn.childForFieldName('expression'), CSHARP_MEMBER, 'expression', 'name');
        ctx.call(name, object && name ? `${object}.${name}` : null);
      } else {
        ctx.call(csName(fn));
      }
    },
    object_creation_expression: (node, ctx) => {
      ctx.call(csName(node.childForFieldName('type')));
    },
    using_directive: (node, ctx) => {
      const target = childOfType(node, ['qualified_name', 'identifier', 'alias_qualified_name']);
      const alias = childOfType(node, ['name_equals']);
      ctx.addImport(node, target?.text.replace(/\s+/g, ''), [alias ? (alias.firstNamedChild?.text ?? '*') : '*']);
      return false;
    },
  })),
  skip: new Set(['comment', 'string_literal', 'verbatim_string_literal', 'attribute_list']),
};

const SPECS: Record<GraphLanguage, LanguageSpec> = {
  typescript: JS_SPEC,
  tsx: JS_SPEC,
  javascript: JS_SPEC,
  python: PYTHON_SPEC,
  go: GO_SPEC,
  java: JAVA_SPEC,
  rust: RUST_SPEC,
  csharp: CSHARP_SPEC,
};
