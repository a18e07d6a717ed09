import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Metrics } from '../plugins/metrics.plugin.ts';
import { SEARCH_WARNING_CODES, type SearchService } from '../../shared/search/hybrid-search.ts';
import { FILE_KINDS } from '../../shared/search/file-kind.ts';
import { commaList, errorResponses } from '../schemas/common.ts';

export const rankExplanationSchema = z
  .object({
    ranks: z.object({ model: z.number().optional(), vector: z.number().optional(), text: z.number().optional() }).describe('1-based rank of the hit in each retriever that found it'),
    similarity: z.number().optional().describe("the local model's cosine similarity of query and chunk, when the chunk has a model vector"),
    fused: z.number().describe('weighted reciprocal-rank-fusion score before re-scoring'),
    boosts: z.array(z.string()).describe('what moved it: symbol:<name> (defines an identifier the query names), non-code:<kind> ×f (demoted), central:N importers'),
  })
  .describe('why the hit ranks where it does');

export const searchHitSchema = z.object({
  repository: z.string(),
  branch: z.string(),
  commit: z.string().describe('the indexed commit this hit comes from'),
  path: z.string(),
  startLine: z.number(),
  endLine: z.number(),
  symbol: z.string().nullable(),
  kind: z.string(),
  fileKind: z.enum(FILE_KINDS).describe('what the file is for, from its path: code, test, docs, types, example, bench or config'),
  language: z.string().nullable(),
  snippet: z.string(),
  score: z.number(),
  matchedBy: z.array(z.enum(['model', 'vector', 'text'])).describe('model: the local model\'s vectors; vector: fast vectors (or the API model\'s); text: full text'),
  explain: rankExplanationSchema,
});

export const searchWarningSchema = z.object({
  code: z
    .enum(SEARCH_WARNING_CODES)
    .describe(
      'vector_search_unavailable: the query could not be embedded or the vector store did not answer; model_search_unavailable: the local model could not embed the query; semantic_coverage_incomplete: the local model has not yet embedded every chunk',
    ),
  message: z.string(),
});

export const searchRoutes: FastifyPluginAsyncZod<{ search: SearchService; metrics: Metrics }> = async (app, { search, metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400) metrics.searchSeconds.observe({ kind: 'search' }, reply.elapsedTime / 1000);
  });
  app.get(
    '/search',
    {
      onRequest: app.requireScope('read'),
      schema: {
        tags: ['search'],
        summary: 'Hybrid search: model and fast vectors (ChromaDB) and full text (Postgres) fused by reciprocal rank, re-scored, one hit per file',
        querystring: z.object({
          q: z.string().min(1).max(2000).describe('what to look for, in words or identifiers'),
          repo: commaList.optional().describe('only these repositories'),
          lang: z.string().max(50).optional().describe('only this language'),
          path: z.string().max(500).optional().describe('only paths matching this glob'),
          limit: z.coerce.number().int().min(1).max(100).optional().describe('number of results (1-100, default 10)'),
          kind: commaList
            .pipe(z.array(z.enum(FILE_KINDS)))
            .optional()
            .describe(`only files of these kinds (${FILE_KINDS.join(', ')}); all when omitted, implementation code first`),
          per_file: z.coerce.number().int().min(1).max(100).optional().describe('results of one file at most (default 1)'),
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
        kinds: request.query.kind,
        perFile: request.query.per_file,
        instances: request.principal!.instances,
      }),
  );
};
