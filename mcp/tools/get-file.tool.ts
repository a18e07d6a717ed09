import { existsSync } from 'node:fs';
import { redactSecrets } from '../../shared/redaction/secret-redaction.ts';
import path from 'node:path';
import { z } from 'zod';
import { badRequest, notFound } from '../../shared/errors.ts';
import { utf16AsUtf8, workspaceFor } from '../../shared/indexing/index-run.ts';
import { defineTool, indexedBranch, shortSha, visibleRepository, type ToolContext, type VisibleRepository } from './tool.ts';
import { MAX_PATH_QUERY_LENGTH } from '../../shared/graph/graph-query.service.ts';

/** What one call returns at most: a screenful an agent can afford, whatever the file's size. */
export const MAX_LINES = 400;
export const MAX_BYTES = 40 * 1024;

const decoder = new TextDecoder('utf-8', { fatal: false });

interface FileRow {
  blobSha: string;
  language: string | null;
}

// These two reads belong in shared/stores/chunk.repository.ts (`fileAt`, `fileChunks`); they sit here until it has them.
async function fileRow(ctx: ToolContext, repositoryId: number, branch: string, filePath: string): Promise<FileRow | null> {
  const { rows } = await ctx.platform.stores.postgres.pool.query<{ blob_sha: string; language: string | null }>(
    `SELECT blob_sha, language FROM files WHERE repository_id = $1 AND branch = $2 AND path = $3`,
    [repositoryId, branch, filePath],
  );
  return rows[0] ? { blobSha: rows[0].blob_sha, language: rows[0].language } : null;
}

async function similarPaths(ctx: ToolContext, repositoryId: number, branch: string, filePath: string): Promise<string[]> {
  const base = path.posix.basename(filePath).replace(/[\\%_]/g, (c) => `\\${c}`);
  const { rows } = await ctx.platform.stores.postgres.pool.query<{ path: string }>(
    `SELECT path FROM files WHERE repository_id = $1 AND branch = $2 AND path ILIKE '%' || $3 ORDER BY length(path), path LIMIT 5`,
    [repositoryId, branch, base],
  );
  return rows.map((r) => r.path);
}

/** The exact blob from the repository's bare mirror, or null when this process has no mirror (e.g. an API host without the workers' volume). */
async function readFromMirror(ctx: ToolContext, repo: VisibleRepository, blobSha: string): Promise<string | null> {
  const git = workspaceFor(repo, { workspaceDir: ctx.platform.config.workspaceDir, gitToken: undefined });
  if (!existsSync(path.join(git.dir, 'HEAD'))) return null;
  let content: string | null = null;
  try {
    // Decoded as the index decoded it (UTF-16 with a byte order mark too), so line numbers match its chunks.
    await git.readBlobs([blobSha], (_sha, bytes) => void (content = decoder.decode(utf16AsUtf8(bytes))));
  } catch {
    return null;
  }
  return content;
}

/**
 * The file rebuilt from its live chunks. The chunker covers every line with
 * non-whitespace content, so only whitespace-only lines can come back empty;
 * windows overlap, so each line is taken from the first chunk holding it.
 * A very long line is split into pieces with equal start and end lines,
 * which are joined again in chunk order.
 */
async function readFromChunks(ctx: ToolContext, repositoryId: number, branch: string, filePath: string): Promise<string> {
  const { rows } = await ctx.platform.stores.postgres.pool.query<{ start_line: number; end_line: number; content: string }>(
    `SELECT start_line, end_line, content FROM chunks WHERE repository_id = $1 AND branch = $2 AND path = $3 ORDER BY start_line, ordinal`,
    [repositoryId, branch, filePath],
  );
  const lines = new Map<number, string>();
  const pieces = new Map<number, string[]>();
  let last = 0;
  for (const row of rows) {
    const text = row.content.split('\n');
    last = Math.max(last, row.end_line);
    if (text.length === row.end_line - row.start_line + 1) {
      text.forEach((line, i) => {
        if (!lines.has(row.start_line + i)) lines.set(row.start_line + i, line);
      });
    } else if (row.start_line === row.end_line) {
      pieces.set(row.start_line, [...(pieces.get(row.start_line) ?? []), row.content]);
    }
  }
  const out: string[] = [];
  for (let n = 1; n <= last; n++) out.push(lines.get(n) ?? pieces.get(n)?.join('') ?? '');
  return `${out.join('\n')}\n`;
}

/**
 * The repository-relative path an agent meant: `./src/a.ts`, `/src/a.ts` and
 * `src//a.ts` are `src/a.ts`. Files are read from the index by path, never
 * from the filesystem, so `..` could reach nothing; it is refused with a
 * reason rather than answered "no such file".
 */
export function repositoryPath(input: string): string {
  const normalized = path.posix.normalize(input.trim().replace(/^\/+/, ''));
  if (normalized === '..' || normalized.startsWith('../')) {
    throw badRequest(`path "${input}" leads outside the repository: give a repository-relative path such as src/app.ts`, 'invalid_path');
  }
  const p = normalized.replace(/^\.\//, '');
  if (p === '' || p === '.' || p.endsWith('/')) {
    throw badRequest(`path "${input}" names no file: give a repository-relative file path such as src/app.ts`, 'invalid_path');
  }
  return p;
}

/** Lines without the empty string a final newline leaves behind. */
function splitLines(content: string): string[] {
  const lines = content.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export const getFileTool = defineTool({
  name: 'get_file',
  title: 'Read a file',
  description:
    `Read lines of a file at the repository's indexed commit (the commit search results come from). ` +
    `Returns at most ${MAX_LINES} lines or ${MAX_BYTES / 1024} KB per call; when cut short, the answer says which start_line to ask for next.`,
  inputSchema: z
    .object({
      repository: z.string().min(1).max(100).describe('repository name (see list_repositories)'),
      path: z.string().min(1).max(MAX_PATH_QUERY_LENGTH).describe('repository-relative file path, e.g. src/app.ts'),
      start_line: z.number().int().min(1).optional().describe('first line to return (1-based, default 1)'),
      end_line: z.number().int().min(1).optional().describe(`last line to return, inclusive (default: the end of the file, within the ${MAX_LINES}-line limit)`),
    })
    .strict(),
  outputSchema: z.object({
    repository: z.string(),
    path: z.string(),
    commit: z.string().describe('the indexed commit the content comes from'),
    language: z.string().nullable(),
    startLine: z.number(),
    endLine: z.number().describe('last line returned (inclusive); startLine - 1 for an empty file'),
    totalLines: z.number(),
    content: z.string().describe('the lines startLine..endLine, each ending in a newline'),
    truncated: z.boolean().describe('true when the limit stopped the answer before end_line (or the end of the file)'),
    nextStartLine: z.number().optional().describe('where to continue when truncated'),
    source: z.enum(['mirror', 'index']).describe('mirror: the exact Git blob; index: rebuilt from indexed chunks (whitespace-only lines may be empty)'),
  }),
  annotations: { readOnlyHint: true, openWorldHint: false },

  async handler(input, ctx) {
    const repo = await visibleRepository(ctx, input.repository);
    const branch = indexedBranch(repo);
    if (!branch) throw notFound(`repository "${repo.name}" has no indexed commit yet`, 'not_indexed');
    const filePath = repositoryPath(input.path);
    if (input.end_line !== undefined && input.start_line !== undefined && input.end_line < input.start_line) {
      throw badRequest(`end_line (${input.end_line}) is before start_line (${input.start_line})`, 'invalid_range');
    }

    const row = await fileRow(ctx, repo.id, branch.branch, filePath);
    if (!row) {
      const similar = await similarPaths(ctx, repo.id, branch.branch, filePath);
      throw notFound(
        `no indexed file "${filePath}" in ${repo.name}` +
          (similar.length ? ` (did you mean ${similar.map((p) => `"${p}"`).join(', ')}?)` : '') +
          '. Binary, vendored, generated and oversized files are not indexed',
        similar.length ? 'file_not_found_similar' : 'file_not_found',
      );
    }
    const fromMirror = await readFromMirror(ctx, repo, row.blobSha);
    const source = fromMirror === null ? ('index' as const) : ('mirror' as const);
    // The mirror holds the file as committed, keys and all (the index holds it redacted): an answer never does.
    // Redacted whole, before the range is cut, so a private key block the range starts inside is caught too.
    const lines = splitLines((await redactSecrets(fromMirror ?? (await readFromChunks(ctx, repo.id, branch.branch, filePath)))).text);
    const total = lines.length;

    const start = input.start_line ?? 1;
    if (total > 0 && start > total) throw badRequest(`${filePath} has ${total} lines; start_line ${start} is past its end`, 'invalid_range');
    const wantedEnd = Math.min(input.end_line ?? total, total);
    const picked: string[] = [];
    let bytes = 0;
    let cutLine = false;
    for (let n = start; n <= wantedEnd && picked.length < MAX_LINES; n++) {
      const line = lines[n - 1]!;
      const size = Buffer.byteLength(line) + 1;
      if (bytes + size > MAX_BYTES) {
        // A single line over the limit (minified code) is cut rather than never shown.
        if (picked.length === 0) {
          picked.push(Buffer.from(line).subarray(0, MAX_BYTES - 1).toString('utf8').replace(/\uFFFD$/, ''));
          cutLine = true;
        }
        break;
      }
      picked.push(line);
      bytes += size;
    }
    const end = start + picked.length - 1;
    const truncated = end < wantedEnd || cutLine;
    const content = picked.length ? `${picked.join('\n')}\n` : '';
    const next = end + 1;

    const header =
      total === 0
        ? `${repo.name}:${filePath} is empty (@${shortSha(branch.indexedCommit)})`
        : `${repo.name}:${filePath} lines ${start}-${end} of ${total} (@${shortSha(branch.indexedCommit)}${source === 'index' ? ', rebuilt from the index' : ''})`;
    const footer = truncated
      ? `\n[truncated at ${MAX_LINES} lines / ${MAX_BYTES / 1024} KB${cutLine ? `; line ${end} is longer and was cut` : ''}` +
        (next <= total ? `: call get_file with start_line: ${next} to read on]` : ']')
      : '';
    return {
      text: `${header}\n${content}${footer}`,
      data: {
        repository: repo.name,
        path: filePath,
        commit: branch.indexedCommit,
        language: row.language,
        startLine: start,
        endLine: total === 0 ? start - 1 : end,
        totalLines: total,
        content,
        truncated,
        ...(truncated && next <= total ? { nextStartLine: next } : {}),
        source,
      },
    };
  },
});
