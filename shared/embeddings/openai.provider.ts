import type OpenAI from 'openai';

// The SDK is loaded at the first request: a process that never calls the API (a CLI search with the local
// provider, which still imports EmbeddingError from here) does not pay for loading it.
type Sdk = typeof import('openai');
let sdkLoading: Promise<Sdk> | undefined;
const loadSdk = () => (sdkLoading ??= import('openai'));
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from '../logger.ts';
import type { EmbeddingConfig, EmbeddingProvider, EmbedOptions } from './embedding-provider.ts';

/**
 * Embeddings over the OpenAI API or any server that speaks it (Ollama, vLLM,
 * LM Studio, TEI) via `openaiBaseUrl`.
 *
 * Retries are ours, not the SDK's (`maxRetries: 0`): the SDK's loop cannot be
 * counted for `stats()`, ignores Retry-After above 60 s, caps its backoff at
 * 8 s, sleeps through an abort, and cannot tell a 429 "slow down" from a 429
 * "out of quota" (which no retry fixes).
 */

export type EmbeddingErrorKind =
  | 'config'
  | 'auth'
  | 'forbidden'
  | 'not_found'
  | 'bad_request'
  | 'too_large'
  | 'quota'
  | 'rate_limited'
  | 'server'
  | 'network'
  | 'timeout'
  | 'invalid_response';

/**
 * A failure to embed. `retryable: false` means the same request will fail the
 * same way (bad key, unknown model, wrong dimensions): job code should turn it
 * into a permanent failure instead of letting the queue retry it.
 */
export class EmbeddingError extends Error {
  readonly kind: EmbeddingErrorKind;
  readonly retryable: boolean;
  readonly status: number | undefined;

  constructor(
    message: string,
    details: { kind: EmbeddingErrorKind; retryable: boolean; status?: number | undefined; cause?: unknown },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'EmbeddingError';
    this.kind = details.kind;
    this.retryable = details.retryable;
    this.status = details.status;
  }
}

/** Output sizes of the models we can name without asking; any other model needs `dimensions` configured. */
const KNOWN_DIMENSIONS: Readonly<Record<string, number>> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

const DEFAULT_MAX_INPUT_TOKENS = 8191;
const BYTES_PER_TOKEN = 3;

/**
 * Token count without a tokenizer download. cl100k averages ~4 bytes a token
 * on English and 3–4 on code, so bytes/3 over-counts what we usually send.
 * Dense text (base64, hex, CJK) can reach ~2 bytes a token; when that makes a
 * request too large, `embedBatch` splits or shortens it and tries again.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / BYTES_PER_TOKEN);
}

const encoder = new TextEncoder();

/** The longest prefix of `text` whose estimate fits `maxTokens`, cut on a character boundary. */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (estimateTokens(text) <= maxTokens) return text;
  // encodeInto stops before a character that does not fit, so `read` never splits a surrogate pair.
  const { read } = encoder.encodeInto(text, new Uint8Array(maxTokens * BYTES_PER_TOKEN));
  return text.slice(0, read);
}

/**
 * Delay a 429/503 asks for: `retry-after-ms` (OpenAI's, milliseconds), else
 * `retry-after` in seconds or as an HTTP date.
 */
export function parseRetryAfter(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get('retry-after-ms')?.trim();
  if (ms) {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = headers?.get('retry-after')?.trim();
  if (after) {
    const seconds = Number(after);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(after);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  return undefined;
}

export interface RetryTiming {
  /** First backoff; doubles on each retry. */
  baseDelayMs: number;
  /** Ceiling of the exponential backoff. */
  maxDelayMs: number;
  /** Ceiling on a server-requested Retry-After, so a confused proxy cannot park a worker for an hour. */
  maxRetryAfterMs: number;
}

const DEFAULT_RETRY_TIMING: RetryTiming = { baseDelayMs: 500, maxDelayMs: 30_000, maxRetryAfterMs: 120_000 };

/**
 * Requests a single embed call may spend recovering from "too large" answers
 * (split a batch, shorten an input). Enough to absorb the rare input our
 * estimate under-counts; a server whose real limit is far below the configured
 * one runs out of it and fails with a hint instead of sending thousands of requests.
 */
const MAX_SHRINK_REQUESTS = 64;
const MIN_SHRINK_CHARS = 256;

// Context-length wording of OpenAI, vLLM, Ollama, TEI and LM Studio.
const TOO_LARGE = /maximum context length|context length|max_tokens_per_request|tokens per request|too many tokens|must have less than \d+ tokens|input (length|is too long)|maximum (allowed )?batch size|too large/i;

interface Batch {
  start: number;
  texts: string[];
}

interface CallState {
  shrinkRequests: number;
  maxRetries: number;
  /** performance.now() past which the call has failed (`timeoutMs`), if it has a deadline. */
  deadline: number | undefined;
}

export class OpenAIEmbeddingProvider implements EmbeddingProvider {
  readonly id: string;
  readonly model: string;
  readonly dimensions: number;

  private client: OpenAI | undefined;
  private readonly clientOptions: ConstructorParameters<typeof OpenAI>[0];
  private readonly server: string;
  private readonly sendDimensions: boolean;
  private readonly maxInputTokens: number;
  private readonly limit: LimitFunction;
  private readonly timing: RetryTiming;
  private readonly counters = { calls: 0, inputs: 0, tokens: 0, retries: 0 };

  constructor(
    private readonly config: EmbeddingConfig,
    private readonly logger: Logger,
    timing: Partial<RetryTiming> = {},
  ) {
    this.server = config.openaiBaseUrl ? `The embedding server at ${config.openaiBaseUrl}` : 'OpenAI';
    if (!config.openaiApiKey && !config.openaiBaseUrl) {
      throw new EmbeddingError(
        'The OpenAI embedding provider needs an API key (or the base URL of a keyless OpenAI-compatible server)',
        { kind: 'config', retryable: false },
      );
    }
    const dimensions = config.dimensions ?? KNOWN_DIMENSIONS[config.model];
    if (dimensions === undefined) {
      throw new EmbeddingError(
        `Embedding model "${config.model}" is not one whose size is known: configure its dimensions (e.g. 768 for nomic-embed-text)`,
        { kind: 'config', retryable: false },
      );
    }
    this.model = config.model;
    this.dimensions = dimensions;
    this.sendDimensions = config.dimensions !== undefined;
    this.id = `openai:${config.model}:${dimensions}`;
    this.maxInputTokens = config.maxInputTokens ?? DEFAULT_MAX_INPUT_TOKENS;
    // One limiter per provider, not per call: concurrent jobs in one worker share the budget.
    this.limit = pLimit(config.concurrency);
    this.timing = { ...DEFAULT_RETRY_TIMING, ...timing };
    this.clientOptions = {
      // Keyless local servers ignore the header, but the SDK will not start without a key.
      apiKey: config.openaiApiKey || 'unused',
      // Explicit, so the SDK does not pick up OPENAI_BASE_URL behind the config's back.
      baseURL: config.openaiBaseUrl ?? 'https://api.openai.com/v1',
      maxRetries: 0,
      timeout: config.requestTimeoutMs,
      // Every failure is logged by us with its context; the SDK would log it a second time.
      logLevel: 'off',
    };
  }

  stats() {
    return { ...this.counters };
  }

  async embed(texts: string[], options: EmbedOptions = {}): Promise<number[][]> {
    options.signal?.throwIfAborted();
    if (texts.length === 0) return [];

    let truncated = 0;
    const prepared = texts.map((text) => {
      // The API answers 400 to an empty string, which would fail its whole batch.
      if (text === '') return ' ';
      const cut = truncateToTokens(text, this.maxInputTokens);
      if (cut !== text) truncated++;
      return cut;
    });
    if (truncated > 0) {
      this.logger.warn({ truncated, maxInputTokens: this.maxInputTokens }, 'inputs longer than the model accepts were truncated');
    }

    const results: number[][] = new Array(texts.length);
    // A permanent failure of one batch stops the others instead of spending quota on a call that will fail anyway.
    const failed = new AbortController();
    const signals = [failed.signal];
    if (options.signal) signals.push(options.signal);
    // The deadline aborts a request in flight with a reason that says what happened, not a bare AbortError.
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      const late = new AbortController();
      const ms = options.timeoutMs;
      deadlineTimer = setTimeout(
        () => late.abort(new EmbeddingError(`${this.server} did not answer within ${ms} ms`, { kind: 'timeout', retryable: true })),
        ms,
      );
      signals.push(late.signal);
    }
    const signal = signals.length === 1 ? failed.signal : AbortSignal.any(signals);
    const state: CallState = {
      shrinkRequests: 0,
      maxRetries: options.maxRetries ?? this.config.maxRetries,
      deadline: options.timeoutMs === undefined ? undefined : performance.now() + options.timeoutMs,
    };

    try {
      await Promise.all(
        this.plan(prepared).map((batch) =>
          this.limit(async () => {
            signal.throwIfAborted();
            const vectors = await this.embedBatch(batch.texts, signal, state);
            vectors.forEach((vector, i) => (results[batch.start + i] = vector));
          }).catch((err: unknown) => {
            failed.abort(err);
            throw err;
          }),
        ),
      );
    } finally {
      clearTimeout(deadlineTimer);
    }
    return results;
  }

  /** Splits inputs, in order, into requests bounded by input count and estimated tokens. */
  private plan(texts: string[]): Batch[] {
    const batches: Batch[] = [];
    let start = 0;
    let tokens = 0;
    texts.forEach((text, i) => {
      const estimate = estimateTokens(text);
      if (i > start && (i - start >= this.config.maxBatchInputs || tokens + estimate > this.config.maxBatchTokens)) {
        batches.push({ start, texts: texts.slice(start, i) });
        start = i;
        tokens = 0;
      }
      tokens += estimate;
    });
    batches.push({ start, texts: texts.slice(start) });
    return batches;
  }

  /**
   * One planned batch. A "too large" answer means the estimate was wrong for
   * this content: halve the batch, or shorten a lone input, and ask again.
   * Runs inside the caller's limiter slot, so the pieces go one after another.
   */
  private async embedBatch(texts: string[], signal: AbortSignal, state: CallState): Promise<number[][]> {
    try {
      return await this.request(texts, signal, state);
    } catch (err) {
      if (!(err instanceof EmbeddingError) || err.kind !== 'too_large') throw err;
      const only = texts.length === 1 ? texts[0]! : undefined;
      if (state.shrinkRequests >= MAX_SHRINK_REQUESTS || (only !== undefined && only.length < MIN_SHRINK_CHARS)) {
        throw new EmbeddingError(
          `${err.message} (still too large after splitting and shortening: lower maxInputTokens or maxBatchTokens to the server's limits)`,
          { kind: 'too_large', retryable: false, status: err.status, cause: err },
        );
      }
      state.shrinkRequests++;
      if (only === undefined) {
        const middle = Math.ceil(texts.length / 2);
        this.logger.warn({ inputs: texts.length, status: err.status }, 'embedding batch too large; splitting it');
        const head = await this.embedBatch(texts.slice(0, middle), signal, state);
        const tail = await this.embedBatch(texts.slice(middle), signal, state);
        return [...head, ...tail];
      }
      let end = Math.floor(only.length / 2);
      // Do not leave half a surrogate pair at the end.
      if (/[\uD800-\uDBFF]/.test(only.charAt(end - 1))) end--;
      this.logger.warn({ chars: only.length, status: err.status }, 'embedding input too large; shortening it');
      return this.embedBatch([only.slice(0, end)], signal, state);
    }
  }

  /** One HTTP request with retries on 429, 5xx, timeouts and network errors. */
  private async request(texts: string[], signal: AbortSignal, state: CallState): Promise<number[][]> {
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      this.counters.calls++;
      let response: OpenAI.CreateEmbeddingResponse;
      const sdk = await loadSdk();
      this.client ??= new sdk.default(this.clientOptions);
      try {
        response = await this.client.embeddings.create(
          {
            model: this.model,
            input: texts,
            encoding_format: 'float',
            ...(this.sendDimensions ? { dimensions: this.dimensions } : {}),
          },
          { signal },
        );
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const failure = this.describe(err, sdk);
        if (!failure.retryable) throw failure;
        const delayMs = this.retryDelay(attempt, err instanceof sdk.APIError ? err.headers : undefined);
        // Waiting past the deadline only to be aborted would hide the real failure behind a timeout.
        if (attempt >= state.maxRetries || (state.deadline !== undefined && performance.now() + delayMs >= state.deadline)) {
          throw new EmbeddingError(`Embedding request failed after ${attempt} retries: ${failure.message}`, {
            kind: failure.kind,
            retryable: true,
            status: failure.status,
            cause: err,
          });
        }
        this.counters.retries++;
        this.logger.warn(
          { status: failure.status, kind: failure.kind, retry: attempt + 1, of: state.maxRetries, delayMs: Math.round(delayMs) },
          `embedding request failed, retrying: ${failure.message}`,
        );
        await sleep(delayMs, signal);
        continue;
      }
      const vectors = this.parse(response, texts.length);
      this.counters.inputs += texts.length;
      this.counters.tokens +=
        response.usage?.total_tokens ?? response.usage?.prompt_tokens ?? texts.reduce((sum, t) => sum + estimateTokens(t), 0);
      return vectors;
    }
  }

  private retryDelay(attempt: number, headers: Headers | undefined): number {
    const asked = parseRetryAfter(headers);
    if (asked !== undefined) {
      // Never earlier than asked; a little later so batches that were refused together do not return together.
      const wait = Math.min(asked, this.timing.maxRetryAfterMs);
      return wait + Math.random() * Math.min(wait * 0.1, 1000);
    }
    const ceiling = Math.min(this.timing.maxDelayMs, this.timing.baseDelayMs * 2 ** attempt);
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  /** Turns an SDK error into an EmbeddingError that says what happened; anything else is a bug and is rethrown. */
  private describe(err: unknown, { APIConnectionError, APIConnectionTimeoutError, APIError }: Sdk): EmbeddingError {
    if (err instanceof APIConnectionTimeoutError) {
      return new EmbeddingError(`${this.server} did not answer within ${this.config.requestTimeoutMs} ms`, {
        kind: 'timeout',
        retryable: true,
        cause: err,
      });
    }
    if (err instanceof APIConnectionError) {
      const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return new EmbeddingError(`Could not reach ${this.server.replace(/^The/, 'the')} (${err.message}${cause})`, {
        kind: 'network',
        retryable: true,
        cause: err,
      });
    }
    if (!(err instanceof APIError) || err.status === undefined) throw err;

    const status = err.status;
    const body = err.error as { message?: unknown } | undefined;
    const detail = (typeof body?.message === 'string' ? body.message : err.message.replace(/^\d{3} /, '')).slice(0, 500);
    const fail = (kind: EmbeddingErrorKind, retryable: boolean, what: string) =>
      new EmbeddingError(`${this.server} ${what} (${status}): ${detail}`, { kind, retryable, status, cause: err });

    if (status === 401) return fail('auth', false, 'rejected the API key');
    if (status === 403) return fail('forbidden', false, `refused access to model "${this.model}"`);
    if (status === 404) return fail('not_found', false, `has no embedding model "${this.model}" (or no /embeddings endpoint)`);
    if (status === 413 || ((status === 400 || status === 422) && TOO_LARGE.test(detail))) {
      return fail('too_large', false, 'found the request too large');
    }
    if (status === 429) {
      // OpenAI answers 429 to "slow down", to "this one request exceeds your
      // tokens-per-minute limit" (only a smaller request helps) and to "the
      // account has no credit left" (nothing helps).
      if (/request too large/i.test(detail)) return fail('too_large', false, 'found the request too large');
      return err.code === 'insufficient_quota' || err.type === 'insufficient_quota'
        ? fail('quota', false, 'says the account has run out of quota')
        : fail('rate_limited', true, 'is rate limiting requests');
    }
    if (status === 408 || status === 409) return fail('server', true, 'asked to try again');
    if (status >= 500) return fail('server', true, 'failed');
    return fail('bad_request', false, 'rejected the request');
  }

  /** Checks the answer has one vector of the expected size per input, and puts them in input order. */
  private parse(response: OpenAI.CreateEmbeddingResponse, count: number): number[][] {
    const invalid = (what: string) =>
      new EmbeddingError(`${this.server} returned ${what}`, { kind: 'invalid_response', retryable: false });
    const data: unknown = response?.data;
    if (!Array.isArray(data)) throw invalid('no embeddings list');
    if (data.length !== count) throw invalid(`${data.length} embeddings for ${count} inputs`);

    const vectors: number[][] = new Array(count);
    data.forEach((item: { index?: unknown; embedding?: unknown }, position) => {
      // Some compatible servers leave out `index`; they answer in input order.
      const index = typeof item?.index === 'number' ? item.index : position;
      if (!Number.isInteger(index) || index < 0 || index >= count || vectors[index] !== undefined) {
        throw invalid(`an embedding with index ${String(item?.index)} for ${count} inputs`);
      }
      const embedding = item.embedding;
      if (!Array.isArray(embedding)) throw invalid('an embedding that is not a list of floats');
      if (embedding.length !== this.dimensions) {
        throw invalid(
          `${embedding.length}-dimensional vectors for model "${this.model}" where ${this.dimensions} were expected: configure the dimensions the model produces`,
        );
      }
      const vector = normalise(embedding as unknown[]);
      if (!vector) throw invalid('an embedding with non-numeric or non-finite values');
      vectors[index] = vector;
    });
    return vectors;
  }
}

/** L2-normalised copy, or undefined when a value is not a finite number. A zero vector stays zero. */
function normalise(values: unknown[]): number[] | undefined {
  let sum = 0;
  for (const v of values) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
    sum += v * v;
  }
  if (sum === 0) return values as number[];
  const scale = 1 / Math.sqrt(sum);
  return (values as number[]).map((v) => v * scale);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
