import { z } from 'zod';
import { notFound } from '../../shared/errors.ts';
import { defineTool, location, plural, shortSha } from './tool.ts';
import { FILE_KINDS } from '../../shared/search/file-kind.ts';
import { SEARCH_WARNING_CODES } from '../../shared/search/hybrid-search.ts';

/** Snippets are for recognising a hit, not reading it (get_file does that): a few lines keep a result list cheap. */
const SNIPPET_LINES = 8;
const SNIPPET_CHARS = 400;

function shortSnippet(snippet: string): string {
  const lines = snippet.split('\n');
  let out = lines.slice(0, SNIPPET_LINES).join('\n');
  if (out.length > SNIPPET_CHARS) out = `${out.slice(0, SNIPPET_CHARS)}…`;
  else if (lines.length > SNIPPET_LINES) out += '\n…';
  return out;
}

const hit = z.object({
  repository: z.string().describe('repository name'),
  path: z.string().describe('repository-relative file path'),
  startLine: z.number().describe('first line of the chunk (1-based)'),
  endLine: z.number().describe('last line of the chunk (inclusive)'),
  symbol: z.string().nullable().describe('function, method, class or heading the chunk is, when known'),
  kind: z.string().describe('function, method, class, section, window…'),
  language: z.string().nullable(),
  fileKind: z.enum(FILE_KINDS).describe('what the file is for: code, test, docs, types, example, bench or config'),
  score: z.number().describe('ranking score; higher is better'),
  snippet: z.string().describe('a few lines of the chunk, from just above the line that best matches the query'),
  why: z
    .object({
      ranks: z.object({ model: z.number().optional(), vector: z.number().optional(), text: z.number().optional() }).describe('rank in each retriever that found it (model: local model vectors, vector: fast vectors, text: full text)'),
      similarity: z.number().optional().describe("the local model's query-chunk similarity"),
      boosts: z.array(z.string()).describe('what moved it: symbol:<name>, non-code:<kind>, central:N importers'),
    })
    .describe('why it ranks here'),
});

export const semanticSearchTool = defineTool({
  name: 'semantic_search',
  title: 'Search code',
  description:
    'Search the indexed repositories by meaning and by identifier (vector + full-text, fused). ' +
    'Returns file paths with line ranges and short snippets; read more with get_file. ' +
    'Use natural language ("retry with exponential backoff") or names ("parseSettings").',
  inputSchema: z
    .object({
      query: z.string().min(1).max(2000).describe('what to look for: a description of the code, or identifiers'),
      repository: z.string().min(1).max(100).optional().describe('only this repository (see list_repositories); all when omitted'),
      language: z.string().min(1).max(30).optional().describe('only this language, e.g. typescript, python, go, java, rust, markdown'),
      path_glob: z.string().min(1).max(500).optional().describe('only paths matching this glob, e.g. "src/**/*.ts"'),
      limit: z.number().int().min(1).max(50).optional().describe('at most this many results (1-50, default 10)'),
      kind: z
        .array(z.enum(FILE_KINDS))
        .min(1)
        .optional()
        .describe('only files of these kinds, e.g. ["test"] to find tests or ["docs"]; all when omitted, implementation code ranked first'),
      per_file: z.number().int().min(1).max(20).optional().describe('results of one file at most (default 1, so the list spans files)'),
    })
    .strict(),
  outputSchema: z.object({
    query: z.string(),
    results: z.array(hit),
    commits: z.array(z.object({ repository: z.string(), branch: z.string(), commit: z.string() })).describe('the indexed commit each result comes from'),
    warnings: z
      .array(z.object({ code: z.enum(SEARCH_WARNING_CODES), message: z.string() }))
      .describe('what made this answer weaker than usual, e.g. vector search unavailable, or the local model still embedding a repository; empty normally'),
  }),
  annotations: { readOnlyHint: true, openWorldHint: false },

  async handler(input, ctx) {
    // The search service refuses an unknown language or a bad glob with a message naming the valid ones.
    const { hits, warnings } = await ctx.search.search({
      query: input.query,
      instances: ctx.instances,
      ...(input.repository ? { repositories: [input.repository] } : {}),
      ...(input.language ? { language: input.language } : {}),
      ...(input.path_glob ? { pathGlob: input.path_glob } : {}),
      limit: input.limit ?? 10,
      ...(input.kind ? { kinds: input.kind } : {}),
      ...(input.per_file ? { perFile: input.per_file } : {}),
    });
    if (hits.length === 0) {
      const filters = [input.repository && `repository ${input.repository}`, input.language && `language ${input.language}`, input.path_glob && `paths ${input.path_glob}`].filter(Boolean);
      throw notFound(
        `no indexed code matched "${input.query}"${filters.length ? ` with ${filters.join(', ')}` : ''}` +
          `${warnings.map((w) => `; ${w.message}`).join('')}. ` +
          `Try other words or fewer filters; list_repositories shows what is indexed`,
        'no_results',
      );
    }
    const results = hits.map((h) => ({
      repository: h.repository,
      path: h.path,
      startLine: h.startLine,
      endLine: h.endLine,
      symbol: h.symbol,
      kind: h.kind,
      language: h.language,
      fileKind: h.fileKind,
      score: h.score,
      snippet: shortSnippet(h.snippet),
      why: { ranks: h.explain.ranks, ...(h.explain.similarity === undefined ? {} : { similarity: h.explain.similarity }), boosts: h.explain.boosts },
    }));
    const commits = [...new Map(hits.map((h) => [h.repository, { repository: h.repository, branch: h.branch, commit: h.commit }])).values()];
    const lines = [
      ...warnings.map((w) => `Warning: ${w.message}.`),
      `${plural(results.length, 'result')} for "${input.query}" (${commits.map((c) => `${c.repository}@${shortSha(c.commit)}`).join(', ')}):`,
    ];
    results.forEach((r, i) => {
      lines.push(`${i + 1}. ${location(r.repository, r.path, r.startLine, r.endLine)}${r.symbol ? ` ${r.kind} ${r.symbol}` : ''}`);
      lines.push(r.snippet.replace(/^/gm, '   '));
    });
    return { text: lines.join('\n'), data: { query: input.query, results, commits, warnings } };
  },
});
