import type pg from 'pg';
import type { PostgresConnection } from '../stores/postgres.connection.ts';

/**
 * The publish barrier: what moves a branch's published state (a run's publish step, the graph batches that
 * write the live graph, a repository's removal) holds it shared; a backup or a restore holds it exclusive,
 * so every branch keeps its published commit for the length of the set and the three stores agree. Index
 * runs go on meanwhile (fetch, chunking, embedding); only those steps wait, and the backup waits only for
 * the ones already under way. A Postgres advisory lock, keyed by the deployment's schema: a process that
 * dies lets go of it with its connection.
 */
const KEY = `hashtext(current_schema() || ':publish-barrier')`;

export async function withPublishBarrier<T>(pg: PostgresConnection, work: () => Promise<T>): Promise<T> {
  const client = await pg.pool.connect();
  let released = false;
  try {
    await client.query(`SELECT pg_advisory_lock_shared(${KEY})`);
    try {
      return await work();
    } finally {
      await client.query(`SELECT pg_advisory_unlock_shared(${KEY})`).catch((err: unknown) => {
        // The session ends with the client, and the lock with it.
        client.release(err instanceof Error ? err : new Error(String(err)));
        released = true;
      });
    }
  } finally {
    if (!released) client.release();
  }
}

/** Takes the barrier exclusive on a client of its own; the returned function lets go. */
export async function holdPublishBarrier(pg: PostgresConnection): Promise<{ client: pg.PoolClient; release(): Promise<void> }> {
  const client = await pg.pool.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(${KEY})`);
  } catch (err) {
    client.release(err instanceof Error ? err : true);
    throw err;
  }
  let done = false;
  return {
    client,
    async release() {
      if (done) return;
      done = true;
      try {
        await client.query(`SELECT pg_advisory_unlock(${KEY})`);
        client.release();
      } catch (err) {
        client.release(err instanceof Error ? err : true);
      }
    },
  };
}
