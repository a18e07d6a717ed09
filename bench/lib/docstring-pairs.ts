/**
 * Docstring → code pairs for judging retrieval quality, in the style of
 * CodeSearchNet: the first sentence of a function's doc comment is the query,
 * the function's code without that comment is the one right answer. The code
 * comes from pinned third-party packages (nobody in this project wrote it),
 * installed under a folder of the caller's choosing and reused across runs.
 *
 * Python functions are read by `docstring_pairs.py` (the `ast` module);
 * JavaScript and TypeScript ones here, with the TypeScript compiler's parser.
 * Both go through the same query clean-up, filters and de-duplication.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { spread } from './common.ts';

export interface DocPair {
  id: string;
  language: 'python' | 'javascript' | 'typescript';
  query: string;
  code: string;
  /** `package/relative/file.py:line`, the line the function starts on. */
  source: string;
  extension: '.py' | '.js' | '.ts';
}

interface NpmPackage {
  spec: string;
  /** Folders inside the package to read; by default `src/` when the package ships one, else the whole package. */
  roots?: string[];
  /** Whole-library builds inside those folders: their copies would crowd out the per-function files. */
  skip?: string[];
}

/**
 * Chosen for long-lived, well-documented code and checked to install
 * together. The TypeScript ones ship their sources (`src/*.ts`) beside the
 * build. mathjs ships the same code as CommonJS and ES modules: only the
 * latter is read, so transpiled copies don't win the de-duplication.
 */
const NPM_PACKAGES: NpmPackage[] = [
  // TypeScript
  { spec: 'rxjs@7.8.2' },
  { spec: 'ix@7.0.0' },
  { spec: 'effect@3.12.0' },
  { spec: 'mongodb@6.12.0' },
  { spec: '@grpc/grpc-js@1.12.5' },
  { spec: '@reduxjs/toolkit@2.5.0' },
  { spec: 'mobx@6.13.5' },
  // JavaScript
  { spec: 'lodash@4.17.21', skip: ['core.js', 'lodash.js'] },
  { spec: 'date-fns@4.1.0', skip: ['cdn.js'] },
  { spec: 'async@3.2.6' },
  { spec: 'ramda@0.30.1' },
  { spec: 'luxon@3.5.0' },
  { spec: 'mathjs@14.0.1', roots: ['lib/esm'] },
  { spec: 'ol@10.3.1' },
  { spec: 'protobufjs@7.4.0' },
  { spec: 'yjs@13.6.21' },
];

const PYPI_PACKAGES = [
  'click==8.1.8',
  'jinja2==3.1.6',
  'werkzeug==3.1.3',
  'more-itertools==10.5.0',
  'attrs==24.3.0',
  'boltons==24.1.0',
  'rich==13.9.4',
  'markdown==3.7',
  'pyparsing==3.2.0',
  'networkx==3.4.2',
];

export const DOCSTRING_PACKAGES: { npm: string[]; pypi: string[] } = {
  npm: NPM_PACKAGES.map((p) => p.spec),
  pypi: PYPI_PACKAGES,
};

const DEFAULT_PER_LANGUAGE = 1500;
const MIN_QUERY_WORDS = 4;
const MAX_QUERY_WORDS = 40;
const MIN_CODE_LINES = 3;
const MAX_CODE_CHARS = 4000;
/** Larger files are bundles or generated tables (or, in effect, re-exports), not source worth the parse. */
const MAX_SOURCE_FILE_BYTES = 512 * 1024;
const PYTHON_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'docstring_pairs.py');

/** Doc comments that say nothing a person would search for. */
const BOILERPLATE: RegExp[] = [
  /^constructor\b/i,
  /^(creates?|constructs?|initiali[sz]es?) (an? )?new (\w+ )?instance\b/i,
  /^(todo|fixme|xxx|hack)\b/i,
  /^@/,
  /^(this (function|method) is )?deprecated\b/i,
  /^internal\b/i,
  /^private\b/i,
  /^see\s/i,
  /^(an? )?alias\b/i,
  /^(overrides?|overridden|inherit(ed|s)?)\b/i,
  /^(implementation|override) of\b/i,
  /^(helper|utility) (function|method)( for)?\.?$/i,
];

/** Folders that hold builds, tests, generated variants or data rather than the package's source. */
const SKIP_DIRS = new Set([
  'node_modules', 'dist', 'build', 'umd', 'bundles', 'esm5', 'cjs', 'min',
  'test', 'tests', '__tests__', 'spec', 'specs', 'testing', '__mocks__', 'fixtures',
  'examples', 'example', 'docs', 'benchmark', 'benchmarks',
  'fp', // lodash/fp, date-fns/fp: generated curried wrappers around the same functions
  'locale', // date-fns locales: the same few functions over again for each language
]);

function compareCodePoints(a: string, b: string): number {
  // Not localeCompare: the order must not depend on the machine's locale.
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareSources(a: string, b: string): number {
  const split = (s: string) => {
    const i = s.lastIndexOf(':');
    return [s.slice(0, i), Number(s.slice(i + 1))] as const;
  };
  const [fa, la] = split(a);
  const [fb, lb] = split(b);
  return compareCodePoints(fa, fb) || la - lb;
}

function run(command: string, args: string[], log: (line: string) => void): void {
  log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 2 ** 20 });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} exited with ${result.status}: ${(result.stderr || result.stdout).trim().split('\n').slice(-20).join('\n')}`);
  }
}

/** Runs `install` unless the marker says this exact list is already installed in `dir`. */
function installOnce(dir: string, specs: string[], install: () => void, log: (line: string) => void): void {
  const marker = path.join(dir, '.docstring-pairs-installed.json');
  const wanted = JSON.stringify(specs);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === wanted) {
    log(`reusing ${dir}`);
    return;
  }
  mkdirSync(dir, { recursive: true });
  install();
  writeFileSync(marker, wanted);
}

function installPackages(dir: string, log: (line: string) => void): { nodeModules: string; site: string } {
  const npmDir = path.join(dir, 'npm');
  const site = path.join(dir, 'pypi');
  installOnce(npmDir, DOCSTRING_PACKAGES.npm, () =>
    run('npm', ['install', '--prefix', npmDir, ...DOCSTRING_PACKAGES.npm, '--ignore-scripts', '--no-audit', '--no-fund', '--no-save'], log), log);
  // --upgrade lets a changed list replace what an earlier one put in the target folder.
  installOnce(site, DOCSTRING_PACKAGES.pypi, () =>
    run('python3', ['-m', 'pip', 'install', '--no-deps', '--no-compile', '--upgrade', '--disable-pip-version-check', '--target', site, ...DOCSTRING_PACKAGES.pypi], log), log);
  return { nodeModules: path.join(npmDir, 'node_modules'), site };
}

/* ---------------------------------------------------------------- queries */

/** The first paragraph's first sentence: up to a period followed by whitespace or the end. */
function firstSentence(text: string): string {
  const paragraph = text.trim().split(/\n\s*\n/, 1)[0] ?? '';
  const end = /\.(\s|$)/.exec(paragraph);
  return (end ? paragraph.slice(0, end.index + 1) : paragraph).replace(/\s+/g, ' ').trim();
}

/** `{@link …}` body → the words a reader sees: its label, else the target without a JSDoc module path. */
function linkText(inner: string): string {
  // The compiler prints `{@link module:a/b~C}` with a space after `module`.
  const body = inner.trim().replace(/^module\s*:/, 'module:');
  const bar = body.indexOf('|');
  const space = body.search(/\s/);
  const split = bar >= 0 ? bar : space;
  const label = split >= 0 ? body.slice(split + 1).trim() : '';
  const target = split >= 0 ? body.slice(0, split) : body;
  return label || target.replace(/^module:[^~]*~/, '').replace(/^module:(?:.*\/)?/, '');
}

/** Markup out of a sentence (JSDoc links, HTML, Markdown, reST), so queries read as plain text. */
function plainText(sentence: string): string {
  return sentence
    .replace(/\[([^\]]+)\]\{@link[^}]*\}/g, '$1') // async's `[every]{@link module:Collections.every}`
    .replace(/\{@(?:link|linkcode|linkplain)\s+([^}]*)\}/g, (_, inner: string) => linkText(inner))
    .replace(/<\/?[A-Za-z][^>]*>/g, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    // :class:`~pkg.Name` shows as Name, :func:`pkg.name` as pkg.name
    .replace(/:[a-z:]+:`~([^`]+)`/g, (_, target: string) => target.split('.').pop()!)
    .replace(/:[a-z:]+:`([^`]+)`/g, '$1')
    .replace(/`+/g, '')
    .replace(/\*\*?([^*\s][^*]*)\*\*?/g, '$1')
    .replace(/\s+/g, ' ')
    .replace(/[\s*:]+$/, '') // `/** text **/`, or a sentence leading into a list or an example
    .trim();
}

function acceptableQuery(query: string): boolean {
  const words = query.split(' ').length;
  return (
    words >= MIN_QUERY_WORDS &&
    words <= MAX_QUERY_WORDS &&
    !BOILERPLATE.some((re) => re.test(query)) &&
    !/https?:\/\//.test(query) &&
    // boltons-style `add(item) -> add item to the set` spells the signature, not the purpose
    !/^[\w.]+\(.*?\)\s*->/.test(query)
  );
}

function acceptableCode(code: string): boolean {
  return code.length <= MAX_CODE_CHARS && code.split('\n').filter((l) => l.trim() !== '').length >= MIN_CODE_LINES;
}

/* ----------------------------------------------------------------- Python */

interface RawPair {
  query: string;
  code: string;
  source: string;
}

/** PEP 503 names, with `_` as dist-info folders spell them. */
const distName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '_');

/**
 * What a distribution put in the target folder, from its dist-info RECORD:
 * the top-level package folders and single-module files (attrs installs
 * both `attr/` and `attrs/`; the import name is not always the dist name).
 */
function pythonTopLevels(site: string, spec: string): string[] {
  const [name, version] = spec.split('==') as [string, string];
  const distInfo = readdirSync(site).find((d) => distName(d) === distName(`${name}-${version}.dist-info`));
  if (!distInfo) throw new Error(`${spec} is not installed in ${site}`);
  const tops = new Set<string>();
  for (const line of readFileSync(path.join(site, distInfo, 'RECORD'), 'utf8').split('\n')) {
    const file = line.split(',', 1)[0]!;
    const top = file.split('/', 1)[0]!;
    if (!file || top === '..' || top.endsWith('.dist-info') || top === '__pycache__' || top === 'bin') continue;
    if (file.includes('/') || file.endsWith('.py')) tops.add(top);
  }
  return [...tops].sort(compareCodePoints);
}

function pythonPairs(site: string): RawPair[] {
  const dirs = DOCSTRING_PACKAGES.pypi.flatMap((spec) => pythonTopLevels(site, spec)).map((top) => path.join(site, top));
  const result = spawnSync('python3', [PYTHON_SCRIPT, site, ...dirs], { encoding: 'utf8', maxBuffer: 512 * 2 ** 20 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`docstring_pairs.py exited with ${result.status}: ${result.stderr.trim()}`);
  return result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as RawPair);
}

/* ------------------------------------------------- JavaScript/TypeScript */

function isSourceFile(name: string): boolean {
  if (!/\.(m?js|ts)$/.test(name) || name.endsWith('.d.ts') || name.endsWith('.d.mts')) return false;
  return !/\.min\.js$|[.-](test|spec|bundle)\.|\.umd\./.test(name);
}

function walkSourceFiles(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => compareCodePoints(a.name, b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.') && !SKIP_DIRS.has(entry.name)) walkSourceFiles(full, out);
    } else if (entry.isFile() && isSourceFile(entry.name) && statSync(full).size <= MAX_SOURCE_FILE_BYTES) {
      out.push(full);
    }
  }
}

function packageName(spec: string): string {
  return spec.slice(0, spec.lastIndexOf('@'));
}

function packageSourceFiles(nodeModules: string, pkg: NpmPackage): string[] {
  const dir = path.join(nodeModules, packageName(pkg.spec));
  if (!existsSync(dir)) throw new Error(`${pkg.spec} is not installed in ${nodeModules}`);
  const roots = pkg.roots ?? (existsSync(path.join(dir, 'src')) ? ['src'] : ['.']);
  const skip = new Set((pkg.skip ?? []).map((rel) => path.join(dir, rel)));
  const files: string[] = [];
  for (const root of roots) walkSourceFiles(path.join(dir, root), files);
  return files.filter((f) => !skip.has(f));
}

/** Text of a node without the comments before it, re-indented as if it started at column 0. */
function nodeCode(node: ts.Node, sf: ts.SourceFile): string {
  const start = node.getStart(sf); // leading trivia, doc comment included, excluded
  const column = start - sf.getLineStarts()[sf.getLineAndCharacterOfPosition(start).line]!;
  const lines = (' '.repeat(column) + sf.text.slice(start, node.getEnd())).split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent).trimEnd()).join('\n');
}

/**
 * A function expression or arrow, possibly wrapped in calls: ramda's
 * `_curry2(function add(a, b) {…})` and mathjs's `factory(name, deps, () => {…})`
 * define most of those libraries' functions.
 */
function isFunctionValue(e: ts.Expression | undefined, depth = 0): boolean {
  while (e && (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e))) e = e.expression;
  if (!e) return false;
  if (ts.isFunctionExpression(e) || ts.isArrowFunction(e)) return true;
  return ts.isCallExpression(e) && depth < 3 && e.arguments.some((a) => isFunctionValue(a, depth + 1));
}

/**
 * The node whose doc comment describes a function, when `node` is one:
 * declarations and methods with a body (TypeScript overload signatures have
 * none), `const f = function/arrow`, `a.b = function` and `key: function`.
 */
function documentedFunction(node: ts.Node): ts.Node | undefined {
  if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) {
    return node.body ? node : undefined;
  }
  if (ts.isVariableStatement(node)) {
    const decls = node.declarationList.declarations;
    return decls.length === 1 && isFunctionValue(decls[0]!.initializer) ? node : undefined;
  }
  if (ts.isExpressionStatement(node)) {
    const e = node.expression;
    return ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.EqualsToken && isFunctionValue(e.right) ? node : undefined;
  }
  if (ts.isPropertyAssignment(node) || ts.isPropertyDeclaration(node)) return isFunctionValue(node.initializer) ? node : undefined;
  return undefined;
}

/**
 * The description of the doc comment nearest the node, if it has one. date-fns
 * leaves the comment's text empty and writes it under `@description`.
 */
function jsDocDescription(node: ts.Node): string | undefined {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  const nearest = docs[docs.length - 1];
  if (!nearest) return undefined;
  const text = (comment: ts.JSDoc['comment']) => (comment === undefined ? '' : ts.getTextOfJSDocComment(comment)?.trim() ?? '');
  const tagged = (name: string) => text(nearest.tags?.find((t) => t.tagName.text === name)?.comment);
  return text(nearest.comment) || tagged('description') || tagged('summary') || undefined;
}

function scriptPairs(nodeModules: string): RawPair[] {
  const pairs: RawPair[] = [];
  for (const pkg of NPM_PACKAGES) {
    for (const file of packageSourceFiles(nodeModules, pkg)) {
      const rel = path.relative(nodeModules, file).split(path.sep).join('/');
      const kind = file.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS;
      const sf = ts.createSourceFile(rel, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, kind);
      const visit = (node: ts.Node): void => {
        const fn = documentedFunction(node);
        const description = fn && jsDocDescription(fn);
        if (fn && description) {
          const line = sf.getLineAndCharacterOfPosition(fn.getStart(sf)).line + 1;
          pairs.push({ query: firstSentence(description), code: nodeCode(fn, sf), source: `${rel}:${line}` });
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
  }
  return pairs;
}

/* ---------------------------------------------------------------- the set */

function languageOf(source: string): Pick<DocPair, 'language' | 'extension'> {
  const file = source.slice(0, source.lastIndexOf(':'));
  if (file.endsWith('.py')) return { language: 'python', extension: '.py' };
  if (file.endsWith('.ts')) return { language: 'typescript', extension: '.ts' };
  return { language: 'javascript', extension: '.js' };
}

/**
 * Cleans and filters raw pairs, then de-duplicates in source order, so the
 * first of two identical queries or bodies (by path, then line) is kept.
 */
function finish(raw: RawPair[]): DocPair[] {
  const sorted = [...raw].sort((a, b) => compareSources(a.source, b.source) || compareCodePoints(a.code, b.code));
  const seenQueries = new Set<string>();
  const seenCode = new Set<string>();
  const out: DocPair[] = [];
  for (const r of sorted) {
    const query = plainText(r.query);
    const code = r.code.replace(/\s+$/, '');
    if (!acceptableQuery(query) || !acceptableCode(code)) continue;
    // A query found in the code (an error text, the same doc on an overload
    // or a nested function) is answered by grep, not by search; comment
    // markers and markup are dropped so such copies are found too.
    if (plainText(code.replace(/^[ \t]*(\*+|\/\/+|#+)/gm, ' ')).includes(query)) continue;
    const normalisedCode = code.replace(/\s+/g, ' ');
    if (seenQueries.has(query) || seenCode.has(normalisedCode)) continue;
    seenQueries.add(query);
    seenCode.add(normalisedCode);
    const id = createHash('sha1').update(`${r.source}\n${code}`).digest('hex').slice(0, 12);
    out.push({ id, ...languageOf(r.source), query, code, source: r.source });
  }
  return out;
}

/** `rxjs/src/index.ts:1` → rxjs, `@scope/name/x.js:1` → @scope/name; for Python the import package. */
function packageOf(source: string): string {
  const parts = source.split('/');
  return source.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/**
 * At most `n` pairs, shared out evenly between packages (one with fewer than
 * its share gives the rest to the others), each package's share taken at even
 * steps through its sorted pairs, so no big package crowds out the small ones
 * and no share is just a package's first files.
 */
function fairSpread(pairs: DocPair[], n: number): DocPair[] {
  const groups = new Map<string, DocPair[]>();
  for (const p of pairs) {
    const key = packageOf(p.source);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(p);
  }
  const bySize = [...groups.entries()].sort(([ka, a], [kb, b]) => a.length - b.length || compareCodePoints(ka, kb));
  let left = n;
  return bySize.flatMap(([, group], i) => {
    const take = Math.min(group.length, Math.floor(left / (bySize.length - i)));
    left -= take;
    return spread(group, take);
  });
}

/** Installs the packages (once; reuses an existing install) under `dir` and returns the pairs, deterministic order and content for the same packages. */
export async function docstringPairs(options: { dir: string; perLanguage?: number; log?: (line: string) => void }): Promise<DocPair[]> {
  const log = options.log ?? (() => {});
  const perLanguage = options.perLanguage ?? DEFAULT_PER_LANGUAGE;
  const { nodeModules, site } = installPackages(path.resolve(options.dir), log);

  const python = pythonPairs(site);
  const scripts = scriptPairs(nodeModules);
  log(`raw pairs: ${python.length} Python, ${scripts.length} JavaScript/TypeScript`);
  const all = finish([...python, ...scripts]);

  const byLanguage = new Map<DocPair['language'], DocPair[]>();
  for (const p of all) {
    if (!byLanguage.has(p.language)) byLanguage.set(p.language, []);
    byLanguage.get(p.language)!.push(p);
  }
  const chosen = [...byLanguage.entries()]
    .sort(([a], [b]) => compareCodePoints(a, b))
    .flatMap(([language, pairs]) => {
      const picked = fairSpread(pairs, perLanguage);
      log(`${language}: ${pairs.length} pairs after filters, ${picked.length} kept`);
      return picked;
    });
  return chosen.sort((a, b) => compareSources(a.source, b.source));
}
