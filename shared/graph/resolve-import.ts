import path from 'node:path';
import type { Language } from '../indexing/language.ts';

/**
 * Resolves an import specifier, as written in a file, to a file of the same
 * repository or to the external module it names. Pure: it knows the tree
 * from the list of paths and the project files (tsconfig, go.mod) handed to
 * it, and reads nothing itself.
 *
 * Best effort by design: no node_modules, no package.json `exports`, no
 * build tags. Whatever does not resolve to a file of the tree is a module.
 */

export type ImportTarget = { kind: 'file'; path: string } | { kind: 'module'; name: string };

export interface ImportResolver {
  /** `fromPath` and the result are repo-relative POSIX paths. */
  resolve(fromPath: string, language: Language, specifier: string): ImportTarget;
}

export interface ProjectFile {
  /** Repo-relative directory of the file, '' for the root. */
  dir: string;
  content: string;
  /** The file's name (`tsconfig.json`, `jsconfig.json`, `go.mod`); lets `extends` chains between tsconfigs resolve. */
  name?: string;
}

export interface ImportResolverOptions {
  /** Every repo-relative POSIX path of the tree. */
  files: Iterable<string>;
  /** tsconfig.json / jsconfig.json files: `compilerOptions.baseUrl` and `paths` are honoured, following relative `extends`. */
  tsconfigs?: ProjectFile[];
  /** go.mod files: their module path (and local `replace` targets) map import paths to directories. */
  goModules?: ProjectFile[];
}

const posix = path.posix;

/** Extensions TypeScript tries for an extension-less specifier, in its order (declarations after sources). */
const TS_EXTENSIONS = ['.ts', '.tsx', '.d.ts', '.js', '.jsx', '.mjs', '.cjs', '.mts', '.cts', '.d.mts', '.d.cts'];

/** `./x.js` in TypeScript source means `./x.ts` (or .tsx, or a declaration) since TS 4.7's node16 resolution. */
const JS_TO_TS: Record<string, string[]> = {
  '.js': ['.ts', '.tsx', '.d.ts'],
  '.jsx': ['.tsx'],
  '.mjs': ['.mts', '.d.mts'],
  '.cjs': ['.cts', '.d.cts'],
};

const JS_FAMILY = new Set<Language>(['typescript', 'tsx', 'javascript']);

export function createImportResolver(opts: ImportResolverOptions): ImportResolver {
  const files = new Set<string>();
  /** Go package directories → their non-test .go files. */
  const goDirs = new Map<string, string[]>();
  /** `C.java` → every path of a file so named. */
  const javaByName = new Map<string, string[]>();
  /** Last segment of a directory holding .java files → those directories. */
  const javaDirsByLast = new Map<string, string[]>();
  const javaDirFiles = new Map<string, string[]>();
  let hasSrcRoot = false;

  for (const raw of opts.files) {
    const file = raw.replace(/^\.\//, '');
    files.add(file);
    if (file.startsWith('src/')) hasSrcRoot = true;
    const slash = file.lastIndexOf('/');
    const dir = slash < 0 ? '' : file.slice(0, slash);
    const base = file.slice(slash + 1);
    if (base.endsWith('.go') && !base.endsWith('_test.go')) push(goDirs, dir, file);
    else if (base.endsWith('.java')) {
      push(javaByName, base, file);
      if (!javaDirFiles.has(dir)) push(javaDirsByLast, dir.slice(dir.lastIndexOf('/') + 1), dir);
      push(javaDirFiles, dir, file);
    }
  }
  for (const list of goDirs.values()) list.sort();
  for (const list of javaDirFiles.values()) list.sort();

  const tsconfigs = loadTsconfigs(opts.tsconfigs ?? []);
  const goModules = loadGoModules(opts.goModules ?? []);

  // --- TypeScript / JavaScript ---------------------------------------------

  /** A path without or with an extension, to the file TypeScript would pick. */
  function resolveTsPath(base: string, fromTs: boolean): string | null {
    const ext = posix.extname(base);
    const mapped = (JS_TO_TS[ext] ?? []).map((e) => base.slice(0, -ext.length) + e);
    // TypeScript prefers its own source over a compiled .js that sits beside it.
    const candidates = fromTs ? [...mapped, base] : [base, ...mapped];
    for (const c of candidates) if (files.has(c)) return c;
    for (const e of TS_EXTENSIONS) if (files.has(base + e)) return base + e;
    for (const e of TS_EXTENSIONS) if (files.has(`${base}/index${e}`)) return `${base}/index${e}`;
    return null;
  }

  function resolveJs(from: string, language: Language, specifier: string): ImportTarget {
    const fromTs = language !== 'javascript';
    if (isRelative(specifier)) {
      const base = joinInside(dirOf(from), specifier);
      if (base === null) return { kind: 'module', name: specifier };
      return fileOr(resolveTsPath(base, fromTs), base);
    }
    const config = nearest(tsconfigs, from);
    if (config) {
      for (const candidate of config.candidates(specifier)) {
        const hit = resolveTsPath(candidate, fromTs);
        if (hit) return { kind: 'file', path: hit };
      }
    }
    return { kind: 'module', name: npmPackageName(specifier) };
  }

  // --- Python ----------------------------------------------------------------

  function pythonModule(base: string): string | null {
    for (const c of [`${base}.py`, `${base}.pyi`, `${base}/__init__.py`, `${base}/__init__.pyi`]) if (files.has(c)) return c;
    return null;
  }

  function resolvePython(from: string, specifier: string): ImportTarget {
    const dots = /^\.*/.exec(specifier)![0].length;
    const rest = specifier.slice(dots).replaceAll('.', '/');
    if (dots > 0) {
      // One dot is the importing file's package; each further dot goes one package up.
      let dir: string | null = dirOf(from);
      for (let i = 1; i < dots && dir !== null; i++) dir = dir === '' ? null : dirOf(dir);
      if (dir === null) return { kind: 'module', name: specifier };
      const base = rest ? joinPath(dir, rest) : dir;
      const hit = rest ? pythonModule(base) : [`${joinPath(dir, '__init__.py')}`, `${joinPath(dir, '__init__.pyi')}`].find((c) => files.has(c));
      return fileOr(hit ?? null, base || specifier);
    }
    // sys.path guesses: the root, a top-level src/ layout, then the importing
    // file's own folders (scripts and monorepo packages run from there).
    const roots = ['', ...(hasSrcRoot ? ['src'] : [])];
    for (let dir = dirOf(from); dir !== ''; dir = dirOf(dir)) if (!roots.includes(dir)) roots.push(dir);
    for (const root of roots) {
      const hit = pythonModule(joinPath(root, rest));
      if (hit) return { kind: 'file', path: hit };
    }
    return { kind: 'module', name: specifier.split('.')[0]! };
  }

  // --- Go --------------------------------------------------------------------

  /**
   * A Go import names a package, a directory of files; the graph needs one
   * file, so the package is represented by the file named after its directory
   * (`db/db.go`) when there is one, else by the first non-test file in name order.
   */
  function goPackageFile(dir: string): string | null {
    const list = goDirs.get(dir);
    if (!list || list.length === 0) return null;
    const named = joinPath(dir, `${dir.slice(dir.lastIndexOf('/') + 1)}.go`);
    return list.includes(named) ? named : list[0]!;
  }

  function resolveGo(from: string, specifier: string): ImportTarget {
    if (isRelative(specifier)) {
      const dir = joinInside(dirOf(from), specifier);
      const hit = dir === null ? null : goPackageFile(dir);
      return hit ? { kind: 'file', path: hit } : { kind: 'module', name: specifier };
    }
    let best: { module: string; dir: string } | null = null;
    for (const m of goModules) {
      if ((specifier === m.module || specifier.startsWith(`${m.module}/`)) && (!best || m.module.length > best.module.length)) best = m;
    }
    if (best) {
      const hit = goPackageFile(joinPath(best.dir, specifier.slice(best.module.length + 1)));
      if (hit) return { kind: 'file', path: hit };
    }
    return { kind: 'module', name: specifier };
  }

  // --- Java ------------------------------------------------------------------

  /** Of several candidates (one class in several source roots), the one closest to the importing file. */
  function closest(from: string, candidates: string[]): string {
    let best = candidates[0]!;
    let bestScore = -1;
    for (const c of [...candidates].sort()) {
      const score = commonPrefix(from, c);
      if (score > bestScore) {
        best = c;
        bestScore = score;
      }
    }
    return best;
  }

  function resolveJava(from: string, specifier: string): ImportTarget {
    const parts = specifier.split('.').filter(Boolean);
    // `a.b.Outer.Inner` lives in a/b/Outer.java: drop trailing class names until a file matches.
    for (let k = parts.length; k >= 1; k--) {
      const last = parts[k - 1]!;
      const suffix = `${parts.slice(0, k).join('/')}.java`;
      const hits = (javaByName.get(`${last}.java`) ?? []).filter((p) => p === suffix || p.endsWith(`/${suffix}`));
      if (hits.length > 0) return { kind: 'file', path: closest(from, hits) };
      if (k < 2 || !/^\p{Lu}/u.test(parts[k - 2]!)) break;
    }
    // `import a.b.*` names a package: represented by its first file, as for Go.
    const dirSuffix = parts.join('/');
    const dirs = (javaDirsByLast.get(parts[parts.length - 1] ?? '') ?? []).filter((d) => d === dirSuffix || d.endsWith(`/${dirSuffix}`));
    if (dirs.length > 0) {
      const dir = closest(from, dirs);
      return { kind: 'file', path: javaDirFiles.get(dir)![0]! };
    }
    return { kind: 'module', name: specifier };
  }

  function fileOr(hit: string | null, unresolved: string): ImportTarget {
    // An unresolved relative import (a stylesheet, a generated file) keeps the
    // path it points at, so that two files importing it meet on one module.
    return hit ? { kind: 'file', path: hit } : { kind: 'module', name: unresolved };
  }

  function resolve(fromPath: string, language: Language, specifier: string): ImportTarget {
    const from = fromPath.replace(/^\.\//, '');
    const spec = specifier.trim();
    if (spec === '') return { kind: 'module', name: specifier };
    if (JS_FAMILY.has(language)) return resolveJs(from, language, spec);
    switch (language) {
      case 'python':
        return resolvePython(from, spec);
      case 'go':
        return resolveGo(from, spec);
      case 'java':
      case 'kotlin':
      case 'scala':
        return resolveJava(from, spec);
      case 'rust': {
        // `crate::`, `self::` and `super::` stay inside the crate; anything else starts with the crate's name.
        const first = spec.split('::')[0]!;
        return { kind: 'module', name: first === 'crate' || first === 'self' || first === 'super' ? spec : first };
      }
      default:
        return { kind: 'module', name: spec };
    }
  }

  return { resolve };
}

// ---------------------------------------------------------------------------
// tsconfig / jsconfig

interface TsConfigScope {
  dir: string;
  /** Paths to try for a bare specifier: `paths` matches first, then `baseUrl`. */
  candidates(specifier: string): string[];
}

interface RawCompilerOptions {
  baseUrl?: string;
  /** Repo path of the baseUrl directory. */
  baseDir?: string;
  paths?: Record<string, string[]>;
  /** Directory of the config that declared `paths`: their base when no baseUrl is set (TypeScript ≥ 4.1). */
  pathsDir?: string;
}

function loadTsconfigs(entries: ProjectFile[]): TsConfigScope[] {
  const byPath = new Map<string, ProjectFile>();
  for (const e of entries) byPath.set(joinPath(normalizeDir(e.dir), e.name ?? 'tsconfig.json'), e);

  const cache = new Map<string, RawCompilerOptions | null>();
  function load(configPath: string, seen: Set<string>): RawCompilerOptions | null {
    if (cache.has(configPath)) return cache.get(configPath)!;
    if (seen.has(configPath)) return null;
    seen.add(configPath);
    const entry = byPath.get(configPath);
    const json = entry ? parseJsonc(entry.content) : undefined;
    if (!entry || !isObject(json)) {
      cache.set(configPath, null);
      return null;
    }
    const dir = normalizeDir(entry.dir);
    let merged: RawCompilerOptions = {};
    // `extends` may be a list (TypeScript 5): later entries override earlier ones.
    const parents = typeof json.extends === 'string' ? [json.extends] : Array.isArray(json.extends) ? json.extends : [];
    for (const parent of parents) {
      if (typeof parent !== 'string' || !isRelative(parent)) continue; // packages (@tsconfig/…) are not in the tree
      const target = joinInside(dir, parent);
      if (target === null) continue;
      const resolved = byPath.has(target) ? target : byPath.has(`${target}.json`) ? `${target}.json` : joinPath(target, 'tsconfig.json');
      const inherited = load(resolved, seen);
      if (inherited) merged = { ...merged, ...inherited };
    }
    const options = isObject(json.compilerOptions) ? json.compilerOptions : {};
    if (typeof options.baseUrl === 'string') {
      const baseDir = joinInside(dir, options.baseUrl);
      if (baseDir !== null) merged = { ...merged, baseUrl: options.baseUrl, baseDir };
    }
    if (isObject(options.paths)) {
      const paths: Record<string, string[]> = {};
      for (const [key, value] of Object.entries(options.paths)) {
        if (Array.isArray(value)) paths[key] = value.filter((v): v is string => typeof v === 'string');
      }
      merged = { ...merged, paths, pathsDir: dir };
    }
    cache.set(configPath, merged);
    return merged;
  }

  const scopes: TsConfigScope[] = [];
  const dirsSeen = new Set<string>();
  // tsconfig.json wins over a jsconfig.json in the same directory, as in TypeScript's own lookup.
  const ordered = [...byPath.entries()].sort(([a], [b]) => Number(a.endsWith('jsconfig.json')) - Number(b.endsWith('jsconfig.json')));
  for (const [configPath, entry] of ordered) {
    const name = posix.basename(configPath);
    if (name !== 'tsconfig.json' && name !== 'jsconfig.json') continue;
    const dir = normalizeDir(entry.dir);
    if (dirsSeen.has(dir)) continue;
    dirsSeen.add(dir);
    const options = load(configPath, new Set());
    if (!options) continue;
    scopes.push({ dir, candidates: candidatesFor(options) });
  }
  return scopes.sort((a, b) => b.dir.length - a.dir.length);
}

function candidatesFor(options: RawCompilerOptions): (specifier: string) => string[] {
  const pathsBase = options.baseDir ?? options.pathsDir ?? '';
  const patterns = Object.entries(options.paths ?? {}).map(([key, targets]) => {
    const star = key.indexOf('*');
    return { key, prefix: star < 0 ? key : key.slice(0, star), suffix: star < 0 ? '' : key.slice(star + 1), wildcard: star >= 0, targets };
  });
  return (specifier) => {
    const out: string[] = [];
    // An exact key wins; among wildcards, the longest prefix (TypeScript's matchPatternOrExact).
    let match = patterns.find((p) => !p.wildcard && p.key === specifier);
    let captured = '';
    if (!match) {
      for (const p of patterns) {
        if (!p.wildcard || specifier.length < p.prefix.length + p.suffix.length) continue;
        if (!specifier.startsWith(p.prefix) || !specifier.endsWith(p.suffix)) continue;
        if (!match || p.prefix.length > match.prefix.length) match = p;
      }
      if (match) captured = specifier.slice(match.prefix.length, specifier.length - match.suffix.length);
    }
    for (const target of match?.targets ?? []) {
      const p = joinInside(pathsBase, target.replace('*', captured));
      if (p !== null) out.push(p);
    }
    if (options.baseDir !== undefined) {
      const p = joinInside(options.baseDir, specifier);
      if (p !== null) out.push(p);
    }
    return out;
  };
}

/** JSON with comments and trailing commas, as tsconfig files are written; undefined when it still does not parse. */
export function parseJsonc(text: string): unknown {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  // Trailing commas: `,` followed by only whitespace before `}` or `]` (strings were kept verbatim above, so re-scan them).
  let clean = '';
  for (let k = 0; k < out.length; k++) {
    const c = out[k]!;
    if (c === '"') {
      let j = k + 1;
      while (j < out.length && out[j] !== '"') j += out[j] === '\\' ? 2 : 1;
      clean += out.slice(k, j + 1);
      k = j;
      continue;
    }
    if (c === ',') {
      let j = k + 1;
      while (j < out.length && /\s/.test(out[j]!)) j++;
      if (out[j] === '}' || out[j] === ']') continue;
    }
    clean += c;
  }
  try {
    return JSON.parse(clean.replace(/^\uFEFF/, ''));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// go.mod

interface GoModule {
  module: string;
  dir: string;
}

function loadGoModules(entries: ProjectFile[]): GoModule[] {
  const out: GoModule[] = [];
  for (const entry of entries) {
    const dir = normalizeDir(entry.dir);
    const content = entry.content.replace(/\/\/.*$/gm, '');
    const module = /^\s*module\s+"?([^\s"]+)"?/m.exec(content)?.[1];
    if (module) out.push({ module, dir });
    // `replace example.com/x => ../x`: a module of the same repository under another path.
    const replaces = [...content.matchAll(/^\s*(?:replace\s+)?([^\s()]+)(?:\s+v[^\s]+)?\s*=>\s*(\.{1,2}\/?[^\s]*)\s*$/gm)];
    for (const r of replaces) {
      const target = joinInside(dir, r[2]!);
      if (target !== null) out.push({ module: r[1]!, dir: target });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Paths

/** `lodash/fp` → `lodash`, `@scope/pkg/sub` → `@scope/pkg`, `node:fs` → `fs`. */
export function npmPackageName(specifier: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(specifier)) return specifier; // URL imports (Deno, browsers)
  const s = specifier.replace(/^node:/, '');
  const parts = s.split('/');
  if (s.startsWith('@') && parts.length >= 2) return `${parts[0]}/${parts[1]}`;
  return parts[0]!;
}

function isRelative(specifier: string): boolean {
  return specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../');
}

function dirOf(file: string): string {
  const slash = file.lastIndexOf('/');
  return slash < 0 ? '' : file.slice(0, slash);
}

function normalizeDir(dir: string): string {
  const d = posix.normalize(dir.replace(/^\.\/?/, '') || '.');
  return d === '.' ? '' : d.replace(/\/$/, '');
}

function joinPath(dir: string, rel: string): string {
  return dir === '' ? rel : rel === '' ? dir : `${dir}/${rel}`;
}

/** `dir` joined with a relative path and normalised; null when it leaves the repository. */
function joinInside(dir: string, rel: string): string | null {
  const joined = posix.normalize(posix.join(dir || '.', rel));
  if (joined === '..' || joined.startsWith('../') || posix.isAbsolute(joined)) return null;
  return joined === '.' ? '' : joined.replace(/\/$/, '');
}

function nearest(scopes: TsConfigScope[], file: string): TsConfigScope | undefined {
  return scopes.find((s) => s.dir === '' || file.startsWith(`${s.dir}/`));
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
