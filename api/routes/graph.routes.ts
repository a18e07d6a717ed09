import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Metrics } from '../plugins/metrics.plugin.ts';
import type { GraphQueryService } from '../../shared/graph/graph-query.service.ts';
import { commaList, depth, errorResponses, limit } from '../schemas/common.ts';
import { MAX_PATH_QUERY_LENGTH, MAX_SYMBOL_QUERY_LENGTH } from '../../shared/graph/graph-query.service.ts';

const symbolRef = z.object({
  repository: z.string(),
  path: z.string(),
  name: z.string(),
  qualifiedName: z.string(),
  kind: z.string(),
  startLine: z.number(),
  endLine: z.number(),
});
const commitRef = z.object({ repository: z.string(), branch: z.string(), commit: z.string() });
const relatedResponse = z.object({
  symbol: z.string(),
  depth: z.number(),
  matches: z.array(symbolRef).describe('the symbols the name matched'),
  results: z.array(symbolRef.extend({ depth: z.number() })),
  commits: z.array(commitRef),
});
const fileRelations = z.object({
  repository: z.string(),
  branch: z.string(),
  commit: z.string(),
  path: z.string(),
  depth: z.number(),
  results: z.array(z.object({ kind: z.enum(['file', 'module']), path: z.string().optional(), module: z.string().optional(), depth: z.number() })),
});

export const graphRoutes: FastifyPluginAsyncZod<{ graph: GraphQueryService; metrics: Metrics }> = async (app, { graph, metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400) metrics.searchSeconds.observe({ kind: `graph:${request.routeOptions.url?.split('/').pop()}` }, reply.elapsedTime / 1000);
  });
  const read = { onRequest: app.requireScope('read') };

  app.get(
    '/graph/symbols',
    {
      ...read,
      schema: {
        tags: ['graph'],
        summary: 'Find symbols by name (exact, or prefix)',
        querystring: z.object({
          name: z.string().min(1).max(MAX_SYMBOL_QUERY_LENGTH).describe('symbol name or qualified name (Class.method)'),
          repo: commaList.optional().describe('only these repositories'),
          prefix: z.enum(['true', 'false']).optional().describe('match names starting with `name`'),
          kind: z.string().max(20).optional().describe('function, method, class, interface, type, enum, struct, trait'),
          limit,
        }),
        response: { 200: z.object({ query: z.string(), results: z.array(symbolRef), commits: z.array(commitRef) }), ...errorResponses },
      },
    },
    async (request) =>
      graph.findSymbol(request.query.name, {
        repositories: request.query.repo,
        prefix: request.query.prefix === 'true',
        kind: request.query.kind,
        limit: request.query.limit,
        instances: request.principal!.instances,
      }),
  );

  for (const direction of ['callers', 'callees'] as const) {
    app.get(
      `/graph/${direction}`,
      {
        ...read,
        schema: {
          tags: ['graph'],
          summary: direction === 'callers' ? 'Who calls a symbol, to a depth' : 'What a symbol calls, to a depth',
          querystring: z.object({
            symbol: z.string().min(1).max(MAX_SYMBOL_QUERY_LENGTH).describe('symbol name or qualified name'),
            repo: commaList.optional().describe('only these repositories'),
            path: z.string().max(MAX_PATH_QUERY_LENGTH).optional().describe('only the symbol defined in this file'),
            depth,
            limit,
          }),
          response: { 200: relatedResponse, ...errorResponses },
        },
      },
      async (request) =>
        graph[direction](request.query.symbol, {
          repositories: request.query.repo,
          path: request.query.path,
          depth: request.query.depth,
          limit: request.query.limit,
          instances: request.principal!.instances,
        }),
    );
  }

  for (const direction of ['dependencies', 'dependents'] as const) {
    app.get(
      `/graph/${direction}`,
      {
        ...read,
        schema: {
          tags: ['graph'],
          summary: direction === 'dependencies' ? 'Files and modules a file imports, to a depth' : 'Files that import a file, to a depth',
          querystring: z.object({
            path: z.string().min(1).max(MAX_PATH_QUERY_LENGTH).describe('repository-relative file path'),
            repo: z.string().max(100).optional().describe('repository (needed when several have this path)'),
            depth,
            limit,
          }),
          response: { 200: fileRelations, ...errorResponses },
        },
      },
      async (request) =>
        graph[direction](request.query.path, {
          repository: request.query.repo,
          depth: request.query.depth,
          limit: request.query.limit,
          instances: request.principal!.instances,
        }),
    );
  }

  app.get(
    '/graph/path',
    {
      ...read,
      schema: {
        tags: ['graph'],
        summary: 'Shortest call path between two symbols',
        querystring: z.object({
          from: z.string().min(1).max(MAX_SYMBOL_QUERY_LENGTH),
          to: z.string().min(1).max(MAX_SYMBOL_QUERY_LENGTH),
          repo: z.string().max(100).optional(),
          depth: z.coerce.number().int().min(1).max(10).optional().describe('longest path to look for (1-10, default 6)'),
        }),
        response: {
          200: z.object({
            from: z.string(),
            to: z.string(),
            found: z.boolean(),
            path: z.array(symbolRef),
            repository: z.string().optional(),
            branch: z.string().optional(),
            commit: z.string().optional(),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) =>
      graph.path(request.query.from, request.query.to, {
        repository: request.query.repo,
        maxDepth: request.query.depth,
        instances: request.principal!.instances,
      }),
  );

  app.get(
    '/graph/architecture',
    {
      ...read,
      schema: {
        tags: ['graph'],
        summary: "A repository's folders and the imports between them, with counts",
        querystring: z.object({
          repo: z.string().min(1).max(100),
          depth: z.coerce.number().int().min(1).max(4).optional().describe('folder levels (1-4, default 1)'),
        }),
        response: {
          200: z.object({
            repository: z.string(),
            branch: z.string(),
            commit: z.string(),
            depth: z.number(),
            folders: z.array(z.object({ folder: z.string(), files: z.number(), symbols: z.number() })),
            edges: z.array(z.object({ from: z.string(), to: z.string(), imports: z.number() })),
            externalModules: z.array(z.object({ module: z.string(), importers: z.number() })),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => graph.architecture(request.query.repo, { depth: request.query.depth, instances: request.principal!.instances }),
  );
};
