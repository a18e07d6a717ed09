import { z } from 'zod';
import { notFound } from '../../shared/errors.ts';
import type { JobView } from '../../shared/queue/job-status.service.ts';
import { defineTool, plural, shortSha, type ToolContext } from './tool.ts';

export const jobProgressSchema = z.object({
  phase: z.string().optional().describe('fetching, scanning, chunking, embedding, publishing, done'),
  filesScanned: z.number().optional(),
  filesTotal: z.number().optional(),
  chunks: z.number().optional(),
  batchesDone: z.number().optional().describe('embedding and graph batches finished'),
  batchesTotal: z.number().optional(),
  commit: z.string().optional().describe('the commit being indexed'),
});

export const jobSummarySchema = z.object({
  id: z.string(),
  name: z.string().describe('index-repository, embed-batch, graph-batch…'),
  repository: z.string().nullable(),
  state: z.string().describe('waiting, active, waiting-children (batches running), delayed (retry pending), completed, failed'),
  progress: jobProgressSchema,
  attempts: z.number(),
  failedReason: z.string().optional(),
  result: z.record(z.string(), z.unknown()).optional().describe("the job's return value once completed"),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
});

export type JobSummary = z.infer<typeof jobSummarySchema>;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A job view in the compact form tools return; live batch counts win over the last progress the job wrote. */
export function summarizeJob(view: JobView, repository: string | null): JobSummary {
  const p = (view.progress && typeof view.progress === 'object' ? view.progress : {}) as Record<string, unknown>;
  const progress: JobSummary['progress'] = {};
  if (typeof p.phase === 'string') progress.phase = p.phase;
  for (const key of ['filesScanned', 'filesTotal', 'chunks', 'batchesDone', 'batchesTotal'] as const) {
    const v = num(p[key]);
    if (v !== undefined) progress[key] = v;
  }
  if (typeof p.commit === 'string') progress.commit = p.commit;
  if (view.batches) {
    progress.batchesDone = view.batches.done;
    progress.batchesTotal = view.batches.total;
  }
  return {
    id: view.id,
    name: view.name,
    repository,
    state: view.state,
    progress,
    attempts: view.attempts,
    ...(view.failedReason ? { failedReason: view.failedReason } : {}),
    ...(view.result && typeof view.result === 'object' ? { result: view.result as Record<string, unknown> } : {}),
    createdAt: view.createdAt,
    ...(view.finishedAt ? { finishedAt: view.finishedAt } : {}),
  };
}

export function describeJob(job: JobSummary): string {
  const subject = `job ${job.id} (${job.name}${job.repository ? `, ${job.repository}` : ''})`;
  const p = job.progress;
  if (job.state === 'failed') return `${subject} failed after ${plural(job.attempts, 'attempt')}: ${job.failedReason ?? 'no reason recorded'}`;
  if (job.state === 'completed') {
    const r = job.result ?? {};
    if (r.upToDate === true) return `${subject} completed: already up to date at ${shortSha(String(r.commit ?? p.commit ?? ''))}`;
    const parts = [
      r.commit || p.commit ? `indexed ${shortSha(String(r.commit ?? p.commit))}` : 'done',
      num(r.filesChanged) !== undefined ? `${plural(num(r.filesChanged)!, 'file')} changed` : undefined,
      num(r.chunks) !== undefined ? plural(num(r.chunks)!, 'chunk') : undefined,
    ].filter(Boolean);
    return `${subject} completed: ${parts.join(', ')}`;
  }
  const detail =
    p.batchesTotal
      ? `${p.phase ?? 'embedding'}, ${p.batchesDone ?? 0}/${p.batchesTotal} batches`
      : p.filesTotal
        ? `${p.phase ?? 'scanning'}, ${p.filesScanned ?? 0}/${p.filesTotal} files`
        : p.phase;
  return `${subject} ${job.state}${detail ? `: ${detail}` : ''}${job.attempts > 0 && job.state !== 'active' ? ` (${plural(job.attempts, 'attempt')} so far)` : ''}`;
}

/**
 * A job the caller may see: one of a repository in their instances, or, for
 * admins, one that belongs to no repository (maintenance). Others do not exist.
 */
export async function visibleJob(ctx: ToolContext, id: string): Promise<JobSummary> {
  const view = await ctx.jobs.get(id);
  const repos = await ctx.platform.repositories.list({ instances: ctx.instances });
  const repo = view?.repositoryId === undefined ? undefined : repos.find((r) => r.id === view.repositoryId);
  const visible = view && (repo || (view.repositoryId === undefined && ctx.principal.scopes.includes('admin')));
  if (!view || !visible) throw notFound(`no job with id "${id}" (finished jobs are kept for 7 days, failed ones for 30)`, 'job_not_found');
  return summarizeJob(view, repo?.name ?? null);
}

export const getJobStatusTool = defineTool({
  name: 'get_job_status',
  title: 'Job status',
  description: 'State, progress and failure reason of a background job, such as the index run index_repository started.',
  inputSchema: z
    .object({
      job_id: z.string().min(1).max(200).describe('the job id index_repository returned'),
    })
    .strict(),
  outputSchema: jobSummarySchema,
  annotations: { readOnlyHint: true, openWorldHint: false },

  async handler(input, ctx) {
    const job = await visibleJob(ctx, input.job_id);
    return { text: describeJob(job), data: job };
  },
});
