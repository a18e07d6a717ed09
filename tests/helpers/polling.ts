/** Polls `check` every 20 ms until it holds; fails after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Counts the queries made through `pool` until `stop()`, which also restores it. */
export function countQueries(pool: { query: (...args: never[]) => unknown }) {
  const original = pool.query;
  let n = 0;
  pool.query = ((...args: never[]) => {
    n++;
    return original.apply(pool, args);
  }) as typeof pool.query;
  return {
    stop() {
      pool.query = original;
      return n;
    },
  };
}
