import http from 'node:http';
import https from 'node:https';
import { ChromaClient, type Collection } from 'chromadb';
import { once, type StoreConnection } from './store.ts';

/** A Chroma HTTP answer of 4xx/5xx: the status and Chroma's own message. */
export class ChromaHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ChromaHttpError';
  }
}

/**
 * Record reads and writes of one collection straight over Chroma's v2 HTTP
 * API. The chromadb client sends each request through WHATWG fetch and
 * base64-encodes vectors byte by byte in JavaScript: measured on 2 cores,
 * that costs the calling process ~3 ms of CPU per query and ~0.15 ms per
 * upserted vector, as much as Chroma spends answering. These are the same
 * endpoints and bodies the client sends, over a keep-alive `node:http` agent.
 * Collections are still created, listed and dropped through the client.
 */
export interface ChromaRecords {
  upsert(collection: Collection, records: { ids: string[]; embeddings: number[][]; metadatas: Array<Record<string, string | number | boolean>> }): Promise<void>;
  query(collection: Collection, embedding: number[], nResults: number): Promise<{ ids: string[]; distances: number[] }>;
  delete(collection: Collection, ids: string[]): Promise<void>;
}

export interface ChromaConnection extends StoreConnection {
  client: ChromaClient;
  records: ChromaRecords;
  /** Prefix of every collection this deployment (or test) owns. */
  collectionPrefix: string;
}

/** A write of 1,000 vectors takes about a second; a minute means Chroma is stuck, not busy. */
const REQUEST_TIMEOUT_MS = 60_000;

/** Float32 little-endian, base64: the encoding Chroma takes for embeddings when it announces `supports_base64_encoding`. */
function base64Vector(v: number[]): string {
  return Buffer.from(Float32Array.from(v).buffer).toString('base64');
}

export function createChromaConnection(options: { url: string; collectionPrefix: string }): ChromaConnection {
  const url = new URL(options.url);
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  const client = new ChromaClient({ host: url.hostname, port, ssl: secure });
  const transport = secure ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: 64 });
  const basePath = url.pathname.replace(/\/+$/, '');

  function post<T>(collection: Collection, action: string, body: unknown): Promise<T> {
    const payload = Buffer.from(JSON.stringify(body));
    const path = `${basePath}/api/v2/tenants/${encodeURIComponent(collection.tenant)}/databases/${encodeURIComponent(collection.database)}/collections/${encodeURIComponent(collection.id)}/${action}`;
    return new Promise<T>((resolve, reject) => {
      const req = transport.request(
        { hostname: url.hostname, port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 400) {
              let message = text;
              try {
                const parsed = JSON.parse(text) as { message?: string; error?: string };
                message = parsed.message ?? parsed.error ?? text;
              } catch {
                // not JSON: keep the text
              }
              reject(new ChromaHttpError(status, `chroma ${action} failed (${status}): ${message.slice(0, 500)}`));
              return;
            }
            try {
              resolve((text ? JSON.parse(text) : undefined) as T);
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`chroma ${action} timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  const records: ChromaRecords = {
    async upsert(collection, r) {
      await post(collection, 'upsert', { ids: r.ids, embeddings: r.embeddings.map(base64Vector), metadatas: r.metadatas });
    },
    async query(collection, embedding, nResults) {
      const result = await post<{ ids: string[][]; distances: Array<Array<number | null>> | null }>(collection, 'query', {
        query_embeddings: [embedding],
        n_results: nResults,
        include: ['distances'],
      });
      const ids = result.ids[0] ?? [];
      const distances = result.distances?.[0] ?? [];
      return { ids, distances: ids.map((_, i) => distances[i] ?? 1) };
    },
    async delete(collection, ids) {
      await post(collection, 'delete', { ids });
    },
  };

  return {
    client,
    records,
    collectionPrefix: options.collectionPrefix,
    async ping() {
      await client.heartbeat();
    },
    close: once(async () => agent.destroy()),
  };
}
