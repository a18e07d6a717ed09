import ignore, { type Ignore } from 'ignore';
import { compilePathGlob } from '../path-glob.ts';
import { detectLanguage } from './language.ts';

/**
 * Decides which files of a repository are indexed. `check` needs only the
 * path and size from the git tree, so most files are ruled out before their
 * blob is read; `checkContent` looks at the bytes of the rest.
 *
 * Paths are POSIX and relative to the repository root.
 */

export type SkipReason =
  | 'built-in-directory'
  | 'lock-file'
  | 'binary-extension'
  | 'source-map'
  | 'secret'
  | 'generated-name'
  | 'not-included'
  | 'excluded'
  | 'gitignored'
  | 'too-large'
  | 'path-too-long'
  | 'binary'
  | 'minified'
  | 'generated';

export type FilterDecision = { indexed: true } | { indexed: false; reason: SkipReason };

export interface GitignoreFile {
  /** Folder holding the .gitignore, relative to the repository root; '' for the root. */
  dir: string;
  content: string;
}

export interface FileFilterOptions {
  gitignores: GitignoreFile[];
  /** Globs a file must match one of; empty means every file. */
  include: string[];
  /** Globs of files or folders never indexed. */
  exclude: string[];
  maxFileBytes: number;
}

export interface FileFilter {
  check(path: string, size: number): FilterDecision;
  checkContent(path: string, content: Buffer): FilterDecision;
}

/** Dependency, build output, cache and tool folders: never the repository's own source. */
const BUILT_IN_DIRECTORIES = new Set([
  '.git', '.hg', '.svn', '.bzr',
  'node_modules', 'bower_components', 'jspm_packages', '.yarn', '.pnpm-store',
  'vendor', 'third_party', 'third-party', 'thirdparty',
  'dist', 'build', 'out', 'target',
  '.next', '.nuxt', '.svelte-kit', '.output', '.vercel', '.netlify', '.docusaurus', '.angular',
  '.expo', '.turbo', '.parcel-cache', '.cache', 'storybook-static',
  'coverage', '.nyc_output',
  '__pycache__', '.pytest_cache', '.mypy_cache', '.ruff_cache', '.tox', '.nox', '.eggs',
  '.venv', 'venv', 'site-packages',
  '.idea', '.vscode', '.vs', '.fleet',
  'obj', 'Pods', 'Carthage', 'DerivedData', '.build', '.swiftpm',
  '.gradle', '.m2', '.dart_tool', '.pub-cache', '.terraform', '.serverless',
  '_build', 'elm-stuff', '.stack-work', '.cabal-sandbox', 'zig-cache', 'zig-out',
]);

/**
 * .NET writes its output to bin/<Configuration>; a bare `bin/` is too often a
 * folder of scripts (node packages, Rails) to exclude as a whole.
 */
const DOTNET_BIN_CONFIGURATIONS = new Set(['Debug', 'Release', 'x64', 'x86', 'ARM', 'ARM64']);

const LOCK_FILES = new Set([
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lock', 'bun.lockb',
  'cargo.lock', 'poetry.lock', 'pipfile.lock', 'pdm.lock', 'uv.lock', 'gemfile.lock', 'composer.lock',
  'go.sum', 'go.work.sum', 'mix.lock', 'podfile.lock', 'pubspec.lock', 'packages.lock.json',
  'package.resolved', 'flake.lock', 'gradle.lockfile', 'deno.lock', 'conda-lock.yml', 'shrinkwrap.yaml',
]);

const BINARY_EXTENSIONS = new Set([
  // images
  'png', 'jpg', 'jpeg', 'gif', 'bmp', 'ico', 'icns', 'webp', 'avif', 'tif', 'tiff', 'psd', 'heic', 'heif',
  'svg', 'eps', 'ai', 'sketch', 'fig', 'xcf', 'raw', 'cr2', 'nef',
  // audio and video
  'mp3', 'wav', 'ogg', 'oga', 'flac', 'm4a', 'aac', 'opus', 'mid', 'midi',
  'mp4', 'm4v', 'mov', 'avi', 'mkv', 'webm', 'wmv', 'flv', 'mpg', 'mpeg',
  // fonts
  'ttf', 'otf', 'woff', 'woff2', 'eot',
  // archives and packages
  'zip', 'tar', 'gz', 'tgz', 'bz2', 'tbz2', 'xz', 'txz', '7z', 'rar', 'zst', 'lz4', 'lzma', 'cab',
  'jar', 'war', 'ear', 'aar', 'apk', 'aab', 'ipa', 'dmg', 'iso', 'img', 'deb', 'rpm', 'msi', 'nupkg',
  'whl', 'egg', 'gem', 'crate', 'vsix',
  // compiled code
  'exe', 'dll', 'so', 'dylib', 'a', 'lib', 'o', 'ko', 'pdb', 'class', 'pyc', 'pyo', 'pyd', 'node',
  'wasm', 'beam', 'elc', 'dex', 'bin', 'hex', 'elf', 'der', 'cer',
  // documents
  'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'odt', 'ods', 'odp', 'rtf', 'epub',
  // data, databases, models
  'db', 'sqlite', 'sqlite3', 'mdb', 'accdb', 'dat', 'parquet', 'avro', 'orc', 'feather', 'arrow',
  'pkl', 'pickle', 'npy', 'npz', 'h5', 'hdf5', 'onnx', 'pt', 'pth', 'safetensors', 'ckpt', 'tflite', 'pb',
  'gguf', 'mlmodel',
  // 3D and design assets
  'blend', 'fbx', 'glb', '3ds', 'max', 'stl', 'unitypackage',
]);

/**
 * What is indexed is handed to agents and possibly to a hosted embedding
 * API, so files that usually hold credentials stay out even when committed.
 */
const SECRET_NAMES = new Set(['id_rsa', 'id_dsa', 'id_ecdsa', 'id_ed25519', '.npmrc', '.pypirc', '.netrc', '.htpasswd']);
const SECRET_EXTENSIONS = new Set(['pem', 'key', 'p12', 'pfx', 'jks', 'keystore', 'p8', 'gpg']);
const ENV_TEMPLATES = /\.(example|sample|template|dist|defaults?)$/;

/** Outputs of code generators that say so in their name. */
const GENERATED_NAME = /(\.pb\.(go|cc|h|ts|js)|_pb2(_grpc)?\.pyi?|_grpc\.pb\.go|\.g\.dart|\.freezed\.dart|\.designer\.cs|\.g\.cs|\.generated\.[a-z]+)$/;

const MINIFIED_NAME = /[.-]min\.(js|mjs|cjs|css)$/;

/** Prose is often written one paragraph per line; its long lines say nothing about minification. */
const PROSE = new Set(['markdown', 'text']);

/**
 * Longest path indexed, in UTF-8 bytes. Postgres keys files by (repository,
 * branch, path) in b-trees whose entries hold at most 2704 bytes (after
 * compression, which repetitive paths get and random names do not): a longer
 * path (Linux allows 4095) failed the whole run at staging. This leaves room
 * for the headers and a branch name of up to 255 ASCII characters.
 */
export const MAX_PATH_BYTES = 2400;

/**
 * git treats a blob as binary when its first 8000 bytes hold a NUL; the same
 * window is used to count control characters that text never carries.
 */
const SNIFF_BYTES = 8000;
const MAX_CONTROL_RATIO = 0.1;

/** Lines this long on average are a bundle or a data dump, not source. */
const MINIFIED_AVERAGE_LINE = 300;
const MINIFIED_MIN_BYTES = 512;

/** Generators mark their output in the comment block that opens the file. */
const HEADER_BYTES = 4096;
const HEADER_LINES = 60;
const GENERATED_MARKERS = [
  /@generated\b/,
  /\bCode generated\b.*\bDO NOT EDIT\b/,
  /\bDO NOT EDIT\b/,
  /\bauto-?generated\b/i,
  /\b(this|the) (file|code) (is|was|has been) (automatically )?generated\b/i,
  /\bautomatically generated\b/i,
  /\bgenerated (by|with|from)\b.*\b(protoc|protobuf|thrift|swagger|openapi|graphql-codegen|sqlc|mockgen|mockery|wire|stringer|cython|bison|flex|antlr|jooq|quicktype|prisma)\b/i,
];
const LINE_COMMENT = /^(\/\/|#|--|;|%)/;
const BLOCK_COMMENTS: Array<[open: string, close: string]> = [
  ['/*', '*/'],
  ['<!--', '-->'],
  ['"""', '"""'],
  ["'''", "'''"],
  ['{-', '-}'],
  ['(*', '*)'],
];
/** Lines that may precede a generator's header without being a comment. */
const PREAMBLE = /^(<\?php|<\?xml\b|'use strict'|"use strict")/;

export function createFileFilter(opts: FileFilterOptions): FileFilter {
  const gitignore = createGitignoreMatcher(opts.gitignores);
  const included = opts.include.length > 0 ? compileGlobs(opts.include) : null;
  const excluded = opts.exclude.length > 0 ? compileGlobs(opts.exclude) : null;

  function check(rawPath: string, size: number): FilterDecision {
    const path = treePath(rawPath);
    const segments = path.split('/');
    const name = segments[segments.length - 1] ?? '';
    const lowerName = name.toLowerCase();

    for (let i = 0; i < segments.length - 1; i++) {
      const dir = segments[i]!;
      if (BUILT_IN_DIRECTORIES.has(dir) || dir.endsWith('.egg-info')) return skip('built-in-directory');
      if (dir === 'bin' && i + 1 < segments.length - 1 && DOTNET_BIN_CONFIGURATIONS.has(segments[i + 1]!)) {
        return skip('built-in-directory');
      }
    }

    if (LOCK_FILES.has(lowerName)) return skip('lock-file');
    const extension = extensionOf(lowerName);
    if (extension === 'map') return skip('source-map');
    if (BINARY_EXTENSIONS.has(extension)) return skip('binary-extension');
    if (isSecret(lowerName, extension)) return skip('secret');
    if (GENERATED_NAME.test(lowerName)) return skip('generated-name');

    if (included && !included(path)) return skip('not-included');
    if (excluded && matchesSelfOrAncestor(excluded, segments)) return skip('excluded');
    if (gitignore(path)) return skip('gitignored');

    if (size > opts.maxFileBytes) return skip('too-large');
    if (Buffer.byteLength(rawPath) > MAX_PATH_BYTES) return skip('path-too-long');
    return INDEXED;
  }

  function checkContent(rawPath: string, content: Buffer): FilterDecision {
    if (content.length > opts.maxFileBytes) return skip('too-large');
    if (content.length === 0) return INDEXED;
    if (looksBinary(content)) return skip('binary');

    const path = treePath(rawPath);
    const lowerName = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
    if (MINIFIED_NAME.test(lowerName)) return skip('minified');
    if (!PROSE.has(detectLanguage(path)) && looksMinified(content)) return skip('minified');
    if (looksGenerated(content)) return skip('generated');
    return INDEXED;
  }

  return { check, checkContent };
}

const INDEXED: FilterDecision = { indexed: true };

function skip(reason: SkipReason): FilterDecision {
  return { indexed: false, reason };
}

/**
 * A path from the git tree. A backslash in it is part of a name (git separates
 * folders with `/` only; non-UTF-8 names are shown with backslash escapes):
 * read as a separator, `build\x.ts` was skipped as a build folder.
 */
function treePath(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  while (p.startsWith('/')) p = p.slice(1);
  return p;
}

/** A glob as users write it, also with Windows' separators. */
function normalizePath(path: string): string {
  let p = path.replaceAll('\\', '/');
  while (p.startsWith('./')) p = p.slice(2);
  while (p.startsWith('/')) p = p.slice(1);
  return p;
}

function extensionOf(lowerName: string): string {
  const dot = lowerName.lastIndexOf('.');
  return dot <= 0 ? '' : lowerName.slice(dot + 1);
}

function isSecret(lowerName: string, extension: string): boolean {
  if (SECRET_NAMES.has(lowerName) || SECRET_EXTENSIONS.has(extension)) return true;
  return (lowerName === '.env' || lowerName.startsWith('.env.')) && !ENV_TEMPLATES.test(lowerName);
}

/** Throws a 400 (`invalid_glob`, with the reason) for an include or exclude glob a filter could not take. */
export function validateGlobs(patterns: string[]): void {
  compileGlobs(patterns);
}

/**
 * Globs as users write them in .gitignore-like lists: a pattern without a
 * slash matches a name at any depth (`*.ts`, `fixtures`), and `docs/` means
 * everything under docs.
 */
function compileGlobs(patterns: string[]): (path: string) => boolean {
  const normalized = patterns
    .map((p) => normalizePath(p.trim()))
    .filter((p) => p.length > 0)
    .map((p) => (p.endsWith('/') ? `${p}**` : p));
  // Matched without regular expressions (path-glob.ts): a repository's globs come from whoever registered
  // it, and a backtracking one could hold a worker for minutes on each path.
  const byName = normalized.filter((p) => !p.includes('/')).map(compilePathGlob);
  const byPath = normalized.filter((p) => p.includes('/')).map(compilePathGlob);
  return (path) => {
    if (byPath.some((m) => m(path))) return true;
    if (byName.length === 0) return false;
    const name = path.slice(path.lastIndexOf('/') + 1);
    return byName.some((m) => m(name));
  };
}

/** An exclude names a file or a folder: `generated` drops generated/x.ts too. */
function matchesSelfOrAncestor(matcher: (path: string) => boolean, segments: string[]): boolean {
  let prefix = '';
  for (const segment of segments) {
    prefix = prefix ? `${prefix}/${segment}` : segment;
    if (matcher(prefix)) return true;
  }
  return false;
}

/**
 * Git's reading of nested .gitignore files: rules are relative to their own
 * folder, a deeper file overrides a shallower one, and nothing can be
 * re-included below a folder that is itself ignored (git never looks inside).
 */
function createGitignoreMatcher(files: GitignoreFile[]): (path: string) => boolean {
  const levels = files
    .map((f) => ({ dir: treePath(f.dir).replace(/\/+$/, ''), rules: ignore().add(f.content) }))
    .sort((a, b) => depth(a.dir) - depth(b.dir));
  if (levels.length === 0) return () => false;

  const dirCache = new Map<string, boolean>();

  function decide(path: string): boolean {
    let ignored = false;
    for (const level of levels) {
      let relative: string;
      if (level.dir === '') relative = path;
      else if (path.startsWith(`${level.dir}/`)) relative = path.slice(level.dir.length + 1);
      else continue;
      if (relative === '' || relative === '/') continue;
      const result = testRules(level.rules, relative);
      if (result.ignored) ignored = true;
      else if (result.unignored) ignored = false;
    }
    return ignored;
  }

  function dirIgnored(dir: string): boolean {
    const cached = dirCache.get(dir);
    if (cached !== undefined) return cached;
    const slash = dir.lastIndexOf('/');
    const result = (slash > 0 && dirIgnored(dir.slice(0, slash))) || decide(`${dir}/`);
    dirCache.set(dir, result);
    return result;
  }

  return (path) => {
    const slash = path.lastIndexOf('/');
    if (slash > 0 && dirIgnored(path.slice(0, slash))) return true;
    return decide(path);
  };
}

function testRules(rules: Ignore, relative: string): { ignored: boolean; unignored: boolean } {
  try {
    return rules.test(relative);
  } catch {
    // `ignore` throws on paths it considers invalid (e.g. `..` segments): such
    // a path cannot come from a git tree, and no rule can name it.
    return { ignored: false, unignored: false };
  }
}

function depth(dir: string): number {
  if (dir === '') return 0;
  let n = 1;
  for (const ch of dir) if (ch === '/') n++;
  return n;
}

function looksBinary(content: Buffer): boolean {
  const end = Math.min(content.length, SNIFF_BYTES);
  let control = 0;
  for (let i = 0; i < end; i++) {
    const b = content[i]!;
    if (b === 0) return true;
    // Tab, LF, VT, FF, CR and ESC (ANSI colours in logs) occur in text.
    if ((b < 0x20 && b !== 9 && b !== 10 && b !== 11 && b !== 12 && b !== 13 && b !== 27) || b === 0x7f) control++;
  }
  return control > end * MAX_CONTROL_RATIO;
}

function looksMinified(content: Buffer): boolean {
  if (content.length < MINIFIED_MIN_BYTES) return false;
  let lines = 1;
  for (let i = content.indexOf(10); i !== -1; i = content.indexOf(10, i + 1)) lines++;
  return content.length / lines > MINIFIED_AVERAGE_LINE;
}

/**
 * Only the file's opening comments count: a marker further down is more
 * likely a sentence about generated ids than a generator's signature.
 */
function looksGenerated(content: Buffer): boolean {
  const head = content.subarray(0, HEADER_BYTES).toString('utf8');
  const lines = head.split('\n', HEADER_LINES);
  let closing: string | null = null;
  for (const raw of lines) {
    const line = raw.trim();
    let isComment = false;
    if (closing !== null) {
      isComment = true;
      if (line.includes(closing)) closing = null;
    } else if (line === '' || PREAMBLE.test(line)) {
      continue;
    } else if (LINE_COMMENT.test(line)) {
      isComment = true;
    } else {
      const block = BLOCK_COMMENTS.find(([open]) => line.startsWith(open));
      if (!block) return false;
      isComment = true;
      if (!line.slice(block[0].length).includes(block[1])) closing = block[1];
    }
    if (isComment && GENERATED_MARKERS.some((marker) => marker.test(line))) return true;
  }
  return false;
}
