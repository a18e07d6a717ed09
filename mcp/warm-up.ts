import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { EmbeddingProvider } from '../shared/embeddings/embedding-provider.ts';
import { LocalEmbeddingProvider } from '../shared/embeddings/local.provider.ts';
import type { Logger } from '../shared/logger.ts';

/** Words any code base has: each warm-up search walks the whole path (catalog, both retrievers, snippets). */
const WARM_UP_QUERIES = ['function', 'error handling', 'parse the input', 'config', 'request', 'test', 'create a new instance', 'read file'];

/**
 * Runs a few `semantic_search` calls through a private copy of the server
 * (over the SDK's in-memory transport) before the real transport opens. An
 * IDE spawns one stdio server per session, so without this its agent's first
 * calls run cold: code not yet compiled by V8, no database connections, no
 * prepared statements, no Chroma collection handles. Measured on 2 cores
 * against a 6,000-file index, one client's first five calls took 34 ms each,
 * the thirty after them 14 ms and later ones 9 ms; the 24 warm-up calls take
 * about half a second there (longer when many servers start at once, hence
 * the time bound of 3 s).
 *
 * The bound holds whatever the calls do: when it passes, warm-up returns and
 * the call in flight is cancelled and left to finish on its own (its result is
 * dropped). Failures are only logged: a server with nothing indexed, or a
 * store that is slow to answer, still starts, at most `budgetMs` late.
 */
export async function warmUp(server: McpServer, logger: Logger, options: { calls?: number; budgetMs?: number } = {}): Promise<{ calls: number; ms: number }> {
  const calls = options.calls ?? 24;
  const budgetMs = options.budgetMs ?? 3000;
  const started = performance.now();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'pk-mcp-warm-up', version: '1' });
  const abandon = new AbortController();
  let done = 0;
  let timer: NodeJS.Timeout | undefined;
  const outOfTime = new Promise<'out of time'>((resolve) => {
    timer = setTimeout(() => resolve('out of time'), budgetMs);
  });
  const work = (async () => {
    await server.connect(serverSide);
    await client.connect(clientSide);
    await client.listTools(undefined, { signal: abandon.signal });
    // Checked before each call as well: a call is not started when the time is already spent.
    while (done < calls && !abandon.signal.aborted && performance.now() - started < budgetMs) {
      const query = WARM_UP_QUERIES[done % WARM_UP_QUERIES.length]!;
      await client.callTool({ name: 'semantic_search', arguments: { query, limit: 10 } }, undefined, { signal: abandon.signal });
      done++;
    }
  })();
  // Rejects late when abandoned; nobody waits for it then.
  work.catch(() => undefined);
  try {
    if ((await Promise.race([work, outOfTime])) === 'out of time') {
      logger.warn({ calls: done, budgetMs }, 'mcp warm-up ran out of time; serving without finishing it');
    }
  } catch (err) {
    logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'mcp warm-up stopped early');
  } finally {
    clearTimeout(timer);
    abandon.abort();
    // In-memory transports close at once; the server's handler still running is not waited for.
    await client.close().catch(() => undefined);
    await server.close().catch(() => undefined);
  }
  const ms = Math.round(performance.now() - started);
  logger.debug({ calls: done, ms }, 'mcp warm-up done');
  return { calls: done, ms };
}

/**
 * The embedding provider warm-up searches use. It must never be a paid or
 * remote one: with OpenAI every stdio start (one per IDE session) would send
 * 24 billable requests that count against the account's rate limit, for
 * queries nobody asked, and with the server down it would wait on retries.
 * What warming is for (compiled code, connections, prepared statements,
 * collection handles) does not need the real vector: the local hashing
 * provider gives one of the same size at once, so the Chroma query path runs
 * as it will later. The local provider itself is free, so it is used as it is.
 */
export function warmUpEmbeddings(provider: EmbeddingProvider): EmbeddingProvider {
  if (provider instanceof LocalEmbeddingProvider) return provider;
  return new LocalEmbeddingProvider({ dimensions: provider.dimensions });
}
