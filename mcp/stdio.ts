import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ConfigError, loadConfig, loadDotEnv } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createGraphQueryService } from '../shared/graph/graph-query.service.ts';
import { createRepositoryService } from '../shared/indexing/repository.service.ts';
import { createLogger } from '../shared/logger.ts';
import { createPlatform } from '../shared/platform.ts';
import { createJobStatusService } from '../shared/queue/job-status.service.ts';
import { createSearchService } from '../shared/search/hybrid-search.ts';
import { createShutdown, onSignals } from '../shared/shutdown.ts';
import { startSecretAgent } from '../shared/secrets/secret-agent.ts';
import { createMcpServer, type McpDeps } from './server.ts';
import { warmUp, warmUpEmbeddings } from './warm-up.ts';
import { loadSemanticModel } from '../shared/semantic/load.ts';

/**
 * Composition root of the MCP server over stdio, as IDE agents spawn it.
 * stdout carries the protocol and nothing else: logs go to stderr, and so
 * does any stray console.log from a dependency.
 */
async function main(): Promise<void> {
  console.log = console.error;
  console.info = console.error;
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config, { name: 'mcp-stdio', destination: 2 });
  // The process that starts first on a fresh database brings it up to date (under a lock, so racing the API is safe).
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
  const platform = createPlatform(config, logger);
  const secrets = startSecretAgent(platform, logger, { role: 'mcp-stdio' });
  await loadSemanticModel(platform, logger);

  // Whoever can spawn this process can read its config: it acts for the local user, who may read and index.
  const stdioInstances = config.mcpStdioInstances;
  const deps = {
    platform,
    search: createSearchService(platform, { logger }),
    graph: createGraphQueryService(platform),
    repos: createRepositoryService(platform),
    jobs: createJobStatusService(platform),
    principal: { name: 'stdio', scopes: ['read', 'write'], instances: stdioInstances },
    logger,
  } satisfies McpDeps;
  // The agent's first calls should not pay for cold code, connections and caches (warm-up.ts); the
  // warm-up's queries are embedded locally, never by a paid or remote API.
  const warmUpSearch = createSearchService({ ...platform, embeddings: warmUpEmbeddings(platform.embeddings) }, { logger });
  await warmUp(createMcpServer({ ...deps, search: warmUpSearch }), logger);
  const server = createMcpServer(deps);

  const shutdown = createShutdown(
    logger,
    [
      { name: 'mcp', run: () => server.close() },
      { name: 'secret agent', run: () => secrets.close() },
      { name: 'queues and stores', run: () => platform.close() },
    ],
    config.shutdownTimeoutMs,
  );
  onSignals(logger, shutdown);
  // The client closing our stdin is how an IDE ends the session; no signal follows.
  const stop = () => void shutdown().then(() => process.exit(0));
  process.stdin.once('end', stop);
  process.stdin.once('close', stop);

  await server.connect(new StdioServerTransport());
  logger.info({ instances: stdioInstances }, 'mcp server listening on stdio');
}

main().catch((err) => {
  process.stderr.write(
    err instanceof ConfigError ? `${err.message}\n` : `mcp failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
