/** What every store adapter offers the rest of the platform. */
export interface StoreConnection {
  /** Resolves when the store answers a trivial request; rejects with the reason otherwise. */
  ping(): Promise<void>;
  /** Releases the connection. Safe to call more than once. */
  close(): Promise<void>;
}

export const STORE_NAMES = ['redis', 'postgres', 'chroma', 'neo4j'] as const;
export type StoreName = (typeof STORE_NAMES)[number];

/** Wraps a close function so that repeated calls share the first one. */
export function once(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}
