import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/config.ts';
import { EmbeddingError } from '../../shared/embeddings/embedding-provider.ts';
import { checkModelFiles, LOCAL_MODELS, modelFolder } from '../../shared/embeddings/local-models.ts';
import { OnnxEmbeddingProvider } from '../../shared/embeddings/onnx.provider.ts';

// The real model, as `npx pk-mcp stack prepare` (and .ci/run) fetched it into the data folder.
const modelDir = path.join(loadConfig({ ...process.env, SEMANTIC_MODEL: 'bge-small-en-v1.5' }).dataDir, 'models');
const spec = LOCAL_MODELS['bge-small-en-v1.5'];
const cosine = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);

describe('local model provider (bge-small-en-v1.5, int8 ONNX)', () => {
  const provider = new OnnxEmbeddingProvider({ model: 'bge-small-en-v1.5', modelDir, threads: 1, batch: 4 });
  const scratch = mkdtempSync(path.join(tmpdir(), 'pk-model-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('is fetched and intact (run `npx pk-mcp stack prepare` when this fails)', async () => {
    expect(await checkModelFiles(spec, modelDir)).toBeNull();
  });

  it('names its vector space by model and size', () => {
    expect(provider.id).toBe('onnx:bge-small-en-v1.5:384');
    expect(provider.dimensions).toBe(384);
  });

  it('relates a question to the code that answers it, not to code that shares no meaning', async () => {
    const [q] = await provider.embed(['generate a unique id for each incoming request'], { purpose: 'query' });
    const [ids, server, colours] = await provider.embed([
      'function reqIdGenFactory() { let next = 0; return function genReqId(req) { return req.headers["x-request-id"] || `req-${(next++).toString(36)}`; } }',
      'const app = createServer(); app.listen(3000, () => console.log("listening"));',
      'const palette = { red: "#f00", green: "#0f0", blue: "#00f" };',
    ]);
    expect(cosine(q!, ids!)).toBeGreaterThan(cosine(q!, server!) + 0.05);
    expect(cosine(q!, ids!)).toBeGreaterThan(cosine(q!, colours!) + 0.1);
    for (const v of [q!, ids!, server!, colours!]) expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-4);
  });

  it('puts the retrieval instruction before queries only', async () => {
    const [asQuery] = await provider.embed(['parse a config file'], { purpose: 'query' });
    const [asDocument] = await provider.embed(['parse a config file']);
    const [prefixed] = await provider.embed([`${spec.queryPrefix}parse a config file`]);
    expect(cosine(asQuery!, asDocument!)).toBeLessThan(0.999);
    expect(cosine(asQuery!, prefixed!)).toBeGreaterThan(0.9999);
  });

  it('returns vectors in input order whatever the batching, as one at a time would', async () => {
    const texts = ['short', 'a somewhat longer piece of text about sockets and buffers', 'x = 1', 'def read_config(path):\n    return toml.load(path)', 'one more'];
    const together = await provider.embed(texts);
    const alone = await Promise.all(texts.map(async (t) => (await provider.embed([t]))[0]!));
    for (let i = 0; i < texts.length; i++) {
      // Not bit for bit: the int8 model quantizes each pass's activations over the whole (padded) batch.
      expect(cosine(together[i]!, alone[i]!)).toBeGreaterThan(0.99);
      for (let j = 0; j < texts.length; j++) if (j !== i) expect(cosine(together[i]!, alone[i]!)).toBeGreaterThan(cosine(together[i]!, alone[j]!));
    }
  });

  it('embeds each query in a pass of its own, beside a document pass, exactly as it would alone', async () => {
    const queries = ['parse a config file', 'retry with exponential backoff and jitter', 'hash a password', 'open a database connection pool', 'x'];
    const alone: number[][] = [];
    for (const q of queries) alone.push((await provider.embed([q], { purpose: 'query' }))[0]!);
    const documents = provider.embed(['function a() { return 1; }', 'class B { run() {} }', 'const c = 3;', 'def d(): pass', 'let e = 5;']);
    const together = await Promise.all(queries.map((q) => provider.embed([q], { purpose: 'query' }).then((v) => v[0]!)));
    const inOneCall = await provider.embed(queries, { purpose: 'query' });
    await documents;
    // Identical, not merely close: a question ranks the same whatever else the model is doing.
    expect(together).toEqual(alone);
    expect(inOneCall).toEqual(alone);
  });

  it('cuts inputs longer than its window instead of failing', async () => {
    const long = 'function step() { return next(); }\n'.repeat(400);
    const [v] = await provider.embed([long]);
    expect(v).toHaveLength(384);
    expect(v!.every(Number.isFinite)).toBe(true);
    expect(provider.stats().tokens).toBeGreaterThan(0);
  });

  it('says in one line what to run when the model is missing', async () => {
    const missing = new OnnxEmbeddingProvider({ model: 'bge-small-en-v1.5', modelDir: path.join(scratch, 'none'), threads: 1, batch: 4 });
    const err = await missing.embed(['x']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddingError);
    expect((err as EmbeddingError).kind).toBe('config');
    expect((err as EmbeddingError).message).toMatch(/bge-small-en-v1\.5 is missing .*npx pk-mcp stack prepare/);
  });

  it('refuses a damaged model file before loading it, and loads once the files are right again', async () => {
    const dir = path.join(scratch, 'damaged');
    const folder = modelFolder(dir, spec.name);
    mkdirSync(folder, { recursive: true });
    copyFileSync(path.join(modelFolder(modelDir, spec.name), spec.tokenizer.file), path.join(folder, spec.tokenizer.file));
    const onnx = readFileSync(path.join(modelFolder(modelDir, spec.name), spec.onnx.file));
    const flipped = Buffer.from(onnx);
    flipped[flipped.length >> 1]! ^= 0xff;
    writeFileSync(path.join(folder, spec.onnx.file), flipped);
    const damaged = new OnnxEmbeddingProvider({ model: 'bge-small-en-v1.5', modelDir: dir, threads: 1, batch: 4 });
    const err = await damaged.embed(['x']).catch((e: unknown) => e);
    expect((err as EmbeddingError).message).toMatch(/is damaged \(bge-small-en-v1\.5-q\.onnx does not match its checksum\).*stack prepare/);
    // A failed load is not kept: with the file mended, the same provider loads.
    writeFileSync(path.join(folder, spec.onnx.file), onnx);
    expect(await damaged.embed(['x'])).toHaveLength(1);
  });
});
