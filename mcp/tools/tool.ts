import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { AppError, errorMessage, notFound } from '../../shared/errors.ts';
import type { Repository, RepositoryBranch } from '../../shared/stores/repository.repository.ts';
import type { McpDeps, McpLogger } from '../server.ts';

/**
 * The contract every tool file follows: a name, a description the model reads
 * to decide when to call it, zod input and output schemas, and a handler that
 * returns a short readable text plus the same answer as structured content.
 * Domain failures are thrown as AppError (4xx) and become `isError` results.
 */

export interface ToolContext extends McpDeps {
  /** The principal's instances with `*` expanded: what every query is scoped to. */
  instances: string[];
  extra: RequestHandlerExtra<ServerRequest, ServerNotification>;
}

export interface ToolOutput<T> {
  text: string;
  data: T;
}

export interface McpTool<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  name: string;
  title: string;
  description: string;
  inputSchema: I;
  outputSchema: O;
  annotations: ToolAnnotations;
  handler(input: z.output<I>, ctx: ToolContext): Promise<ToolOutput<z.output<O>>>;
}

/** Identity, so that each tool file gets its handler's types checked against its own schemas. */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(tool: McpTool<I, O>): McpTool<I, O> {
  return tool;
}

/** What the model should try next after a failure with this code; the codes are the services' own. */
const HINTS: Record<string, string> = {
  repository_not_found: 'Call list_repositories to see the repositories you can use.',
  not_indexed: 'Call index_repository to index it, or get_job_status to follow a running job.',
  symbol_not_found: 'Try find_symbol with prefix: true, or semantic_search to find it by meaning.',
  file_not_found: 'Check the path (repository-relative, e.g. src/app.ts) with semantic_search or get_architecture.',
  ambiguous_file: 'Pass repository to say which one.',
  invalid_glob: 'Use a glob such as "src/**/*.ts".',
};

export function toolError(message: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: message }] };
}

/**
 * Turns any failure into a tool result: AppErrors carry messages written for
 * callers; anything else is an internal error, logged here and not shown, as
 * for the HTTP API's 5xx.
 */
export function failureResult(tool: string, err: unknown, logger: McpLogger | undefined): CallToolResult {
  if (err instanceof AppError) {
    if (err.statusCode >= 500) logger?.warn({ tool, code: err.code, err: err.message }, 'mcp tool failed');
    const hint = HINTS[err.code];
    return toolError(hint ? `${err.message}. ${hint}` : err.message);
  }
  logger?.error({ tool, err: errorMessage(err), stack: err instanceof Error ? err.stack : undefined }, 'mcp tool failed');
  return toolError(`${tool} failed with an internal error (details are in the server log). Retrying later may help.`);
}

/** The principal's instances; `*` (a token for every instance) means every configured one. */
export function resolveInstances(principal: McpDeps['principal'], configured: string[]): string[] {
  return principal.instances.includes('*') ? [...configured] : [...new Set(principal.instances)];
}

export type VisibleRepository = Repository & { branches: RepositoryBranch[] };

/** A repository the caller may see, by name; other instances' repositories do not exist for them. */
export async function visibleRepository(ctx: ToolContext, name: string): Promise<VisibleRepository> {
  const all = await ctx.platform.repositories.list({ instances: ctx.instances });
  const repo = all.find((r) => r.name === name);
  if (!repo) throw notFound(`no repository named "${name}"`, 'repository_not_found');
  return repo;
}

/** The branch readers see (the default one) when it has an indexed commit. */
export function indexedBranch(repo: VisibleRepository): (RepositoryBranch & { indexedCommit: string }) | undefined {
  const b = repo.branches.find((x) => x.branch === repo.defaultBranch);
  return b?.indexedCommit ? (b as RepositoryBranch & { indexedCommit: string }) : undefined;
}

export const shortSha = (sha: string) => sha.slice(0, 12);

/** `repo:path:12-30`, the form agents paste into their next call. */
export const location = (repository: string, path: string, startLine: number, endLine: number) =>
  `${repository}:${path}:${startLine === endLine ? startLine : `${startLine}-${endLine}`}`;

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
