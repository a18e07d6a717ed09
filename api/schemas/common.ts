import { z } from 'zod';

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
