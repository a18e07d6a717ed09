import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { findNulCharacter, nulCharacterMessage } from '../shared/errors.ts';
import type { GraphQueryService } from '../shared/graph/graph-query.service.ts';
import type { RepositoryService } from '../shared/indexing/repository.service.ts';
import type { Logger } from '../shared/logger.ts';
import type { Platform } from '../shared/platform.ts';
import type { JobStatusService } from '../shared/queue/job-status.service.ts';
import type { SearchService } from '../shared/search/hybrid-search.ts';
import { findSymbolTool } from './tools/find-symbol.tool.ts';
import { getArchitectureTool } from './tools/get-architecture.tool.ts';
import { getCalleesTool } from './tools/get-callees.tool.ts';
import { getCallersTool } from './tools/get-callers.tool.ts';
import { getDependenciesTool } from './tools/get-dependencies.tool.ts';
import { getDependentsTool } from './tools/get-dependents.tool.ts';
import { getFileTool } from './tools/get-file.tool.ts';
import { getJobStatusTool } from './tools/get-job-status.tool.ts';
import { indexRepositoryTool } from './tools/index-repository.tool.ts';
import { listRepositoriesTool } from './tools/list-repositories.tool.ts';
import { semanticSearchTool } from './tools/semantic-search.tool.ts';
import { failureResult, resolveInstances, toolError, type McpTool } from './tools/tool.ts';

export const MCP_SERVER_NAME = 'personal-knowledge-mcp';
export const MCP_SERVER_VERSION = '0.1.0';

export type Scope = 'read' | 'write' | 'admin';

export interface McpPrincipal {
  name: string;
  scopes: Scope[];
  /** Instance names, or `*` for every configured instance. */
  instances: string[];
}

export interface McpDeps {
  platform: Platform;
  search: SearchService;
  graph: GraphQueryService;
  repos: RepositoryService;
  jobs: JobStatusService;
  /** the caller's rights */
  principal: McpPrincipal;
  /** Where internal tool failures are logged (stderr under stdio); they are not shown to the client. */
  logger?: McpLogger;
}

/** What tools log through: pino's and Fastify's loggers both fit. */
export type McpLogger = Pick<Logger, 'warn' | 'error'>;

/** Every tool the server offers, in the order clients list them. */
export const TOOL_NAMES = [
  semanticSearchTool.name,
  listRepositoriesTool.name,
  getFileTool.name,
  findSymbolTool.name,
  getCallersTool.name,
  getCalleesTool.name,
  getDependenciesTool.name,
  getDependentsTool.name,
  getArchitectureTool.name,
  indexRepositoryTool.name,
  getJobStatusTool.name,
] as const;

const INSTRUCTIONS = `Code knowledge over the repositories indexed on this server.
Start with list_repositories to learn repository names. semantic_search finds code by meaning or identifier and returns
paths with line ranges; get_file reads the lines. find_symbol, get_callers, get_callees, get_dependencies,
get_dependents and get_architecture answer structural questions from the code graph. Every answer comes from each
repository's indexed commit; index_repository brings a repository up to date.`;

/**
 * One MCP server per connection (stdio process, HTTP session): the principal
 * is fixed for its lifetime and scopes every query to the principal's instances.
 */
export function createMcpServer(deps: McpDeps): McpServer {
  const server = new McpServer({ name: MCP_SERVER_NAME, version: MCP_SERVER_VERSION }, { instructions: INSTRUCTIONS });
  const instances = resolveInstances(deps.principal, deps.platform.config.instances);

  function add<I extends z.ZodObject, O extends z.ZodObject>(tool: McpTool<I, O>): void {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        // Widened: the SDK's callback type cannot resolve against a generic schema; `tool` checked its own types.
        inputSchema: tool.inputSchema as z.ZodObject,
        outputSchema: tool.outputSchema as z.ZodObject,
        annotations: tool.annotations,
      },
      async (args, extra): Promise<CallToolResult> => {
        // Checked here for every tool: Postgres cannot take a NUL, and a query carrying one failed as an internal error.
        const nul = findNulCharacter(args);
        if (nul !== undefined) return toolError(`Invalid arguments for tool ${tool.name}: ${nulCharacterMessage(nul)}`);
        try {
          const { text, data } = await tool.handler(args as z.output<I>, { ...deps, instances, extra });
          return { content: [{ type: 'text', text }], structuredContent: data as Record<string, unknown> };
        } catch (err) {
          return failureResult(tool.name, err, deps.logger);
        }
      },
    );
  }

  add(semanticSearchTool);
  add(listRepositoriesTool);
  add(getFileTool);
  add(findSymbolTool);
  add(getCallersTool);
  add(getCalleesTool);
  add(getDependenciesTool);
  add(getDependentsTool);
  add(getArchitectureTool);
  add(indexRepositoryTool);
  add(getJobStatusTool);
  return server;
}
