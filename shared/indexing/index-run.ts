import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../logger.ts';
import type { ChunkRepository, StagedChunk, StagedFile } from '../stores/chunk.repository.ts';
import { GitError, openGitWorkspace, type GitWorkspace, type TreeEntry } from '../stores/git.workspace.ts';
import type { Repository } from '../stores/repository.repository.ts';
import type { GraphFileInput } from '../stores/graph.store.ts';
import type { Chunker } from './chunker.ts';
import { addCounts, redactSecrets } from '../redaction/secret-redaction.ts';
import { AppError } from '../errors.ts';
import { createFileFilter } from './file-filter.ts';
import { detectLanguage, type Language } from './language.ts';
import { createImportResolver } from '../graph/resolve-import.ts';
import type Parser from 'web-tree-sitter';
import type { FileGraph, GraphExtractor } from '../graph/extract.ts';

export type { GraphExtractor };

/** Files per graph batch job. */
const GRAPH_BATCH_FILES = 200;
const PROJECT_CONFIGS = new Set(['tsconfig.json', 'jsconfig.json', 'go.mod']);

/**
 * The first step of a reindex: fetch, work out what changed since the
 * branch's indexed commit, chunk the changed files and stage the result.
 * Nothing here is visible to readers; `publish` does that once every batch
 * is embedded.
 */

export class IndexInputError extends Error {
  /** A failure retrying cannot fix (bad URL, missing branch, nothing to index). */
  constructor(message: string) {
    super(message);
    this.name = 'IndexInputError';
  }
}

export interface IndexProgress {
  phase: 'fetching' | 'scanning' | 'chunking' | 'embedding' | 'publishing' | 'done';
  filesTotal: number;
  filesScanned: number;
  chunks: number;
  batchesTotal: number;
  batchesDone: number;
  commit?: string;
  /** Secrets replaced by a marker in this run's files, by rule (shared/redaction/); never the values. */
  secretsRedacted?: Record<string, number>;
}

export interface PreparedRun {
  commit: string;
  /** true when the branch is already at `commit` and nothing needs doing. */
  upToDate: boolean;
  mode: 'diff' | 'reconcile';
  filesChanged: number;
  filesDeleted: number;
  chunks: number;
  batches: number;
  graphBatches: number;
  /** Secrets replaced by a marker, by rule. */
  secretsRedacted?: Record<string, number>;
}

export interface PrepareDeps {
  chunks: ChunkRepository;
  chunker: Chunker;
  logger: Logger;
  workspaceDir: string;
  gitToken: string | undefined;
  maxFileBytes: number;
  batchChunks: number;
  /** Without one, runs index text and vectors only. */
  graph?: GraphExtractor;
}

export function workspaceFor(repo: Repository, deps: Pick<PrepareDeps, 'workspaceDir' | 'gitToken'>): GitWorkspace {
  return openGitWorkspace({
    root: deps.workspaceDir,
    key: `repo-${repo.id}`,
    source: repo.sourceUrl ?? repo.localPath!,
    credentials: { token: deps.gitToken },
  });
}

/** Content-addressed chunk id: the same text at the same place of the same file keeps its id across commits. */
export function chunkId(repositoryId: number, branch: string, filePath: string, startLine: number, contentHash: string): string {
  return createHash('sha256').update(`${repositoryId}\0${branch}\0${filePath}\0${startLine}\0${contentHash}`).digest('hex').slice(0, 40);
}

export function contentHash(content: string): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Decodes bytes as UTF-8, replacing invalid sequences instead of failing the file. */
const decoder = new TextDecoder('utf-8', { fatal: false });

const utf16 = { le: new TextDecoder('utf-16le', { fatal: true }), be: new TextDecoder('utf-16be', { fatal: true }) };

/**
 * UTF-16 text that says so with its byte order mark (as Windows tools save
 * .cs, .rc or .reg files) as UTF-8; anything else as it is. Its NUL bytes made
 * such files binary, so they were never searchable. Bytes that are not valid
 * UTF-16 (a binary that happens to start with FF FE) stay as they are.
 */
export function utf16AsUtf8(bytes: Buffer): Buffer {
  if (bytes.length < 2 || bytes.length % 2 !== 0) return bytes;
  const order = bytes[0] === 0xff && bytes[1] === 0xfe ? 'le' : bytes[0] === 0xfe && bytes[1] === 0xff ? 'be' : null;
  if (!order) return bytes;
  try {
    return Buffer.from(utf16[order].decode(bytes), 'utf8');
  } catch {
    return bytes;
  }
}

export async function prepareRun(
  deps: PrepareDeps,
  run: {
    runId: string;
    repository: Repository;
    branch: string;
    indexedCommit: string | null;
    full: boolean;
    /** The commit an earlier attempt of this run chose: a retry prepares the same commit, so the batches it re-stages match the ones already embedded. */
    pinnedCommit?: string;
    /** Stage every selected file, changed or not (with `full`): the branch's vectors must all be written again. */
    restageAll?: boolean;
  },
  report: (p: IndexProgress) => Promise<void>,
  hooks: {
    /** Called once the run's commit is known (before any work), so a retry can pin it. */
    onCommit?: (commit: string) => Promise<void>;
    /**
     * Called as soon as a batch is completely staged, so its child job can start while the rest is
     * still being chunked: embedding and graph writes overlap with chunking on the other core.
     */
    onBatchReady?: (kind: 'embed' | 'graph', batch: number) => Promise<void>;
  } = {},
): Promise<PreparedRun> {
  const { repository: repo, branch } = run;
  const progress: IndexProgress = { phase: 'fetching', filesTotal: 0, filesScanned: 0, chunks: 0, batchesTotal: 0, batchesDone: 0 };
  await report(progress);

  const git = workspaceFor(repo, deps);
  let commit: string;
  try {
    commit = await git.fetch(branch);
  } catch (err) {
    if (err instanceof GitError && !err.retryable) throw new IndexInputError(err.message);
    throw err;
  }
  if (run.pinnedCommit && run.pinnedCommit !== commit && (await git.hasCommit(run.pinnedCommit))) commit = run.pinnedCommit;
  else await hooks.onCommit?.(commit);
  progress.commit = commit;
  if (!run.full && run.indexedCommit === commit) {
    return { commit, upToDate: true, mode: 'diff', filesChanged: 0, filesDeleted: 0, chunks: 0, batches: 0, graphBatches: 0 };
  }

  progress.phase = 'scanning';
  await report(progress);
  const tree = await git.listTree(commit);
  const byPath = new Map(tree.map((e) => [e.path, e]));

  const gitignoreEntries = tree.filter((e) => path.posix.basename(e.path) === '.gitignore');
  const gitignores: Array<{ dir: string; content: string }> = [];
  await git.readBlobs(
    gitignoreEntries.map((e) => e.blobSha),
    (_sha, content) => void gitignores.push({ dir: '', content: decoder.decode(content) }),
  );
  gitignoreEntries.forEach((e, i) => {
    const dir = path.posix.dirname(e.path);
    gitignores[i]!.dir = dir === '.' ? '' : dir;
  });
  const configEntries = tree.filter((e) => PROJECT_CONFIGS.has(path.posix.basename(e.path)));
  const configs: Array<{ name: string; dir: string; content: string }> = [];
  if (deps.graph) {
    let i = 0;
    await git.readBlobs(
      configEntries.map((e) => e.blobSha),
      (_sha, content) => {
        const entry = configEntries[i++]!;
        const dir = path.posix.dirname(entry.path);
        configs.push({ name: path.posix.basename(entry.path), dir: dir === '.' ? '' : dir, content: decoder.decode(content) });
      },
    );
  }
  const resolver = deps.graph
    ? createImportResolver({
        files: tree.map((e) => e.path),
        tsconfigs: configs.filter((c) => c.name !== 'go.mod'),
        goModules: configs.filter((c) => c.name === 'go.mod'),
      })
    : undefined;
  let filter: ReturnType<typeof createFileFilter>;
  try {
    filter = createFileFilter({ gitignores, include: repo.includeGlobs, exclude: repo.excludeGlobs, maxFileBytes: deps.maxFileBytes });
  } catch (err) {
    // Registration refuses such globs; one stored before it did is the repository's to fix, not a retry's.
    if (err instanceof AppError) throw new IndexInputError(`${repo.name}: ${err.message}`);
    throw err;
  }
  const selected = tree.filter((e) => filter.check(e.path, e.size).indexed);
  if (selected.length === 0) {
    throw new IndexInputError(
      `${repo.name}@${branch} has nothing to index at ${commit.slice(0, 12)}: ${tree.length} file(s), none of them text within the include/exclude rules`,
    );
  }
  const selectedPaths = new Set(selected.map((e) => e.path));
  const live = await deps.chunks.liveFiles(repo.id, branch);

  // Which files to (re)chunk and which to drop. With the old commit at hand
  // git's diff says what changed; otherwise (first run, force push, --full,
  // changed ignore rules) compare every selected file's blob id with the index.
  let mode: PreparedRun['mode'] = 'reconcile';
  let candidates: TreeEntry[];
  const deleted = new Set<string>();
  const canDiff =
    !run.full && run.indexedCommit !== null && live.size > 0 && (await git.hasCommit(run.indexedCommit));
  const diff = canDiff ? await git.diff(run.indexedCommit!, commit) : [];
  const rulesChanged = diff.some((c) => path.posix.basename(c.path) === '.gitignore' || ('from' in c && path.posix.basename(c.from) === '.gitignore'));
  if (canDiff && !rulesChanged) {
    mode = 'diff';
    candidates = [];
    for (const change of diff) {
      if (change.status === 'renamed' || change.status === 'deleted') {
        const gone = change.status === 'renamed' ? change.from : change.path;
        if (live.has(gone)) deleted.add(gone);
      }
      if (change.status === 'deleted') continue;
      const entry = byPath.get(change.path);
      if (entry && selectedPaths.has(entry.path)) candidates.push(entry);
      else if (live.has(change.path)) deleted.add(change.path);
    }
  } else {
    candidates = run.restageAll ? selected : selected.filter((e) => live.get(e.path) !== e.blobSha);
    for (const p of live.keys()) if (!selectedPaths.has(p)) deleted.add(p);
  }

  // A retry that prepares the commit an earlier attempt chose stages the same rows again (each insert is
  // idempotent) and keeps what that attempt staged: a batch job of it may be running again right now
  // (its worker killed with the run), and clearing its rows would have it embed nothing and finish.
  if (run.pinnedCommit !== commit) await deps.chunks.clearStaging(run.runId);
  progress.phase = 'chunking';
  progress.filesTotal = candidates.length;
  await report(progress);

  const stagedFiles: StagedFile[] = [...deleted].map((p) => ({ path: p, deleted: true as const }));
  let graphRows: Array<{ path: string; batch: number; graph: GraphFileInput }> = [];
  let graphFiles = 0;
  const flushGraph = async () => {
    if (graphRows.length === 0) return;
    await deps.chunks.stageGraph(run.runId, repo.id, graphRows);
    graphRows = [];
  };
  let pending: StagedChunk[] = [];
  let batch = 0;
  let inBatch = 0;
  let lastReport = Date.now();
  const flush = async () => {
    if (pending.length === 0) return;
    await deps.chunks.stageChunks(run.runId, repo.id, branch, pending);
    pending = [];
  };

  const read = await git.readBlobs(
    candidates.map((e) => e.blobSha),
    async (_sha, blob) => {
      const entry = candidates[progress.filesScanned]!;
      progress.filesScanned++;
      const bytes = utf16AsUtf8(blob);
      const verdict = filter.checkContent(entry.path, bytes);
      if (!verdict.indexed) {
        if (live.has(entry.path)) stagedFiles.push({ path: entry.path, deleted: true });
        return;
      }
      const language = detectLanguage(entry.path) ?? null;
      // A NUL past the binary sniff's window is text to us but not to Postgres (text, jsonb): in a symbol or
      // heading it failed the run's staging. It reads as a byte that is not text, like invalid UTF-8.
      // Secrets in the file are replaced before anything keeps or sends its text: the chunks staged in Postgres,
      // the documents in Chroma and the embedding requests (an external API with OPENAI_API_KEY) see markers only.
      const redaction = await redactSecrets(decoder.decode(bytes).replaceAll('\0', '\uFFFD'));
      const text = redaction.text;
      if (redaction.total > 0) progress.secretsRedacted = addCounts(progress.secretsRedacted ?? {}, redaction.byRule);
      let extracted = null as FileGraph | null;
      const pieces = await deps.chunker.chunk({
        path: entry.path,
        content: text,
        language: language ?? undefined,
        // One parse per file: the graph is read from the chunker's tree before it is freed.
        ...(deps.graph && language ? { withTree: (tree: Parser.Tree) => void (extracted = deps.graph!.extractTree(tree, language)) } : {}),
      });
      const seen = new Set<string>();
      let ordinal = 0;
      for (const piece of pieces) {
        const hash = contentHash(piece.content);
        const id = chunkId(repo.id, branch, entry.path, piece.startLine, hash);
        if (seen.has(id)) continue;
        seen.add(id);
        if (inBatch >= deps.batchChunks) {
          await flush();
          await hooks.onBatchReady?.('embed', batch);
          batch++;
          inBatch = 0;
        }
        inBatch++;
        pending.push({
          id,
          path: entry.path,
          ordinal: ordinal++,
          startLine: piece.startLine,
          endLine: piece.endLine,
          symbol: piece.symbol,
          kind: piece.kind,
          language,
          contentHash: hash,
          content: piece.content,
          batch,
        });
      }
      progress.chunks += ordinal;
      if (deps.graph && resolver && language) {
        if (extracted) {
          graphRows.push({
            path: entry.path,
            batch: Math.floor(graphFiles / GRAPH_BATCH_FILES),
            graph: toGraphInput(entry.path, language, extracted, (spec) => resolver.resolve(entry.path, language, spec)),
          });
          graphFiles++;
          if (graphFiles % GRAPH_BATCH_FILES === 0) {
            await flushGraph();
            await hooks.onBatchReady?.('graph', graphFiles / GRAPH_BATCH_FILES - 1);
          } else if (graphRows.length >= 500) await flushGraph();
        }
      }
      stagedFiles.push({ path: entry.path, deleted: false, blobSha: entry.blobSha, language, sizeBytes: entry.size, chunkCount: ordinal });
      if (pending.length >= 1000) await flush();
      if (Date.now() - lastReport > 500) {
        lastReport = Date.now();
        await report(progress);
      }
    },
  );
  await flush();
  await flushGraph();
  await deps.chunks.stageFiles(run.runId, repo.id, stagedFiles);
  const graphBatches = Math.ceil(graphFiles / GRAPH_BATCH_FILES);
  const batches = progress.chunks === 0 ? 0 : batch + 1;
  if (batches > 0) await hooks.onBatchReady?.('embed', batch);
  if (graphFiles % GRAPH_BATCH_FILES !== 0) await hooks.onBatchReady?.('graph', graphBatches - 1);

  progress.batchesTotal = batches + graphBatches;
  progress.phase = batches + graphBatches > 0 ? 'embedding' : 'publishing';
  await report(progress);
  deps.logger.info(
    // repository and branch: bound by the caller's child logger
    { commit, mode, changed: candidates.length, deleted: deleted.size, chunks: progress.chunks, batches, readAheadPeakBytes: read.peakQueuedBytes, secretsRedacted: progress.secretsRedacted ?? {} },
    'index run prepared',
  );
  return {
    commit,
    upToDate: false,
    mode,
    filesChanged: candidates.length,
    filesDeleted: stagedFiles.filter((f) => f.deleted).length,
    chunks: progress.chunks,
    batches,
    graphBatches,
    secretsRedacted: progress.secretsRedacted ?? {},
  };
}

/** One file's extraction with its imports resolved to files of the repository or to external modules. */
function toGraphInput(
  filePath: string,
  language: Language,
  graph: FileGraph,
  resolve: (specifier: string) => { kind: 'file'; path: string } | { kind: 'module'; name: string },
): GraphFileInput {
  const imports = new Map<string, GraphFileInput['imports'][number]>();
  for (const imp of graph.imports) {
    const target = resolve(imp.specifier);
    if (target.kind === 'file' && target.path === filePath) continue;
    const key = target.kind === 'file' ? `f:${target.path}` : `m:${target.name}`;
    const existing = imports.get(key);
    if (existing) existing.names = [...new Set([...existing.names, ...imp.names])];
    else imports.set(key, target.kind === 'file' ? { kind: 'file', path: target.path, names: [...imp.names] } : { kind: 'module', name: target.name, names: [...imp.names] });
  }
  // The graph keys a symbol by its file, qualified name and first line, so two definitions sharing all three
  // (`class A {} class A {}` on one line, a redefinition the parser kept twice) are one node: written as two,
  // the second broke the key's uniqueness and failed the run's graph batch, and with it the whole run.
  const symbols = new Map<string, GraphFileInput['symbols'][number]>();
  for (const s of graph.symbols) {
    const key = `${s.qualifiedName}@${s.startLine}`;
    const same = symbols.get(key);
    if (same) {
      same.endLine = Math.max(same.endLine, s.endLine);
      same.exported ||= s.exported;
      same.calls = [...new Set([...same.calls, ...s.calls])];
      same.extends = [...new Set([...same.extends, ...s.extends])];
      same.implements = [...new Set([...same.implements, ...s.implements])];
      continue;
    }
    symbols.set(key, {
      name: s.name,
      qualifiedName: s.qualifiedName,
      kind: s.kind,
      startLine: s.startLine,
      endLine: s.endLine,
      exported: s.exported,
      calls: s.calls,
      extends: s.extends,
      implements: s.implements,
    });
  }
  return { path: filePath, language, symbols: [...symbols.values()], imports: [...imports.values()] };
}
