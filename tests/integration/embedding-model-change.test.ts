import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVectorStore } from '../../shared/stores/vector.store.ts';
import type { IndexResult } from '../../workers/jobs/index-repository.job.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

/**
 * Search reads the vectors of the configured embedding model only. A platform
 * whose model changes (here: the local model's dimensions, as switching to or
 * from OpenAI does) must embed its repositories again in the new space, even
 * though no file changed, and drop the old space's vectors once it has.
 */
describe('a change of embedding model', () => {
  let before: TestPlatform;
  let after: TestPlatform;
  let repo: GitFixture;
  const ref = () => ({ repositoryId: repositoryId!, branch: 'main' });
  let repositoryId: number | undefined;

  async function index(t: TestPlatform): Promise<IndexResult> {
    const { jobId } = await t.repos.requestIndex('ledger');
    return (await waitForJob(t.platform.queues.queues.index, jobId)) as IndexResult;
  }
  const collectionNames = async (t: TestPlatform) => (await t.platform.stores.chroma.client.listCollections({ limit: 1000 })).map((c) => c.name);

  beforeAll(async () => {
    repo = createGitFixture();
    repo.write({
      'src/ledger.ts': 'export function reconcileLedger(entries: number[]): number {\n  return entries.reduce((a, b) => a + b, 0);\n}\n',
      'src/audit.py': 'def audit_trail(events):\n    return [e for e in events if e]\n',
      'README.md': '# Ledger\n\nBalances and audits.\n',
    });
    repo.commit('initial');
    before = await openTestPlatform();
    await before.startWorkers();
  });

  afterAll(async () => {
    await after?.stopWorkers();
    await after?.platform.close().catch(() => undefined);
    await before?.cleanup();
    repo?.cleanup();
  });

  it('re-embeds every chunk in the new space without any file changing, then drops the old space', async () => {
    const added = await before.repos.add({ source: repo.dir, name: 'ledger' });
    repositoryId = added.id;
    await index(before);
    const live = (await before.platform.chunks.liveChunkIds(added.id)).sort();
    expect(live.length).toBeGreaterThan(2);
    expect((await before.platform.vectors.ids({ repositoryBranches: [ref()] })).sort()).toEqual(live);
    const oldCollection = before.platform.vectors.collectionName(ref());

    // The same deployment (schema, queues, collections) restarted with another embedding model.
    await before.stopWorkers();
    after = await openTestPlatform(
      {
        databaseSchema: before.config.databaseSchema,
        queuePrefix: before.config.queuePrefix,
        chromaCollectionPrefix: before.config.chromaCollectionPrefix,
        embedding: { ...before.config.embedding, localDimensions: 256 },
      },
    );
    expect(after.platform.embeddings.id).not.toBe(before.platform.embeddings.id);
    await after.startWorkers();
    const [hit] = (await after.search.search({ query: 'reconcileLedger', repositories: ['ledger'] })).hits;
    expect(hit?.matchedBy).toEqual(['text']); // no vectors in the new space yet

    const embeddedBefore = after.platform.embeddings.stats().inputs;
    const result = await index(after);
    expect(result).toMatchObject({ upToDate: false, restagedAll: true, commit: repo.head() });
    // Every chunk was embedded in the new space, and the ids are the same chunks.
    expect(after.platform.embeddings.stats().inputs - embeddedBefore).toBe(live.length);
    expect((await after.platform.vectors.ids({ repositoryBranches: [ref()] })).sort()).toEqual(live);
    expect((await after.platform.chunks.liveChunkIds(added.id)).sort()).toEqual(live);
    const [again] = (await after.search.search({ query: 'reconcileLedger', repositories: ['ledger'] })).hits;
    expect(again).toMatchObject({ path: 'src/ledger.ts' });
    expect([...again!.matchedBy].sort()).toEqual(['text', 'vector']);
    const names = await collectionNames(after);
    expect(names).toContain(after.platform.vectors.collectionName(ref()));
    expect(names).not.toContain(oldCollection);

    // Once whole, the branch is up to date again: nothing is staged or embedded a second time.
    const embeddedAfter = after.platform.embeddings.stats().inputs;
    const next = await index(after);
    expect(next).toMatchObject({ upToDate: true });
    expect(after.platform.embeddings.stats().inputs).toBe(embeddedAfter);
  });

  it('removing the repository drops its collections in every embedding space', async () => {
    // A collection of the earlier model again (as a deployment switching back and forth would leave).
    // (A store of its own: `before`'s remembers the collection the model change dropped.)
    await createVectorStore(before.platform.stores.chroma, before.platform.embeddings.id).upsert([
      {
        id: 'stray',
        embedding: Array.from({ length: 384 }, (_, i) => (i === 0 ? 1 : 0)),
        metadata: { repository_id: repositoryId!, branch: 'main', path: 'x', language: '', start_line: 1, end_line: 1, symbol: '', kind: 'block', commit: repo.head() },
      },
    ]);
    const both = [before.platform.vectors.collectionName(ref()), after.platform.vectors.collectionName(ref())];
    expect(await collectionNames(after)).toEqual(expect.arrayContaining(both));

    await after.repos.remove('ledger');
    const left = await collectionNames(after);
    for (const name of both) expect(left).not.toContain(name);
  });
});
