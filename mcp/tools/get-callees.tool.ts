import { z } from 'zod';
import { commitRef, graphFields, pickSymbol, symbolLine, symbolRef } from './graph.schemas.ts';
import { defineTool, plural } from './tool.ts';

export const getCalleesTool = defineTool({
  name: 'get_callees',
  title: 'What a symbol calls',
  description:
    'Find the functions and methods a symbol calls (to a depth: their callees too…), from the code graph. ' +
    'Pass path when the name is defined in several files.',
  inputSchema: z
    .object({
      symbol: z.string().min(1).max(500).describe('symbol name, or qualified name such as InvoiceService.markPaid'),
      repository: graphFields.repository,
      path: z.string().min(1).max(1000).optional().describe('only the symbol defined in this repository-relative file'),
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
    const found = await ctx.graph.callees(input.symbol, {
      instances: ctx.instances,
      ...(input.repository ? { repositories: [input.repository] } : {}),
      ...(input.path ? { path: input.path.trim().replace(/^\.?\/+/, '') } : {}),
      depth: input.depth ?? 1,
      limit: input.limit ?? 50,
    });
    const matches = found.matches.map(pickSymbol);
    const results = found.results.map((r) => ({ ...pickSymbol(r), depth: r.depth }));
    const head = `Callees of "${found.symbol}" (depth ${found.depth}; ${plural(matches.length, 'definition')}: ${matches.map((m) => symbolLine(m)).join('; ')})`;
    const text =
      results.length === 0
        ? `${head}: none — it calls nothing the graph knows (calls into external libraries are not tracked).`
        : [`${head}:`, ...results.map((r) => `- ${symbolLine(r)}${found.depth > 1 ? ` (depth ${r.depth})` : ''}`)].join('\n');
    return { text, data: { symbol: found.symbol, depth: found.depth, matches, results, commits: found.commits } };
  },
});
