import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A pass-through that counts bytes and lines and hashes what flows through it (SHA-256). */
export function hashingCounter() {
  const hash = createHash('sha256');
  let bytes = 0;
  let lines = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
      done(null, chunk);
    },
  });
  return {
    stream,
    bytes: () => bytes,
    lines: () => lines,
    sha256: () => (digest ??= hash.digest('hex')),
  };
}

export async function sha256OfFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const counter = hashingCounter();
  await pipeline(createReadStream(file), counter.stream, async function* drain(source) {
    for await (const _ of source) void _;
  });
  return { sha256: counter.sha256(), bytes: counter.bytes() };
}

/** Writes NDJSON lines to a file stream, waiting on back-pressure. */
export function ndjsonWriter(out: NodeJS.WritableStream & { once(event: 'drain', cb: () => void): unknown }) {
  const counter = hashingCounter();
  counter.stream.pipe(out);
  let count = 0;
  return {
    async write(value: unknown): Promise<void> {
      count += 1;
      if (!counter.stream.write(`${JSON.stringify(value)}\n`)) await new Promise<void>((resolve) => counter.stream.once('drain', resolve));
    },
    async end(): Promise<{ count: number; bytes: number; sha256: string }> {
      await new Promise<void>((resolve, reject) => {
        (out as NodeJS.WritableStream).once('finish', resolve);
        (out as NodeJS.WritableStream).once('error', reject);
        counter.stream.end();
      });
      return { count, bytes: counter.bytes(), sha256: counter.sha256() };
    },
  };
}

/** Reads an NDJSON file a line at a time, in batches. */
export async function* ndjsonBatches<T>(file: string, size: number): AsyncGenerator<T[]> {
  const { createInterface } = await import('node:readline');
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let batch: T[] = [];
  for await (const line of lines) {
    if (line === '') continue;
    batch.push(JSON.parse(line) as T);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
