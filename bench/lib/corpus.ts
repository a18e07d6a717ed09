/**
 * The benchmark corpus: real code from node_modules committed to a fresh Git
 * repository. Every benchmark builds it here: with the same `--files` and
 * `--exclude` they all index the same files.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import picomatch from 'picomatch';
import { createFileFilter } from '../../shared/indexing/file-filter.ts';
import { PROJECT_ROOT } from '../../scripts/project.ts';

/** The issue asks for at least this many files: fewer and fixed costs (fetch, publish) flatter the rate. */
export const MIN_CORPUS_FILES = 5000;
const CORPUS_EXTENSIONS = ['.ts', '.js', '.mjs', '.cjs', '.md', '.json']; // `.d.ts` ends in `.ts`
const MAX_CORPUS_FILE_BYTES = 256 * 1024;
export const CORPUS_BRANCH = 'main';
const GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'pk-mcp bench',
  GIT_AUTHOR_EMAIL: 'bench@example.invalid',
  GIT_COMMITTER_NAME: 'pk-mcp bench',
  GIT_COMMITTER_EMAIL: 'bench@example.invalid',
};

export interface CorpusFile {
  /** Absolute path in node_modules. */
  source: string;
  /** Path in the corpus repository: `<package name>/<path inside the package>`. */
  rel: string;
  bytes: number;
}

export interface Corpus {
  dir: string;
  files: CorpusFile[];
  /** Files that qualified before the evenly spaced selection. */
  eligible: number;
  packages: number;
  bytes: number;
  byExtension: Record<string, number>;
  buildMs: number;
  excluded: string[];
}

function compareCodePoints(a: string, b: string): number {
  // Not localeCompare: the selection must not depend on the machine's locale.
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedDir(dir: string): Dirent[] {
  return readdirSync(dir, { withFileTypes: true }).sort((a, b) => compareCodePoints(a.name, b.name));
}

/** Top-level packages, scoped ones included (`@types/node`); `.bin` and other dot folders are npm's, not packages. */
function listPackages(nodeModules: string): Array<{ name: string; dir: string }> {
  const packages: Array<{ name: string; dir: string }> = [];
  for (const entry of sortedDir(nodeModules)) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = path.join(nodeModules, entry.name);
    if (!entry.name.startsWith('@')) {
      packages.push({ name: entry.name, dir });
      continue;
    }
    for (const scoped of sortedDir(dir)) {
      if (scoped.isDirectory()) packages.push({ name: `${entry.name}/${scoped.name}`, dir: path.join(dir, scoped.name) });
    }
  }
  return packages;
}

/** Files of one package, depth first in name order. Nested `node_modules` are other packages; symlinks would count twice. */
function* walkPackage(dir: string, rel = ''): Generator<{ abs: string; rel: string }> {
  for (const entry of sortedDir(dir)) {
    if (entry.isSymbolicLink()) continue;
    const abs = path.join(dir, entry.name);
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') yield* walkPackage(abs, childRel);
    } else if (entry.isFile()) {
      yield { abs, rel: childRel };
    }
  }
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, ...GIT_IDENTITY },
  }).trim();
}

/**
 * Copies `wanted` source files into a new Git repository. A file qualifies
 * when its extension is one of CORPUS_EXTENSIONS, it is at most 256 KB, and
 * the indexer's own file filter would index it (no `dist/`, lock files,
 * minified or generated files): then files/s counts files the platform
 * really chunked and embedded, not files it skipped. The qualifying files are
 * sorted and an evenly spaced selection is taken, so the corpus spans every
 * package rather than the alphabetically first few.
 */
export function buildCorpus(wanted: number, exclude: string[]): Corpus {
  const started = performance.now();
  const filter = createFileFilter({ gitignores: [], include: [], exclude: [], maxFileBytes: MAX_CORPUS_FILE_BYTES });
  const isExcluded = exclude.length > 0 ? picomatch(exclude, { dot: true }) : () => false;
  const packages = listPackages(path.join(PROJECT_ROOT, 'node_modules'));
  const eligible: CorpusFile[] = [];
  for (const pkg of packages) {
    for (const file of walkPackage(pkg.dir)) {
      const rel = `${pkg.name}/${file.rel}`;
      if (!CORPUS_EXTENSIONS.some((ext) => rel.endsWith(ext)) || isExcluded(rel)) continue;
      const bytes = statSync(file.abs).size;
      if (bytes > MAX_CORPUS_FILE_BYTES || !filter.check(rel, bytes).indexed) continue;
      if (!filter.checkContent(rel, readFileSync(file.abs)).indexed) continue;
      eligible.push({ source: file.abs, rel, bytes });
    }
  }
  eligible.sort((a, b) => compareCodePoints(a.rel, b.rel));
  if (eligible.length < Math.max(wanted, MIN_CORPUS_FILES)) {
    throw new Error(`node_modules holds only ${eligible.length} qualifying files; ${Math.max(wanted, MIN_CORPUS_FILES)} are needed`);
  }
  const files = Array.from({ length: wanted }, (_, i) => eligible[Math.floor((i * eligible.length) / wanted)]!);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'pk-bench-corpus-'));
  for (const f of files) {
    const target = path.join(dir, f.rel);
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(f.source, target);
  }
  git(dir, 'init', '--quiet', `--initial-branch=${CORPUS_BRANCH}`);
  // A global excludes file could silently drop corpus files; this repository has no ignore rules of its own.
  git(dir, '-c', 'core.excludesFile=/dev/null', '-c', 'core.autocrlf=false', 'add', '--all');
  git(dir, 'commit', '--quiet', '-m', 'benchmark corpus');
  const tracked = git(dir, 'ls-files', '-z').split('\0').filter(Boolean).length;
  if (tracked !== files.length) throw new Error(`git tracks ${tracked} of the ${files.length} corpus files`);

  const byExtension: Record<string, number> = {};
  for (const f of files) {
    const ext = f.rel.endsWith('.d.ts') ? '.d.ts' : path.extname(f.rel);
    byExtension[ext] = (byExtension[ext] ?? 0) + 1;
  }
  return {
    dir,
    files,
    eligible: eligible.length,
    packages: new Set(files.map((f) => f.rel.split('/').slice(0, f.rel.startsWith('@') ? 2 : 1).join('/'))).size,
    bytes: files.reduce((sum, f) => sum + f.bytes, 0),
    byExtension,
    buildMs: performance.now() - started,
    excluded: exclude,
  };
}

export function corpusSummary(corpus: Corpus) {
  return {
    files: corpus.files.length,
    megabytes: Math.round((corpus.bytes / 2 ** 20) * 100) / 100,
    packages: corpus.packages,
    qualifyingFiles: corpus.eligible,
    byExtension: corpus.byExtension,
    excluded: corpus.excluded,
    buildMs: Math.round(corpus.buildMs),
  };
}
