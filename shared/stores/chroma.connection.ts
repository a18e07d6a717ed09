import http from 'node:http';
import https from 'node:https';
import { ChromaClient, ChromaConnectionError, ChromaServerError, type Collection } from 'chromadb';
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

/** Chroma could not be reached, did not answer in time, or failed on its side (5xx): retrying later may help. */
export class ChromaUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChromaUnavailableError';
  }
}

/** Whether an error from Chroma (this module's requests or the chromadb client's) means it is down, not that the call was wrong. */
export function isChromaUnavailable(err: unknown): boolean {
  return (
    err instanceof ChromaUnavailableError ||
    err instanceof ChromaConnectionError ||
    err instanceof ChromaServerError ||
    (err instanceof ChromaHttpError && err.status >= 500)
  );
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
  /** How long a read (a query, opening a collection) may take before Chroma counts as unavailable. */
  readTimeoutMs: number;
}

/** `promise`, or a ChromaUnavailableError once `ms` have passed (the call itself is left to finish). */
export function withinChromaDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChromaUnavailableError(`chroma ${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A write of 1,000 vectors takes about a second; a minute means Chroma is stuck, not busy. */
const REQUEST_TIMEOUT_MS = 60_000;

/** A query (or opening a collection) takes milliseconds; someone waits for it, and search can answer from full text without it. */
const QUERY_TIMEOUT_MS = 5_000;

/** Queries sent in one request at most: a burst larger than this goes out in several. */
const MAX_QUERY_BATCH = 32;

/** Queries waiting for one collection and result size; the lane exists while a request of it is in flight. */
type QueryLane = Array<{ embedding: number[]; resolve: (r: { ids: string[]; distances: number[] }) => void; reject: (err: unknown) => void }>;

/** Float32 little-endian, base64: the encoding Chroma takes for embeddings when it announces `supports_base64_encoding`. */
function base64Vector(v: number[]): string {
  return Buffer.from(Float32Array.from(v).buffer).toString('base64');
}

/**
 * The chromadb client for a Chroma URL that may carry a path (a Chroma behind
 * a reverse proxy at http://host/chroma). The client (3.x) builds its base URL
 * from host, port and ssl alone (its deprecated `path` argument is parsed down
 * to those too), so under a path every call would go to /api/v2/… and get a
 * 404. Its generated HTTP client does take a base URL, set here after
 * construction; only when there is a path, and checked, so a chromadb upgrade
 * that moves it fails at start with a reason rather than with 404s.
 */
function chromaClient(url: URL, basePath: string): ChromaClient {
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  const client = new ChromaClient({ host: url.hostname, port, ssl: secure });
  if (basePath) {
    // Private in the client's types; collections it opens share this same HTTP client, so they follow.
    const api = (client as unknown as { apiClient?: { setConfig?: (config: { baseUrl: string }) => unknown } }).apiClient;
    if (typeof api?.setConfig !== 'function') {
      throw new Error(
        `CHROMA_URL ${url.href} has a path (${basePath}), which this version of the chromadb client cannot be given: serve Chroma at the root of a host or port`,
      );
    }
    api.setConfig({ baseUrl: `${url.origin}${basePath}` });
  }
  return client;
}

export function createChromaConnection(options: { url: string; collectionPrefix: string; queryTimeoutMs?: number }): ChromaConnection {
  const queryTimeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
  const url = new URL(options.url);
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  const basePath = url.pathname.replace(/\/+$/, '');
  const client = chromaClient(url, basePath);
  const transport = secure ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: 64 });

  function post<T>(collection: Collection, action: string, body: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
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
            if (status >= 500) {
              reject(new ChromaUnavailableError(`chroma ${action} failed (${status}): ${text.slice(0, 500)}`));
              return;
            }
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
      req.setTimeout(timeoutMs, () => req.destroy(new ChromaUnavailableError(`chroma ${action} did not answer within ${timeoutMs} ms`)));
      req.on('error', (err) =>
        reject(err instanceof ChromaUnavailableError ? err : new ChromaUnavailableError(`chroma ${action} failed: ${err.message}`, { cause: err })),
      );
      req.end(payload);
    });
  }

  /**
   * Nearest-neighbour queries are coalesced per collection and result size:
   * one goes out at once, and those that arrive while it is in flight leave
   * together as one multi-embedding query when it returns. Chroma's cost of a
   * query is mostly per request, not per embedding: measured on 2 cores with
   * 30k vectors, 2.85 ms of Chroma CPU for a query sent alone, 0.75 ms each
   * in a request of ten. A lone query waits for nothing.
   */
  const queryLanes = new Map<string, QueryLane>();
  async function drainQueries(collection: Collection, nResults: number, key: string, lane: QueryLane): Promise<void> {
    while (lane.length > 0) {
      const batch = lane.splice(0, MAX_QUERY_BATCH);
      try {
        const result = await post<{ ids: string[][]; distances: Array<Array<number | null>> | null }>(collection, 'query', {
          query_embeddings: batch.map((q) => q.embedding),
          n_results: nResults,
          include: ['distances'],
        }, queryTimeoutMs);
        batch.forEach((q, i) => {
          const ids = result.ids[i] ?? [];
          const distances = result.distances?.[i] ?? [];
          q.resolve({ ids, distances: ids.map((_, j) => distances[j] ?? 1) });
        });
      } catch (err) {
        for (const q of batch) q.reject(err);
      }
    }
    queryLanes.delete(key);
  }

  const records: ChromaRecords = {
    async upsert(collection, r) {
      await post(collection, 'upsert', { ids: r.ids, embeddings: r.embeddings.map(base64Vector), metadatas: r.metadatas });
    },
    query(collection, embedding, nResults) {
      return new Promise((resolve, reject) => {
        const key = `${collection.id}\0${nResults}`;
        const waiting = queryLanes.get(key);
        if (waiting) {
          waiting.push({ embedding, resolve, reject });
          return;
        }
        const lane: QueryLane = [{ embedding, resolve, reject }];
        queryLanes.set(key, lane);
        void drainQueries(collection, nResults, key, lane);
      });
    },
    async delete(collection, ids) {
      await post(collection, 'delete', { ids });
    },
  };

  return {
    client,
    records,
    collectionPrefix: options.collectionPrefix,
    readTimeoutMs: queryTimeoutMs,
    async ping() {
      await client.heartbeat();
    },
    close: once(async () => agent.destroy()),
  };
}
