import { z } from 'zod';
import { badRequest } from '../../shared/errors.ts';
import { defineTool, plural, shortSha } from './tool.ts';
import { describeCoverage, semanticCoverage } from '../../shared/semantic/coverage.ts';

const branch = z.object({
  branch: z.string(),
  status: z.enum(['pending', 'indexing', 'ready', 'failed']).describe('ready: searchable at indexedCommit'),
  indexedCommit: z.string().nullable().describe('the commit searches and files come from; null until the first run finishes'),
  indexedAt: z.string().nullable(),
  files: z.number(),
  chunks: z.number(),
  lastError: z.string().nullable().describe('why the last run failed, if it did'),
  lastJobId: z.string().nullable().describe('follow it with get_job_status'),
  semantic: z
    .object({ model: z.string(), embedded: z.number(), failed: z.number(), total: z.number(), complete: z.boolean() })
    .nullable()
    .describe("the local model's coverage: chunks with a model vector (filled in after each run, in the background) of all; until complete, search ranks the rest by full text and fast vectors; null when the model tier is off"),
});

export const listRepositoriesTool = defineTool({
  name: 'list_repositories',
  title: 'List repositories',
  description:
    'List the repositories you can search: name, instance, branch, indexed commit, status, file/chunk counts and how much of each the local model has embedded. ' +
    'Call this first to learn the repository names the other tools take.',
  inputSchema: z
    .object({
      instance: z.string().min(1).max(32).optional().describe('only repositories of this instance (one of yours); all of yours when omitted'),
    })
    .strict(),
  outputSchema: z.object({
    repositories: z.array(
      z.object({
        name: z.string(),
        instance: z.string(),
        defaultBranch: z.string().nullable().describe('the branch the other tools read'),
        branches: z.array(branch),
      }),
    ),
  }),
  annotations: { readOnlyHint: true, openWorldHint: false },

  async handler(input, ctx) {
    if (input.instance && !ctx.instances.includes(input.instance)) {
      throw badRequest(`you have no access to instance "${input.instance}": yours are ${ctx.instances.join(', ')}`, 'invalid_instance');
    }
    const list = await ctx.platform.repositories.list({ instances: input.instance ? [input.instance] : ctx.instances });
    const coverage = await semanticCoverage(ctx.platform, list.flatMap((r) => r.branches));
    const repositories = list.map((r) => ({
      name: r.name,
      instance: r.instance,
      defaultBranch: r.defaultBranch,
      branches: r.branches.map((b) => ({
        branch: b.branch,
        status: b.status,
        indexedCommit: b.indexedCommit,
        indexedAt: b.indexedAt?.toISOString() ?? null,
        files: b.fileCount,
        chunks: b.chunkCount,
        lastError: b.lastError,
        lastJobId: b.lastJobId,
        semantic: coverage(b),
      })),
    }));
    if (repositories.length === 0) {
      const canIndex = ctx.principal.scopes.includes('write') || ctx.principal.scopes.includes('admin');
      const where = input.instance ? `instance ${input.instance}` : `your instances (${ctx.instances.join(', ')})`;
      return {
        text: `No repositories in ${where} yet.${canIndex ? ' Register one with index_repository (a Git URL).' : ''}`,
        data: { repositories },
      };
    }
    const lines = [`${plural(repositories.length, 'repository')}:`];
    for (const r of repositories) {
      for (const b of r.branches) {
        const at = b.indexedCommit ? `@${shortSha(b.indexedCommit)}` : ' (not indexed yet)';
        const def = b.branch === r.defaultBranch ? '' : ' [other branch]';
        lines.push(
          `- ${r.name} (${r.instance}) ${b.branch}${at}${def}: ${b.status}, ${plural(b.files, 'file')}, ${plural(b.chunks, 'chunk')}` +
            (b.semantic && b.indexedCommit ? `, ${describeCoverage(b.semantic)}` : '') +
            (b.lastError ? ` — last error: ${b.lastError}` : ''),
        );
      }
    }
    return { text: lines.join('\n'), data: { repositories } };
  },
});
