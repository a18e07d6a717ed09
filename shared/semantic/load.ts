import type { Logger } from '../logger.ts';
import type { Platform } from '../platform.ts';

/**
 * Loads the local model at process start, so the first search or batch does
 * not pay for it (~0.3 s) and a missing or damaged model is said once, at
 * start, in one line naming the fix. Never fails the start: without the
 * model, search ranks by full text and fast vectors and says so.
 */
export async function loadSemanticModel(platform: Pick<Platform, 'semantic'>, logger: Pick<Logger, 'info' | 'warn'>): Promise<boolean> {
  const tier = platform.semantic;
  if (!tier) return false;
  try {
    await tier.embeddings.load();
    logger.info({ model: tier.embeddings.id }, 'local embedding model loaded');
    return true;
  } catch (err) {
    logger.warn(err instanceof Error ? err.message : String(err));
    return false;
  }
}
