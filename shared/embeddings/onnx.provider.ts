import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import type { EmbeddingProvider, EmbedOptions } from './embedding-provider.ts';
import { checkModelFiles, LOCAL_MODELS, modelFolder, modelMissingMessage, type LocalModelName, type LocalModelSpec } from './local-models.ts';
import { EmbeddingError } from './openai.provider.ts';

// Types only: the runtime (a native addon) and the tokenizer load on first use, so a process that never
// embeds with the model (the CLI, a worker with the tier off) pays nothing for them.
type Ort = typeof import('onnxruntime-node');
type InferenceSession = import('onnxruntime-node').InferenceSession;
type Tokenizer = import('@huggingface/tokenizers').Tokenizer;

export interface OnnxProviderOptions {
  model: LocalModelName;
  modelDir: string;
  /** Threads the runtime uses for one batch (intra-op). */
  threads: number;
  /** Texts per forward pass: 8 is as fast per text as 32 on CPU at a third of the memory. */
  batch: number;
}

/** [CLS] … [SEP]: the tokenizer's post-processor adds both; a cut input keeps its [SEP]. */
const SPECIAL_TOKENS = 2;

/**
 * A sentence-embedding model (BERT family, int8 ONNX) run in-process with
 * onnxruntime-node and the Hugging Face tokenizer in pure JavaScript: no
 * server, no network, no Python. Queries get the model's retrieval
 * instruction (`purpose: 'query'`), documents do not. Inputs longer than the
 * model's window are cut to it. Texts are embedded in order of length, so a
 * batch pads its short texts only up to a similar length: code chunks vary
 * from a line to hundreds, and padding is paid for in full.
 *
 * Documents take one forward pass at a time: the runtime already spreads a
 * pass over `threads`, and document passes side by side would only fight over
 * them. Queries have a lane of their own (two passes at once), so a search
 * never waits behind the background tier's batches. Each query is a pass of
 * its own: the int8 model quantizes activations per pass, so a query batched
 * with others would get a slightly different vector, and the same question
 * would rank differently under load.
 */
export class OnnxEmbeddingProvider implements EmbeddingProvider {
  readonly id: string;
  readonly model: string;
  readonly dimensions: number;
  readonly spec: LocalModelSpec;
  private loaded: Promise<{ ort: Ort; session: InferenceSession; tokenizer: Tokenizer }> | undefined;
  private readonly serial = pLimit(1);
  private readonly queries = pLimit(2);
  private readonly counters = { calls: 0, inputs: 0, tokens: 0, retries: 0 };

  constructor(private readonly options: OnnxProviderOptions) {
    this.spec = LOCAL_MODELS[options.model];
    this.model = this.spec.name;
    this.dimensions = this.spec.dimensions;
    this.id = `onnx:${this.spec.name}:${this.spec.dimensions}`;
  }

  stats() {
    return { ...this.counters };
  }

  /** Loads the model (once); rejects with an `EmbeddingError` of kind 'config' naming `stack prepare` when its files are missing or damaged. */
  load(): Promise<unknown> {
    this.loaded ??= (async () => {
      const { modelDir } = this.options;
      const problem = await checkModelFiles(this.spec, modelDir);
      if (problem) throw new EmbeddingError(modelMissingMessage(this.spec, modelDir, problem), { kind: 'config', retryable: false });
      const folder = modelFolder(modelDir, this.spec.name);
      const [ort, { Tokenizer }, tokenizerJson] = await Promise.all([
        import('onnxruntime-node').then((m) => (m as { default?: Ort }).default ?? (m as unknown as Ort)),
        import('@huggingface/tokenizers'),
        readFile(path.join(folder, this.spec.tokenizer.file), 'utf8').then((t) => JSON.parse(t) as object),
      ]);
      const session = await ort.InferenceSession.create(path.join(folder, this.spec.onnx.file), {
        intraOpNumThreads: this.options.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
      const tokenizer = new Tokenizer(tokenizerJson, { do_lower_case: true, model_max_length: this.spec.maxTokens });
      return { ort, session, tokenizer };
    })();
    // A failed load is tried again on the next call (the files may have been fetched meanwhile).
    this.loaded.catch(() => (this.loaded = undefined));
    return this.loaded;
  }

  async embed(texts: string[], options: EmbedOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    const { ort, session, tokenizer } = (await this.load()) as Awaited<NonNullable<OnnxEmbeddingProvider['loaded']>>;
    const prefix = options.purpose === 'query' ? this.spec.queryPrefix : '';
    const ids = texts.map((t) => this.tokenize(tokenizer, prefix + t));
    const order = ids.map((_, i) => i).sort((a, b) => ids[a]!.length - ids[b]!.length);
    const out = new Array<number[]>(texts.length);
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    for (let from = 0; from < order.length; from += this.options.batch) {
      options.signal?.throwIfAborted();
      if (deadline !== undefined && Date.now() > deadline) throw new EmbeddingError('the local model did not finish in time', { kind: 'timeout', retryable: true });
      if (options.purpose === 'query') {
        const batch = order.slice(from, from + this.options.batch);
        const vectors = await Promise.all(batch.map((i) => this.queries(() => this.forward(ort, session, [ids[i]!]))));
        batch.forEach((i, j) => (out[i] = vectors[j]![0]!));
        continue;
      }
      const batch = order.slice(from, from + this.options.batch);
      const vectors = await this.serial(() => this.forward(ort, session, batch.map((i) => ids[i]!)));
      batch.forEach((i, j) => (out[i] = vectors[j]!));
    }
    this.counters.inputs += texts.length;
    return out;
  }

  private tokenize(tokenizer: Tokenizer, text: string): number[] {
    const ids = tokenizer.encode(text).ids;
    if (ids.length <= this.spec.maxTokens) return ids;
    return [...ids.slice(0, this.spec.maxTokens - 1), ids[ids.length - 1]!];
  }

  private async forward(ort: Ort, session: InferenceSession, batch: number[][]): Promise<number[][]> {
    const n = batch.length;
    const width = Math.max(SPECIAL_TOKENS, ...batch.map((b) => b.length));
    const inputIds = new BigInt64Array(n * width);
    const mask = new BigInt64Array(n * width);
    batch.forEach((row, i) => {
      for (let j = 0; j < row.length; j++) {
        inputIds[i * width + j] = BigInt(row[j]!);
        mask[i * width + j] = 1n;
      }
    });
    const feeds: Record<string, import('onnxruntime-node').Tensor> = {
      input_ids: new ort.Tensor('int64', inputIds, [n, width]),
      attention_mask: new ort.Tensor('int64', mask, [n, width]),
    };
    if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(n * width), [n, width]);
    let result: Record<string, import('onnxruntime-node').Tensor>;
    try {
      result = await session.run(feeds);
    } catch (err) {
      throw new EmbeddingError(`the local model failed: ${err instanceof Error ? err.message : String(err)}`, { kind: 'server', retryable: true, cause: err });
    }
    this.counters.calls++;
    this.counters.tokens += batch.reduce((s, b) => s + b.length, 0);
    const hidden = result[session.outputNames[0]!]!;
    const data = hidden.data as Float32Array;
    const dims = this.dimensions;
    return batch.map((row, i) => {
      const v = new Array<number>(dims).fill(0);
      const base = i * width * dims;
      if (this.spec.pooling === 'cls') {
        for (let d = 0; d < dims; d++) v[d] = data[base + d]!;
      } else {
        for (let t = 0; t < row.length; t++) for (let d = 0; d < dims; d++) v[d]! += data[base + t * dims + d]!;
      }
      let norm = 0;
      for (let d = 0; d < dims; d++) norm += v[d]! * v[d]!;
      norm = Math.sqrt(norm) || 1;
      for (let d = 0; d < dims; d++) v[d]! /= norm;
      return v;
    });
  }
}
