import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_EMBEDDING_CONFIG, type EmbeddingConfig } from '../../shared/embeddings/embedding-provider.ts';
import {
  EmbeddingError,
  estimateTokens,
  OpenAIEmbeddingProvider,
  parseRetryAfter,
} from '../../shared/embeddings/openai.provider.ts';
import { silentLogger } from '../helpers/context.ts';
import { fakeEmbedding, fakeTokens, startFakeOpenAI, type FakeOpenAI, type FakeOpenAIOptions } from '../helpers/fake-openai-server.ts';

const DIMS = 8;
// Backoff in milliseconds rather than seconds; a server's Retry-After is still honoured as given.
const FAST = { baseDelayMs: 5, maxDelayMs: 20 };

let servers: FakeOpenAI[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const server = await startFakeOpenAI(options);
  servers.push(server);
  return server;
}

function provider(server: { url: string }, overrides: Partial<EmbeddingConfig> = {}) {
  const config: EmbeddingConfig = {
    ...DEFAULT_EMBEDDING_CONFIG,
    provider: 'openai',
    openaiApiKey: 'test-key',
    openaiBaseUrl: server.url,
    dimensions: DIMS,
    ...overrides,
  };
  return new OpenAIEmbeddingProvider(config, silentLogger, FAST);
}

/** What the provider should return for `text`: the fake's vector, L2-normalised. */
function expected(text: string, dims = DIMS): number[] {
  const raw = fakeEmbedding(text, dims);
  const length = Math.sqrt(raw.reduce((sum, v) => sum + v * v, 0));
  return raw.map((v) => v / length);
}

function expectVectors(actual: number[][], texts: string[]) {
  expect(actual).toHaveLength(texts.length);
  actual.forEach((vector, i) => {
    const want = expected(texts[i]!);
    expect(vector).toHaveLength(want.length);
    vector.forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 12));
  });
}

/** The inputs of each request, in the order of the texts they carry. */
const batchesOf = (server: FakeOpenAI, texts: string[]) =>
  [...server.requests].sort((a, b) => texts.indexOf(a.inputs[0]!) - texts.indexOf(b.inputs[0]!)).map((r) => r.inputs);

async function rejection(promise: Promise<unknown>): Promise<EmbeddingError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EmbeddingError);
  return err as EmbeddingError;
}

describe('OpenAI embedding provider against a fake OpenAI server', () => {
  it('keeps input order across batches answered out of order, and normalises', async () => {
    const server = await start({ reverseOrder: true, delayMs: 5 });
    const embeddings = provider(server, { maxBatchInputs: 3, concurrency: 4 });
    const texts = Array.from({ length: 10 }, (_, i) => `chunk number ${i}`);

    const vectors = await embeddings.embed(texts);

    expectVectors(vectors, texts);
    vectors.forEach((v) => expect(Math.hypot(...v)).toBeCloseTo(1, 12));
    expect(batchesOf(server, texts)).toEqual([texts.slice(0, 3), texts.slice(3, 6), texts.slice(6, 9), texts.slice(9)]);
    const body = server.requests[0]!.body!;
    expect(body).toMatchObject({ model: 'text-embedding-3-small', dimensions: DIMS, encoding_format: 'float' });
    expect(server.requests[0]!.headers.authorization).toBe('Bearer test-key');
  });

  it('sends no dimensions unless configured, and expects the model’s own size', async () => {
    const server = await start();
    const embeddings = provider(server, { dimensions: undefined });
    expect(embeddings.id).toBe('openai:text-embedding-3-small:1536');

    const [vector] = await embeddings.embed(['hello']);

    expect(vector).toHaveLength(1536);
    expect(server.requests[0]!.body).not.toHaveProperty('dimensions');
  });

  it('splits batches by estimated tokens as well as by input count', async () => {
    const server = await start();
    const embeddings = provider(server, { maxBatchTokens: 100, maxBatchInputs: 4, concurrency: 1 });
    const small = Array.from({ length: 7 }, (_, i) => `${i}`.padEnd(90, '.'));
    expect(estimateTokens(small[0]!)).toBe(30);
    const tiny = Array.from({ length: 5 }, (_, i) => `t${i}`);

    await embeddings.embed([...small, ...tiny]);

    // 3 × 30 tokens fill the 100-token budget; the 2-character texts then fill up to 4 inputs.
    expect(server.requests.map((r) => r.inputs.length)).toEqual([3, 3, 4, 2]);
    expect(server.requests.flatMap((r) => r.inputs)).toEqual([...small, ...tiny]);
  });

  it('truncates inputs above the per-input limit instead of failing, and never sends an empty string', async () => {
    const server = await start();
    const embeddings = provider(server, { maxInputTokens: 10 });

    const vectors = await embeddings.embed(['a'.repeat(100), 'é'.repeat(50), '', 'short']);

    // 10 tokens ≈ 30 UTF-8 bytes: 30 ASCII characters, 15 two-byte ones.
    expect(server.requests[0]!.inputs).toEqual(['a'.repeat(30), 'é'.repeat(15), ' ', 'short']);
    expectVectors(vectors, ['a'.repeat(30), 'é'.repeat(15), ' ', 'short']);
  });

  it('never has more requests in flight than the concurrency limit, even across calls', async () => {
    const server = await start({ delayMs: 30 });
    const embeddings = provider(server, { maxBatchInputs: 1, concurrency: 3 });
    const texts = Array.from({ length: 8 }, (_, i) => `text ${i}`);

    const [a, b] = await Promise.all([embeddings.embed(texts), embeddings.embed(texts.map((t) => t.toUpperCase()))]);

    expect(server.requests).toHaveLength(16);
    expect(server.maxInFlight).toBe(3);
    expectVectors(a, texts);
    expectVectors(b, texts.map((t) => t.toUpperCase()));
  });

  it('waits at least Retry-After (seconds) after a 429, then succeeds', async () => {
    const server = await start();
    server.failNext(1, { status: 429, message: 'Rate limit reached for requests', code: 'rate_limit_exceeded', type: 'requests', headers: { 'retry-after': '1' } });
    const embeddings = provider(server);

    const vectors = await embeddings.embed(['one', 'two']);

    expectVectors(vectors, ['one', 'two']);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(embeddings.stats()).toEqual({ calls: 2, inputs: 2, tokens: fakeTokens(['one', 'two']), retries: 1 });
  });

  it('honours retry-after-ms over the exponential backoff', async () => {
    const server = await start();
    server.failNext(1, { status: 429, message: 'Rate limit reached', headers: { 'retry-after-ms': '200', 'retry-after': '30' } });
    const embeddings = provider(server);

    await embeddings.embed(['one']);

    const gap = server.requests[1]!.at - server.requests[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(200);
    expect(gap).toBeLessThan(30_000);
  });

  it('retries 500s with backoff and succeeds', async () => {
    const server = await start();
    server.failNext(2, { status: 500, message: 'The server had an error while processing your request.' });
    const embeddings = provider(server);

    const vectors = await embeddings.embed(['x', 'y', 'z']);

    expectVectors(vectors, ['x', 'y', 'z']);
    expect(server.requests).toHaveLength(3);
    expect(embeddings.stats()).toMatchObject({ calls: 3, inputs: 3, retries: 2 });
  });

  it('gives up on a persistent 429 after maxRetries, saying what happened', async () => {
    const server = await start();
    server.failNext(10, { status: 429, message: 'Rate limit reached for text-embedding-3-small', code: 'rate_limit_exceeded' });
    const embeddings = provider(server, { maxRetries: 3 });

    const err = await rejection(embeddings.embed(['a']));

    expect(err.message).toBe(
      `Embedding request failed after 3 retries: The embedding server at ${server.url} is rate limiting requests (429): Rate limit reached for text-embedding-3-small`,
    );
    expect(err).toMatchObject({ retryable: true, status: 429, kind: 'rate_limited' });
    expect(server.requests).toHaveLength(4);
    expect(embeddings.stats()).toEqual({ calls: 4, inputs: 0, tokens: 0, retries: 3 });
  });

  it('fails at once, not retryable, on a rejected API key', async () => {
    const server = await start({ apiKey: 'the-right-key' });
    const embeddings = provider(server, { openaiApiKey: 'wrong-key' });

    const err = await rejection(embeddings.embed(['a']));

    expect(err.message).toBe(`The embedding server at ${server.url} rejected the API key (401): Incorrect API key provided: wrong-key.`);
    expect(err).toMatchObject({ retryable: false, status: 401, kind: 'auth' });
    expect(server.requests).toHaveLength(1);
  });

  it('fails at once on a 400 and on an exhausted quota', async () => {
    const server = await start();
    server.failNext(1, { status: 400, message: "'$.input' is invalid. Please check the API reference." });
    const embeddings = provider(server);

    const bad = await rejection(embeddings.embed(['a']));
    expect(bad).toMatchObject({ retryable: false, status: 400, kind: 'bad_request' });
    expect(bad.message).toBe(
      `The embedding server at ${server.url} rejected the request (400): '$.input' is invalid. Please check the API reference.`,
    );
    expect(server.requests).toHaveLength(1);

    server.failNext(1, { status: 429, message: 'You exceeded your current quota.', type: 'insufficient_quota', code: 'insufficient_quota' });
    const quota = await rejection(embeddings.embed(['a']));
    expect(quota).toMatchObject({ retryable: false, status: 429, kind: 'quota' });
    expect(server.requests).toHaveLength(2);
  });

  it('stops the other batches of a call once one fails for good', async () => {
    const server = await start();
    server.failNext(1, { status: 403, message: 'You do not have access to this model.' });
    const embeddings = provider(server, { maxBatchInputs: 1, concurrency: 1 });

    const err = await rejection(embeddings.embed(['a', 'b', 'c', 'd']));

    expect(err).toMatchObject({ retryable: false, kind: 'forbidden' });
    // Give batches that were wrongly left queued the time to reach the server.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.requests).toHaveLength(1);
  });

  it('splits a batch the server finds too long instead of failing it', async () => {
    const server = await start();
    server.failNext(1, {
      status: 400,
      message: "This model's maximum context length is 8192 tokens, however you requested 9000 tokens. Please reduce your prompt.",
    });
    const embeddings = provider(server);
    const texts = ['a', 'b', 'c', 'd', 'e'];

    const vectors = await embeddings.embed(texts);

    expectVectors(vectors, texts);
    expect(server.requests.map((r) => r.inputs)).toEqual([texts, ['a', 'b', 'c'], ['d', 'e']]);
  });

  it('detects vectors of the wrong size', async () => {
    const server = await start({ forceDimensions: 5 });
    const embeddings = provider(server);

    const err = await rejection(embeddings.embed(['a']));

    expect(err.message).toBe(
      `The embedding server at ${server.url} returned 5-dimensional vectors for model "text-embedding-3-small" where 8 were expected: configure the dimensions the model produces`,
    );
    expect(err).toMatchObject({ retryable: false, kind: 'invalid_response' });
  });

  it('detects a response with the wrong number of embeddings', async () => {
    const server = await start({ transform: (body) => ({ ...body, data: body.data.slice(1) }) });
    const err = await rejection(provider(server).embed(['a', 'b', 'c']));
    expect(err.message).toBe(`The embedding server at ${server.url} returned 2 embeddings for 3 inputs`);
    expect(err.retryable).toBe(false);
  });

  it('counts calls, inputs and tokens, estimating tokens when the server does not report them', async () => {
    const server = await start();
    const embeddings = provider(server, { maxBatchInputs: 2 });
    const texts = ['alpha', 'beta gamma', 'delta'];

    await embeddings.embed(texts);
    expect(embeddings.stats()).toEqual({ calls: 2, inputs: 3, tokens: fakeTokens(texts), retries: 0 });

    const quiet = await start({ omitUsage: true });
    const estimating = provider(quiet);
    await estimating.embed(['x'.repeat(30), 'y']);
    expect(estimating.stats()).toEqual({ calls: 1, inputs: 2, tokens: 11, retries: 0 });
  });

  it('retries network errors, then gives up naming the server', async () => {
    const closed = await unusedPort();
    const embeddings = provider({ url: `http://127.0.0.1:${closed}/v1` }, { maxRetries: 2 });

    const err = await rejection(embeddings.embed(['a']));

    expect(err.message).toMatch(new RegExp(`^Embedding request failed after 2 retries: Could not reach the embedding server at http://127.0.0.1:${closed}/v1`));
    expect(err).toMatchObject({ retryable: true, kind: 'network' });
    expect(embeddings.stats()).toMatchObject({ calls: 3, retries: 2 });
  });

  it('stops waiting for a retry when the caller aborts', async () => {
    const server = await start();
    server.failNext(1, { status: 503, message: 'Overloaded', headers: { 'retry-after': '30' } });
    const embeddings = provider(server);
    const controller = new AbortController();

    const pending = embeddings.embed(['a'], { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('job cancelled')), 100);

    await expect(pending).rejects.toThrow('job cancelled');
    expect(server.requests).toHaveLength(1);
  }, 5_000);

  it('an interactive call takes its own retries: a refused connection fails after one, not the configured six', async () => {
    const closed = await unusedPort();
    const embeddings = provider({ url: `http://127.0.0.1:${closed}/v1` }, { maxRetries: 6 });

    const err = await rejection(embeddings.embed(['a'], { maxRetries: 1, timeoutMs: 2000 }));

    expect(err.message).toMatch(new RegExp(`^Embedding request failed after 1 retries: Could not reach the embedding server at http://127.0.0.1:${closed}/v1`));
    expect(err).toMatchObject({ retryable: true, kind: 'network' });
    expect(embeddings.stats()).toMatchObject({ calls: 2, retries: 1 });
  });

  it('a deadline ends a request the server never answers, saying so', async () => {
    const silent = await startSilentServer();
    // The per-request timeout is far away: only the call's deadline can end it in time.
    const embeddings = provider({ url: silent.url }, { maxRetries: 0, requestTimeoutMs: 30_000 });

    const err = await rejection(embeddings.embed(['a'], { timeoutMs: 300 }));

    expect(err.message).toBe(`The embedding server at ${silent.url} did not answer within 300 ms`);
    expect(err).toMatchObject({ retryable: true, kind: 'timeout' });
    expect(silent.connections()).toBe(1);
    await silent.close();
  }, 10_000);

  it('a deadline is not spent waiting out a backoff that would end past it', async () => {
    const server = await start();
    server.failNext(1, { status: 429, message: 'Rate limit reached', code: 'rate_limit_exceeded', headers: { 'retry-after': '30' } });
    const embeddings = provider(server);

    const err = await rejection(embeddings.embed(['a'], { maxRetries: 3, timeoutMs: 2000 }));

    expect(err.message).toBe(`Embedding request failed after 0 retries: The embedding server at ${server.url} is rate limiting requests (429): Rate limit reached`);
    expect(err).toMatchObject({ kind: 'rate_limited', status: 429 });
    expect(server.requests).toHaveLength(1);
    expect(embeddings.stats()).toMatchObject({ calls: 1, retries: 0 });
  }, 10_000);

  it('returns nothing for nothing, without a request', async () => {
    const server = await start();
    expect(await provider(server).embed([])).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });
});

describe('parseRetryAfter', () => {
  const headers = (h: Record<string, string>) => new Headers(h);
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads milliseconds, seconds and HTTP dates', () => {
    expect(parseRetryAfter(headers({ 'retry-after-ms': '250' }), now)).toBe(250);
    expect(parseRetryAfter(headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfter(headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfter(headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }), now)).toBe(3000);
    expect(parseRetryAfter(headers({ 'retry-after': 'Tue, 31 Dec 2024 23:59:00 GMT' }), now)).toBe(0);
    expect(parseRetryAfter(headers({ 'retry-after-ms': 'soon', 'retry-after': '1' }), now)).toBe(1000);
    expect(parseRetryAfter(headers({ 'retry-after': 'whenever' }), now)).toBeUndefined();
    expect(parseRetryAfter(headers({}), now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

/** A port nothing listens on: bound, then released. */
/** A server that accepts connections and never answers: an embedding server that hangs. */
async function startSilentServer(): Promise<{ url: string; connections(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    connections: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
