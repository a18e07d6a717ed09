import type { Redis } from 'ioredis';

/**
 * Counters the worker processes add to and the API's /metrics reads: workers
 * serve no HTTP, so Redis (which both already use) carries the numbers.
 */
const key = (prefix: string) => `${prefix}:metrics:workers`;

export async function addWorkerCounters(redis: Redis, prefix: string, deltas: Record<string, number>): Promise<void> {
  const entries = Object.entries(deltas).filter(([, v]) => v !== 0);
  if (entries.length === 0) return;
  const pipeline = redis.pipeline();
  for (const [field, value] of entries) pipeline.hincrby(key(prefix), field, Math.round(value));
  await pipeline.exec();
}

export async function readWorkerCounters(redis: Redis, prefix: string): Promise<Record<string, number>> {
  const raw = await redis.hgetall(key(prefix));
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
}
