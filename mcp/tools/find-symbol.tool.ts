import { z } from 'zod';
import { notFound } from '../../shared/errors.ts';
import { commitRef, graphFields, pickSymbol, symbolLine, symbolRef } from './graph.schemas.ts';
import { defineTool, plural } from './tool.ts';
import { MAX_SYMBOL_QUERY_LENGTH } from '../../shared/graph/graph-query.service.ts';

export const findSymbolTool = defineTool({
  name: 'find_symbol',
  title: 'Find a symbol definition',
  description:
    'Find where a function, method, class or type is defined, by name or qualified name (Class.method), from the code graph. ' +
    'Returns file paths and line ranges; read the code with get_file.',
  inputSchema: z
    .object({
      name: z.string().min(1).max(MAX_SYMBOL_QUERY_LENGTH).describe('symbol name, or qualified name such as InvoiceService.markPaid'),
      repository: graphFields.repository,
      kind: z.string().min(1).max(20).optional().describe('only this kind: function, method, class, interface, type, enum, struct, trait'),
      prefix: z.boolean().optional().describe('also match names starting with `name` (default false)'),
      limit: graphFields.limit,
    })
    .strict(),
  outputSchema: z.object({
    query: z.string(),
    results: z.array(symbolRef),
    commits: z.array(commitRef).describe('the indexed commits searched'),
  }),
  annotations: { readOnlyHint: true, openWorldHint: false },

  async handler(input, ctx) {
    const found = await ctx.graph.findSymbol(input.name, {
      instances: ctx.instances,
      ...(input.repository ? { repositories: [input.repository] } : {}),
      ...(input.kind ? { kind: input.kind } : {}),
      prefix: input.prefix ?? false,
      limit: input.limit ?? 50,
    });
    if (found.results.length === 0) {
      throw notFound(`no symbol named "${found.query}"${input.kind ? ` of kind ${input.kind}` : ''} in the code graph`, 'symbol_not_found');
    }
    const results = found.results.map(pickSymbol);
    return {
      text: [`${plural(results.length, 'definition')} of "${found.query}":`, ...results.map((s) => `- ${symbolLine(s)}`)].join('\n'),
      data: { query: found.query, results, commits: found.commits },
    };
  },
});
