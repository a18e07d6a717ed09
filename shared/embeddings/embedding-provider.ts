import type { Config } from '../config/config.ts';
import type { Logger } from '../logger.ts';
import { LocalEmbeddingProvider } from './local.provider.ts';
import { OpenAIEmbeddingProvider } from './openai.provider.ts';

export { EmbeddingError, type EmbeddingErrorKind } from './openai.provider.ts';

/**
 * How patient one `embed` call is. Indexing batches take the configured
 * retries and no deadline (the queue retries a failed job later); a query a
 * person or an agent waits for takes a short deadline and few retries, and
 * does without vectors when it runs out.
 */
export interface EmbedOptions {
  signal?: AbortSignal;
  /** Retries for this call instead of the configured `maxRetries`. */
  maxRetries?: number;
  /** Time the whole call may take, retries and backoff included; past it, it fails with an `EmbeddingError` of kind 'timeout'. A backoff that would end past it is not waited out. */
  timeoutMs?: number;
  /** A search query or a document: models trained with a retrieval instruction (bge) put it before queries only. */
  purpose?: 'query' | 'document';
}

export interface EmbeddingProvider {
  /** Stable identity of the vector space: provider + model + dimensions, e.g. "openai:text-embedding-3-small:1536" or "local:hash-v1:384". Used to key the embedding cache and name the Chroma collection. */
  readonly id: string;
  readonly model: string;
  readonly dimensions: number;
  /** Embeds texts in order; returns one vector per text (L2-normalised). Batches, limits concurrency and retries internally. */
  embed(texts: string[], options?: EmbedOptions): Promise<number[][]>;
  /** Counters for metrics and benchmarks: calls = HTTP requests (or batches for local), inputs, tokens (estimated where the API does not say). */
  stats(): { calls: number; inputs: number; tokens: number; retries: number };
}

export interface EmbeddingConfig {
  /** 'auto' picks OpenAI when an API key is set, the offline hashing provider otherwise. */
  provider: 'auto' | 'openai' | 'local';
  openaiApiKey?: string;
  /** Any OpenAI-compatible server (Ollama, vLLM, LM Studio, TEI), e.g. http://127.0.0.1:11434/v1. */
  openaiBaseUrl?: string;
  model: string;
  /** Output size. Sent to the API only when set; required for models the provider does not know. */
  dimensions?: number;
  maxBatchInputs: number;
  /** Estimated tokens per request (the estimate over-counts, see `estimateTokens`). */
  maxBatchTokens: number;
  /** Longest input the model accepts, in tokens; longer inputs are truncated rather than failing their batch. */
  maxInputTokens?: number;
  /** Requests in flight at once, across every `embed` call on one provider. */
  concurrency: number;
  maxRetries: number;
  requestTimeoutMs: number;
  localDimensions: number;
}

export const DEFAULT_EMBEDDING_CONFIG: Readonly<EmbeddingConfig> = Object.freeze({
  provider: 'auto',
  model: 'text-embedding-3-small',
  // The API accepts 2048 inputs per request, but a 2048 × 1536 float response
  // is ~60 MB of JSON, and smaller batches spread better over `concurrency`
  // and lose less work to one failed request.
  maxBatchInputs: 512,
  // The API caps a request at 300k tokens; our estimate already over-counts
  // code, and the rest is headroom for text it under-counts.
  maxBatchTokens: 250_000,
  // text-embedding-3-* and ada-002 all stop at 8191 tokens per input.
  maxInputTokens: 8191,
  concurrency: 4,
  // 6 retries with exponential backoff capped at 30 s span about a minute and
  // a half: long enough to ride out a rate-limit window, short enough that a
  // real outage surfaces as a job failure that BullMQ retries later.
  maxRetries: 6,
  // OpenAI answers a 512-input batch in seconds; local servers on CPU are slower.
  requestTimeoutMs: 60_000,
  localDimensions: 384,
});

/** Chooses the provider the config asks for; throws an `EmbeddingError` (kind 'config') when it cannot be built. */
export function createEmbeddingProvider(config: EmbeddingConfig, logger: Logger): EmbeddingProvider {
  const log = logger.child({ component: 'embeddings' });
  const useOpenAI = config.provider === 'openai' || (config.provider === 'auto' && !!config.openaiApiKey);
  const provider: EmbeddingProvider = useOpenAI
    ? new OpenAIEmbeddingProvider(config, log)
    : new LocalEmbeddingProvider({ dimensions: config.localDimensions });
  log.info({ provider: provider.id }, 'embedding provider ready');
  return provider;
}

/** The embedding settings of the platform's config (shared/platform.ts and the CLI build their provider from it). */
export function embeddingConfigFrom(config: Config) {
  return {
    ...DEFAULT_EMBEDDING_CONFIG,
    provider: config.embedding.provider,
    openaiApiKey: config.embedding.openaiApiKey,
    openaiBaseUrl: config.embedding.openaiBaseUrl,
    model: config.embedding.model,
    dimensions: config.embedding.dimensions,
    concurrency: config.embedding.concurrency,
    maxRetries: config.embedding.maxRetries,
    localDimensions: config.embedding.localDimensions,
  };
}
