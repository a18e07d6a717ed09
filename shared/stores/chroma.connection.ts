import { ChromaClient } from 'chromadb';
import { once, type StoreConnection } from './store.ts';

export interface ChromaConnection extends StoreConnection {
  client: ChromaClient;
  /** Prefix of every collection this deployment (or test) owns. */
  collectionPrefix: string;
}

export function createChromaConnection(options: { url: string; collectionPrefix: string }): ChromaConnection {
  const url = new URL(options.url);
  const client = new ChromaClient({
    host: url.hostname,
    port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    ssl: url.protocol === 'https:',
  });
  return {
    client,
    collectionPrefix: options.collectionPrefix,
    async ping() {
      await client.heartbeat();
    },
    // The client is stateless HTTP: nothing to release.
    close: once(async () => undefined),
  };
}
