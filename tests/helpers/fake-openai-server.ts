import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local server that speaks the OpenAI embeddings API, so tests exercise the
 * real SDK over real HTTP without reaching the internet. Vectors are derived
 * from the text (`fakeEmbedding`), so a test can tell which vector belongs to
 * which input.
 */

export interface FakeOpenAIOptions {
  /** Accepted bearer token; anything else gets OpenAI's 401. */
  apiKey?: string;
  /** Vector size when the request names no `dimensions` (OpenAI's text-embedding-3-small: 1536). */
  defaultDimensions?: number;
  /** Answer with vectors of this size whatever was asked, to test the client's check. */
  forceDimensions?: number;
  /** Hold every response this long, so concurrent requests overlap. */
  delayMs?: number;
  /** Answer `data` in reverse order (with correct `index`es), as the API is allowed to. */
  reverseOrder?: boolean;
  /** Leave `usage` out, as some compatible servers do. */
  omitUsage?: boolean;
  /** Rewrites a successful response body before it is sent. */
  transform?: (body: EmbeddingsResponse) => unknown;
}

export interface EmbeddingsResponse {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: number[] }[];
  model: string;
  usage?: { prompt_tokens: number; total_tokens: number };
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined when it was not JSON). */
  body: { model?: string; input?: string | string[]; dimensions?: number; encoding_format?: string } | undefined;
  /** `input` as a list. */
  inputs: string[];
  /** performance.now() when the request arrived. */
  at: number;
  status?: number;
}

export interface ScriptedFailure {
  status: number;
  message?: string;
  type?: string;
  code?: string | null;
  headers?: Record<string, string>;
}

export interface FakeOpenAI {
  /** Base URL to give the SDK, ending in /v1. */
  url: string;
  requests: RecordedRequest[];
  /** Most requests that were being answered at the same moment. */
  readonly maxInFlight: number;
  /** Answer the next `count` embedding requests with this failure instead. */
  failNext(count: number, failure: ScriptedFailure): void;
  close(): Promise<void>;
}

/** Deterministic, deliberately not normalised (length ~ dimensions/3), so a client that forgets to normalise is caught. */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  let state = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) state = Math.imul(state ^ text.charCodeAt(i), 0x01000193);
  const vector: number[] = [];
  for (let i = 0; i < dimensions; i++) {
    // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    vector.push(((state >>> 0) / 0xffffffff) * 2 - 1);
  }
  return vector;
}

/** The usage the fake reports: about 4 characters a token. */
export function fakeTokens(inputs: string[]): number {
  return inputs.reduce((sum, text) => sum + Math.ceil(text.length / 4), 0);
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const apiKey = options.apiKey ?? 'test-key';
  const requests: RecordedRequest[] = [];
  const failures: ScriptedFailure[] = [];
  let inFlight = 0;
  let maxInFlight = 0;

  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body: RecordedRequest['body'];
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      const input = body?.input;
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        inputs: typeof input === 'string' ? [input] : Array.isArray(input) ? input : [],
        at,
      };
      requests.push(record);
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
        record.status = status;
        setTimeout(() => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(JSON.stringify(payload));
        }, options.delayMs ?? 0);
      };
      const error = (status: number, message: string, type: string, code: string | null = null, headers?: Record<string, string>) =>
        send(status, { error: { message, type, param: null, code } }, headers);

      if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
        return error(404, `Invalid URL (${req.method} ${req.url})`, 'invalid_request_error');
      }
      if (req.headers.authorization !== `Bearer ${apiKey}`) {
        return error(401, 'Incorrect API key provided: wrong-key.', 'invalid_request_error', 'invalid_api_key');
      }
      const failure = failures.shift();
      if (failure) {
        return error(
          failure.status,
          failure.message ?? `Scripted failure ${failure.status}`,
          failure.type ?? (failure.status >= 500 ? 'server_error' : 'invalid_request_error'),
          failure.code ?? null,
          failure.headers,
        );
      }
      if (!body || typeof body.model !== 'string') {
        return error(400, 'you must provide a model parameter', 'invalid_request_error');
      }
      const inputs = record.inputs;
      if (inputs.length === 0 || inputs.length > 2048 || inputs.some((t) => typeof t !== 'string' || t === '')) {
        return error(400, "'$.input' is invalid. Please check the API reference.", 'invalid_request_error');
      }
      const dimensions = options.forceDimensions ?? body.dimensions ?? options.defaultDimensions ?? 1536;
      const data = inputs.map((text, index) => ({
        object: 'embedding' as const,
        index,
        embedding: fakeEmbedding(text, dimensions),
      }));
      if (options.reverseOrder) data.reverse();
      const tokens = fakeTokens(inputs);
      const response: EmbeddingsResponse = {
        object: 'list',
        data,
        model: body.model,
        ...(options.omitUsage ? {} : { usage: { prompt_tokens: tokens, total_tokens: tokens } }),
      };
      send(200, options.transform ? options.transform(response) : response);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    failNext(count, failure) {
      for (let i = 0; i < count; i++) failures.push(failure);
    },
    close() {
      // The SDK's fetch keeps connections alive; close() alone would wait for them.
      server.closeAllConnections();
      return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
