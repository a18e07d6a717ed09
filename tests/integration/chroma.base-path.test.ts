import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChromaConnection, type ChromaConnection } from '../../shared/stores/chroma.connection.ts';
import { createVectorStore, type VectorRecord } from '../../shared/stores/vector.store.ts';
import { testConfig } from '../helpers/context.ts';

/**
 * A Chroma behind a reverse proxy under a path (CHROMA_URL=http://host/chroma):
 * a local proxy serves the real Chroma under /chroma and answers 404 to
 * anything outside it, as a proxy in front of other services would. Every
 * call, the chromadb client's (heartbeat, collections) and our own record
 * reads and writes, has to carry the path.
 */

const config = testConfig();
const upstream = new URL(config.chromaUrl);
const seen: Array<{ method: string; path: string; status: number }> = [];
let proxy: http.Server;
let proxyUrl = '';
let direct: ChromaConnection;

beforeAll(async () => {
  proxy = http.createServer((req, res) => {
    const path = req.url ?? '';
    if (!path.startsWith('/chroma/')) {
      seen.push({ method: req.method ?? '', path, status: 404 });
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such service');
      return;
    }
    const forward = http.request(
      { hostname: upstream.hostname, port: upstream.port, path: path.slice('/chroma'.length), method: req.method, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        seen.push({ method: req.method ?? '', path, status: answer.statusCode ?? 0 });
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  direct = createChromaConnection({ url: config.chromaUrl, collectionPrefix: config.chromaCollectionPrefix });
});

afterAll(async () => {
  const leftovers = (await direct.client.listCollections().catch(() => [])).filter((c) => c.name.startsWith(config.chromaCollectionPrefix));
  await Promise.all(leftovers.map((c) => direct.client.deleteCollection({ name: c.name })));
  await direct?.close();
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
});

const unit = (i: number, dims: number) => Array.from({ length: dims }, (_, j) => (j === i ? 1 : 0));

function record(id: string, i: number): VectorRecord {
  return {
    id,
    embedding: unit(i, 4),
    metadata: { repository_id: 7, branch: 'main', path: `src/${id}.ts`, language: 'typescript', start_line: 1, end_line: 2, symbol: id, kind: 'function', commit: 'c0ffee' },
  };
}

describe('Chroma under a path behind a reverse proxy', () => {
  it('heartbeat, collection, upsert, query, delete: every request goes under the path', async () => {
    const chroma = createChromaConnection({ url: `${proxyUrl}/chroma`, collectionPrefix: config.chromaCollectionPrefix });
    try {
      await chroma.ping();
      const vectors = createVectorStore(chroma, 'test:proxy:4');
      const ref = { repositoryId: 7, branch: 'main' };

      await vectors.upsert([record('alpha', 0), record('beta', 1), record('gamma', 2)]);
      const nearest = await vectors.query(unit(1, 4), 2, { repositoryBranches: [ref] });
      expect(nearest[0]).toMatchObject({ id: 'beta' });
      expect(nearest).toHaveLength(2);
      expect((await vectors.ids({ repositoryBranches: [ref] })).sort()).toEqual(['alpha', 'beta', 'gamma']);

      await vectors.delete(ref, ['alpha']);
      expect((await vectors.ids({ repositoryBranches: [ref] })).sort()).toEqual(['beta', 'gamma']);

      // The collection really is the upstream Chroma's.
      const upstreamCollection = await direct.client.getCollection({ name: vectors.collectionName(ref) });
      expect(await upstreamCollection.count()).toBe(2);

      await vectors.deleteRepository(7);
      expect((await direct.client.listCollections()).map((c) => c.name)).not.toContain(vectors.collectionName(ref));
    } finally {
      await chroma.close();
    }

    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((r) => !r.path.startsWith('/chroma/api/v2/'))).toEqual([]);
    expect(seen.filter((r) => r.status >= 400)).toEqual([]);
  });

  it('takes the path with a trailing slash as well', async () => {
    const chroma = createChromaConnection({ url: `${proxyUrl}/chroma/`, collectionPrefix: config.chromaCollectionPrefix });
    try {
      await chroma.ping();
    } finally {
      await chroma.close();
    }
    expect(seen.at(-1)).toMatchObject({ path: '/chroma/api/v2/heartbeat', status: 200 });
  });
});
