/**
 * Pieces of the retrieval-quality benchmark (bench/retrieval.bench.ts) that a
 * regression test reuses: query sets, corpora written as Git repositories,
 * indexing through the real pipeline until the model tier has covered every
 * chunk, and the scores (recall@k, MRR, nDCG@10).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Platform } from '../../shared/platform.ts';
import type { RepositoryService } from '../../shared/indexing/repository.service.ts';
import type { SearchOptions, SearchQuery, SearchService } from '../../shared/search/hybrid-search.ts';
import { sleep } from './common.ts';
import { git } from './corpus.ts';

export interface QueryCase {
  id: string;
  /** Which query set: cosqa, docstring, repo. */
  set: string;
  /** dev: used to choose ranking weights; test: only ever reported. */
  split: 'dev' | 'test';
  /** Finer grouping for the report (e.g. the repo question's type, the docstring's language). */
  type: string;
  query: string;
  repository: string;
  /** Repository-relative paths of the files that answer it (any one counts). */
  relevant: string[];
}

export interface CorpusFile {
  path: string;
  content: string;
}

/** Deterministic split by id: the same query always lands on the same side. */
export function splitOf(id: string): 'dev' | 'test' {
  return createHash('sha256').update(id).digest()[0]! % 2 === 0 ? 'dev' : 'test';
}

/** The retrieval modes compared side by side. */
export const MODES: Record<string, { about: string; options: SearchOptions; perFile?: number }> = {
  'hash-only': { about: 'fast hashed vectors alone', options: { retrievers: ['vector'], rescore: false } },
  'text-only': { about: 'Postgres full text alone (words weighed by rarity)', options: { retrievers: ['text'], rescore: false } },
  'model-only': { about: 'the local model (bge-small-en-v1.5) alone', options: { retrievers: ['model'], rescore: false } },
  earlier: {
    about: 'the pipeline before this benchmark: fast vectors + full text (every word, then any) fused by RRF, no re-scoring, hits of one file not grouped',
    options: { retrievers: ['vector', 'text'], rescore: false, ranking: { vector: 1, text: 1 }, textRanking: 'all-then-any' },
    perFile: 100,
  },
  'before-model': {
    about: 'the full pipeline before the background tier has embedded anything (right after a first publish): fast vectors + weighted full text, re-scored and grouped, no model',
    options: { retrievers: ['vector', 'text'] },
  },
  full: { about: 'the full pipeline: model + fast vectors + full text, re-scored, grouped by file', options: {} },
};

// ---- CoSQA -------------------------------------------------------------------------------------

export const COSQA_DIR = path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'datasets', 'cosqa');

/** One file per corpus function, named by its id only: the path says nothing about the code. */
export const cosqaPath = (id: number) => `functions/f${String(id).padStart(5, '0')}.py`;

export function cosqaCorpus(dir = COSQA_DIR): CorpusFile[] {
  return readFileSync(path.join(dir, 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: number; code: string })
    .map((r) => ({ path: cosqaPath(r.id), content: `${r.code}\n` }));
}

/** CoSQA's dev queries choose weights; its test queries are the published split and are only reported. */
export function cosqaQueries(repository: string, dir = COSQA_DIR): QueryCase[] {
  const out: QueryCase[] = [];
  for (const split of ['dev', 'test'] as const) {
    for (const line of readFileSync(path.join(dir, `queries-${split}.jsonl`), 'utf8').split('\n').filter(Boolean)) {
      const q = JSON.parse(line) as { id: string; query: string; relevant: number[] };
      out.push({ id: `${split}:${q.id}`, set: 'cosqa', split, type: 'web query', query: q.query, repository, relevant: q.relevant.map(cosqaPath) });
    }
  }
  return out;
}

// ---- repository questions ------------------------------------------------------------------------

export interface RepoQuestionFile {
  codebase: string;
  ecosystem: 'npm' | 'pypi' | 'go';
  install: string[];
  root: string;
  questions: Array<{ id: string; question: string; type: string; files: string[] }>;
}

export const REPO_QUESTIONS_DIR = path.resolve(import.meta.dirname, '..', 'datasets', 'repo-questions');

export function repoQuestionFiles(dir = REPO_QUESTIONS_DIR): RepoQuestionFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as RepoQuestionFile);
}

/**
 * Installs a codebase as its question file says (npm, pip or the Go module
 * proxy, into a folder of its own) and returns the folder its paths are
 * relative to. Reused when the install marker matches.
 */
export function installCodebase(spec: RepoQuestionFile, baseDir: string): string {
  const dir = path.join(baseDir, spec.codebase);
  const marker = path.join(dir, '.installed');
  const wanted = JSON.stringify(spec.install);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === wanted) return path.join(dir, spec.root);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  };
  if (spec.ecosystem === 'npm') {
    run('npm', ['install', '--prefix', '.', ...spec.install, '--ignore-scripts', '--no-audit', '--no-fund', '--no-save']);
  } else if (spec.ecosystem === 'pypi') {
    run('python3', ['-m', 'pip', 'install', '--quiet', '--no-compile', '--no-deps', '--target', path.join(dir, spec.root), ...spec.install]);
  } else {
    const cache = path.join(dir, 'modcache');
    run('go', ['mod', 'download', '-json', ...spec.install], { GOMODCACHE: cache, GOFLAGS: '-modcacherw' });
    for (const mod of spec.install) {
      const [name, version] = mod.split('@') as [string, string];
      // github.com/go-chi/chi/v5 → chi, github.com/spf13/cobra → cobra (the names the labels use)
      const short = name.split('/').filter((p) => !/^v\d+$/.test(p)).pop()!;
      cpSync(path.join(cache, `${name}@${version}`), path.join(dir, spec.root, short), { recursive: true });
    }
    rmSync(cache, { recursive: true, force: true });
  }
  writeFileSync(marker, wanted);
  return path.join(dir, spec.root);
}

export function repoQuestions(spec: RepoQuestionFile, repository: string): QueryCase[] {
  return spec.questions.map((q) => ({
    id: q.id,
    set: 'repo',
    split: splitOf(q.id),
    type: `${spec.codebase}/${q.type}`,
    query: q.question,
    repository,
    relevant: q.files,
  }));
}

// ---- corpora as Git repositories -------------------------------------------------------------------

/** Files of a folder, for committing as one repository (package-manager leftovers skipped). */
export function filesUnder(root: string): CorpusFile[] {
  const out: CorpusFile[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel))) {
      if (name === '.git' || name === '.package-lock.json' || name.endsWith('.dist-info') || name === '__pycache__' || name === '.bin') continue;
      const p = rel ? `${rel}/${name}` : name;
      const st = statSync(path.join(root, p));
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size <= 1024 * 1024) out.push({ path: p, content: readFileSync(path.join(root, p), 'latin1') });
    }
  };
  walk('');
  return out;
}

/**
 * Writes `files` as the single commit of a Git repository at `dir`, unless
 * the repository already holds exactly these files (then its commit is kept,
 * and a second index run finds nothing to do).
 */
export function writeRepository(dir: string, files: CorpusFile[]): string {
  const digest = createHash('sha256');
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) digest.update(`${f.path}\0${f.content}\0`);
  const id = digest.digest('hex');
  const marker = path.join(dir, '.git', 'pk-corpus-id');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === id) return git(dir, 'rev-parse', 'HEAD');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
    writeFileSync(path.join(dir, f.path), f.content, 'latin1');
  }
  git(dir, 'add', '-A');
  execFileSync('git', ['commit', '-q', '-m', 'corpus'], { cwd: dir, env: { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@localhost', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@localhost' } });
  writeFileSync(marker, id);
  return git(dir, 'rev-parse', 'HEAD');
}

/**
 * Registers (once) and indexes a repository, waits until the run publishes,
 * then until the model tier has covered every chunk (when it is on).
 */
export async function indexRepository(
  ctx: { platform: Platform; repos: RepositoryService },
  name: string,
  dir: string,
  log: (m: string) => void,
): Promise<{ chunks: number; indexMs: number; modelMs: number }> {
  const { platform, repos } = ctx;
  const existing = await platform.repositories.findByName(name);
  const started = performance.now();
  const { jobId } = existing ? await repos.requestIndex(name) : await repos.addAndIndex({ source: dir, name });
  for (;;) {
    const job = await platform.queues.queues.index.getJob(jobId);
    const state = job ? await job.getState() : 'unknown';
    if (state === 'completed') break;
    if (state === 'failed') throw new Error(`index run of ${name} failed: ${job?.failedReason}`);
    await sleep(250);
  }
  const indexMs = performance.now() - started;
  const repo = (await platform.repositories.findByName(name))!;
  const ref = { repositoryId: repo.id, branch: 'main' };
  const modelStarted = performance.now();
  let lastLog = 0;
  if (platform.semantic) {
    const { modelVectors, embeddings } = platform.semantic;
    for (;;) {
      const c = (await modelVectors.coverage(embeddings.id, [ref])).values().next().value;
      if (!c || c.embedded + c.failed >= c.total) break;
      if (performance.now() - lastLog > 15_000) {
        lastLog = performance.now();
        log(`${name}: model vectors ${c.embedded}/${c.total}`);
      }
      const failed = await platform.queues.queues.semantic.getFailed(0, 5);
      const mine = failed.find((j) => j.data?.repositoryId === repo.id);
      if (mine) throw new Error(`semantic embedding of ${name} failed: ${mine.failedReason}`);
      await sleep(500);
    }
  }
  const chunks = (await platform.repositories.getBranch(repo.id, 'main'))?.chunkCount ?? 0;
  return { chunks, indexMs, modelMs: performance.now() - modelStarted };
}

// ---- scoring ---------------------------------------------------------------------------------------

export interface Scores {
  queries: number;
  recallAt1: number;
  recallAt5: number;
  recallAt10: number;
  /** Mean reciprocal rank over the list searched (ranks past it count 0). */
  mrr: number;
  ndcgAt10: number;
}

/** Scores from each query's 1-based rank of the first relevant result (null: not in the list). */
export function scoresOf(ranks: Array<number | null>): Scores {
  const n = ranks.length || 1;
  const within = (k: number) => ranks.filter((r) => r !== null && r <= k).length / n;
  return {
    queries: ranks.length,
    recallAt1: within(1),
    recallAt5: within(5),
    recallAt10: within(10),
    mrr: ranks.reduce<number>((s, r) => s + (r === null ? 0 : 1 / r), 0) / n,
    // One relevant document per query (binary relevance): DCG@10 is 1/log2(rank+1), and the ideal DCG is 1.
    ndcgAt10: ranks.reduce<number>((s, r) => s + (r !== null && r <= 10 ? 1 / Math.log2(r + 1) : 0), 0) / n,
  };
}

/** Rank of the first hit whose path is relevant (hits of one path count once: the list a person reads). */
export async function rankOf(search: SearchService, q: QueryCase, limit: number, extra: Partial<SearchQuery> = {}): Promise<number | null> {
  const { hits } = await search.search({ query: q.query, repositories: [q.repository], limit, ...extra });
  const seen: string[] = [];
  for (const h of hits) {
    if (seen.includes(h.path)) continue;
    seen.push(h.path);
    if (q.relevant.includes(h.path)) return seen.length;
  }
  return null;
}
