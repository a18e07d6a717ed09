import { z } from 'zod';
import { graphFields } from './graph.schemas.ts';
import { defineTool, shortSha } from './tool.ts';
import { MAX_PATH_QUERY_LENGTH } from '../../shared/graph/graph-query.service.ts';

/**
 * get_dependencies and get_dependents differ only in direction and words:
 * both are made here, each exported from its own tool file.
 */
export function fileGraphTool(options: {
  direction: 'dependencies' | 'dependents';
  name: 'get_dependencies' | 'get_dependents';
  title: string;
  description: string;
  verb: string;
  none: string;
}) {
  return defineTool({
    name: options.name,
    title: options.title,
    description: options.description,
    inputSchema: z
      .object({
        path: z.string().min(1).max(MAX_PATH_QUERY_LENGTH).describe('repository-relative file path, e.g. src/app.ts'),
        repository: graphFields.repository.describe('repository of the file (needed when several have this path)'),
        depth: graphFields.depth,
        limit: graphFields.limit,
      })
      .strict(),
    outputSchema: z.object({
      repository: z.string(),
      branch: z.string(),
      commit: z.string(),
      path: z.string(),
      depth: z.number(),
      results: z.array(
        z.object({
          kind: z.enum(['file', 'module']).describe('file: in the repository; module: an external package'),
          name: z.string().describe('repository-relative path of a file, or the module name'),
          depth: z.number().describe('1: direct, 2: one step removed…'),
        }),
      ),
    }),
    annotations: { readOnlyHint: true, openWorldHint: false },

    async handler(input, ctx) {
      const found = await ctx.graph[options.direction](input.path, {
        instances: ctx.instances,
        ...(input.repository ? { repository: input.repository } : {}),
        depth: input.depth ?? 1,
        limit: input.limit ?? 50,
      });
      const results = found.results.map((r) => ({ kind: r.kind, name: String(r.path ?? r.module ?? ''), depth: r.depth }));
      const head = `${found.repository}:${found.path} (@${shortSha(found.commit)}, depth ${found.depth}) ${options.verb}`;
      const text =
        results.length === 0
          ? `${head}: nothing — ${options.none}`
          : [
              `${head} (${results.length}):`,
              ...results.map((r) => `- ${r.kind === 'module' ? `module ${r.name}` : r.name}${found.depth > 1 ? ` (depth ${r.depth})` : ''}`),
            ].join('\n');
      return {
        text,
        data: { repository: found.repository, branch: found.branch, commit: found.commit, path: found.path, depth: found.depth, results },
      };
    },
  });
}
