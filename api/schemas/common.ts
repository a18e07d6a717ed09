import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { compilePathGlob } from '../../shared/path-glob.ts';

/** The one error shape every 4xx and 5xx answer has. */
export const errorSchema = z.object({
  error: z.string().describe('stable machine-readable code'),
  message: z.string().describe('what went wrong, in words'),
});

export const errorResponses = {
  400: errorSchema,
  401: errorSchema,
  403: errorSchema,
  404: errorSchema,
  409: errorSchema,
  422: errorSchema,
  429: errorSchema,
} as const;

export const repoName = z.string().min(1).max(100).describe('repository name');
export const depth = z.coerce.number().int().min(1).max(5).optional().describe('levels to follow (1-5, default 1)');
export const limit = z.coerce.number().int().min(1).max(200).optional().describe('at most this many results (1-200, default 50)');
export const commaList = z
  .string()
  .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
  .describe('comma-separated list');

/**
 * A name `git check-ref-format --branch` accepts. Stricter than the index
 * job's payload check (shared/queue/jobs.ts), so that every branch that passes
 * here can be enqueued: a branch refused only when the job is enqueued has
 * already been written as the repository's branch by then.
 */
export const branchName = z
  .string()
  .min(1)
  .max(255)
  .superRefine((name, ctx) => {
    const problem = branchNameProblem(name);
    if (problem) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)} is not a valid Git branch name: ${problem}` });
  });

/** Why `name` is not a branch name git accepts, or undefined when it is. */
export function branchNameProblem(name: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f~^:?*[\\]/.test(name)) return 'it may not contain whitespace, control characters or any of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'it may not contain ".."';
  if (name.includes('@{')) return 'it may not contain "@{"';
  if (name.startsWith('-')) return 'it may not start with "-"';
  if (name === '@' || name === 'HEAD') return `${name} is reserved`;
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'it may not start or end with "/" or contain "//"';
  if (name.endsWith('.')) return 'it may not end with "."';
  if (name.split('/').some((part) => part.startsWith('.') || part.endsWith('.lock'))) return 'no part of it may start with "." or end with ".lock"';
  return undefined;
}

/**
 * A repository's include or exclude glob, checked by the matcher the run will use (shared/path-glob.ts):
 * unbalanced brackets or braces would otherwise index nothing, or everything, without a word.
 */
export const indexGlob = z
  .string()
  .min(1)
  .max(500)
  .superRefine((glob, ctx) => {
    try {
      compilePathGlob(glob);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message.replace(/^path glob/, 'glob') });
    }
  });
