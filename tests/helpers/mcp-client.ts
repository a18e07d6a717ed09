import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createMcpServer, type McpPrincipal } from '../../mcp/server.ts';
import { createGraphQueryService } from '../../shared/graph/graph-query.service.ts';
import type { Platform } from '../../shared/platform.ts';
import { createJobStatusService } from '../../shared/queue/job-status.service.ts';
import { createSearchService } from '../../shared/search/hybrid-search.ts';
import { silentLogger } from './context.ts';
import type { TestPlatform } from './platform.ts';

/**
 * An MCP client connected in memory to a server over the test platform, or
 * over a variant of its platform (another embedding provider, another
 * Chroma), with one principal (read access to every instance by default).
 */
export async function connectMcpClient(
  t: TestPlatform,
  options: { platform?: Platform; principal?: McpPrincipal } = {},
): Promise<{ client: Client; close(): Promise<void> }> {
  const platform = options.platform ?? t.platform;
  const server = createMcpServer({
    platform,
    search: platform === t.platform ? t.search : createSearchService(platform),
    graph: createGraphQueryService(platform),
    repos: t.repos,
    jobs: createJobStatusService(platform),
    principal: options.principal ?? { name: 'test', scopes: ['read'], instances: ['*'] },
    logger: silentLogger,
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'test', version: '1' });
  await server.connect(serverSide);
  await client.connect(clientSide);
  return {
    client,
    async close() {
      await client.close();
      await server.close();
    },
  };
}
