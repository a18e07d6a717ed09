import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Metrics } from '../plugins/metrics.plugin.ts';
import type { SearchService } from '../../shared/search/hybrid-search.ts';
import { commaList, errorResponses } from '../schemas/common.ts';

export const searchHitSchema = z.object({
  repository: z.string(),
  branch: z.string(),
  commit: z.string().describe('the indexed commit this hit comes from'),
  path: z.string(),
  startLine: z.number(),
  endLine: z.number(),
  symbol: z.string().nullable(),
  kind: z.string(),
  language: z.string().nullable(),
  snippet: z.string(),
  score: z.number(),
  matchedBy: z.array(z.enum(['vector', 'text'])),
});

export const searchWarningSchema = z.object({
  code: z.enum(['vector_search_unavailable']).describe('vector_search_unavailable: the query could not be embedded, so hits come from full text alone'),
  message: z.string(),
});

export const searchRoutes: FastifyPluginAsyncZod<{ search: SearchService; metrics: Metrics }> = async (app, { search, metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400) metrics.searchSeconds.observe({ kind: 'search' }, reply.elapsedTime / 1000);
  });
  app.get(
    '/search',
    {
      preHandler: app.requireScope('read'),
      schema: {
        tags: ['search'],
        summary: 'Hybrid search: vectors (ChromaDB) and full text (Postgres) fused by reciprocal rank',
        querystring: z.object({
          q: z.string().min(1).max(2000).describe('what to look for, in words or identifiers'),
          repo: commaList.optional().describe('only these repositories'),
          lang: z.string().max(50).optional().describe('only this language'),
          path: z.string().max(500).optional().describe('only paths matching this glob'),
          limit: z.coerce.number().int().min(1).max(100).optional().describe('number of results (1-100, default 10)'),
        }),
        response: {
          200: z.object({
            hits: z.array(searchHitSchema),
            tookMs: z.number(),
            warnings: z.array(searchWarningSchema).describe('what made this answer weaker than usual; empty normally'),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) =>
      search.search({
        query: request.query.q,
        repositories: request.query.repo,
        language: request.query.lang,
        pathGlob: request.query.path,
        limit: request.query.limit,
        instances: request.principal!.instances,
      }),
  );
};
