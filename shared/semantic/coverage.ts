import type { Platform } from '../platform.ts';
import { coverageKey } from '../stores/model-vector.repository.ts';

/** How far the local model tier has come on one branch: chunks with a model vector, chunks it failed on, of all live chunks. */
export interface BranchSemanticCoverage {
  model: string;
  embedded: number;
  failed: number;
  total: number;
  /** Every live chunk has a model vector or was recorded as failed. */
  complete: boolean;
}

/**
 * Coverage of the given branches in one query, for listings (API, MCP,
 * CLI). Null for every branch when the model tier is off.
 */
export async function semanticCoverage(
  platform: Pick<Platform, 'semantic'>,
  branches: Array<{ repositoryId: number; branch: string }>,
): Promise<(b: { repositoryId: number; branch: string }) => BranchSemanticCoverage | null> {
  const tier = platform.semantic;
  if (!tier) return () => null;
  const model = tier.embeddings.id;
  const found = await tier.modelVectors.coverage(model, branches);
  return (b) => {
    const c = found.get(coverageKey(b)) ?? { embedded: 0, failed: 0, total: 0 };
    return { model, ...c, complete: c.embedded + c.failed >= c.total };
  };
}

/** `model 812/1,204 (67%)` for people. */
export function describeCoverage(c: BranchSemanticCoverage | null): string {
  if (!c) return '';
  const pct = c.total === 0 ? 100 : Math.floor((100 * (c.embedded + c.failed)) / c.total);
  return `model ${c.embedded}/${c.total} (${pct}%${c.failed ? `, ${c.failed} failed` : ''})`;
}
