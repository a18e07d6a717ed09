import { z } from 'zod';
import { commitRef, graphFields, pickSymbol, symbolLine, symbolRef } from './graph.schemas.ts';
import { defineTool, plural } from './tool.ts';
import { MAX_PATH_QUERY_LENGTH, MAX_SYMBOL_QUERY_LENGTH } from '../../shared/graph/graph-query.service.ts';

/**
 * get_callers and get_callees differ only in direction and words: both are
 * made here, each exported from its own tool file.
 */
export function callGraphTool(options: {
  direction: 'callers' | 'callees';
  name: 'get_callers' | 'get_callees';
  title: string;
  description: string;
  heading: string;
  none: string;
}) {
  return defineTool({
    name: options.name,
    title: options.title,
    description: `${options.description} Pass path when the name is defined in several files.`,
    inputSchema: z
      .object({
        symbol: z.string().min(1).max(MAX_SYMBOL_QUERY_LENGTH).describe('symbol name, or qualified name such as InvoiceService.markPaid'),
        repository: graphFields.repository,
        path: z.string().min(1).max(MAX_PATH_QUERY_LENGTH).optional().describe('only the symbol defined in this repository-relative file'),
        depth: graphFields.depth,
        limit: graphFields.limit,
      })
      .strict(),
    outputSchema: z.object({
      symbol: z.string(),
      depth: z.number(),
      matches: z.array(symbolRef).describe('the definitions the name matched'),
      results: z.array(symbolRef.extend({ depth: z.number().describe('1: direct, 2: one step removed…') })),
      commits: z.array(commitRef),
    }),
    annotations: { readOnlyHint: true, openWorldHint: false },

    async handler(input, ctx) {
      const found = await ctx.graph[options.direction](input.symbol, {
        instances: ctx.instances,
        ...(input.repository ? { repositories: [input.repository] } : {}),
        ...(input.path ? { path: input.path.trim().replace(/^\.?\/+/, '') } : {}),
        depth: input.depth ?? 1,
        limit: input.limit ?? 50,
      });
      const matches = found.matches.map(pickSymbol);
      const results = found.results.map((r) => ({ ...pickSymbol(r), depth: r.depth }));
      const head = `${options.heading} "${found.symbol}" (depth ${found.depth}; ${plural(matches.length, 'definition')}: ${matches.map((m) => symbolLine(m)).join('; ')})`;
      const text =
        results.length === 0
          ? `${head}: none — ${options.none}`
          : [`${head}:`, ...results.map((r) => `- ${symbolLine(r)}${found.depth > 1 ? ` (depth ${r.depth})` : ''}`)].join('\n');
      return { text, data: { symbol: found.symbol, depth: found.depth, matches, results, commits: found.commits } };
    },
  });
}
