import { describe, expect, it } from 'vitest';
import { boundedKey } from '../../shared/stores/graph.store.ts';

describe('graph node keys', () => {
  it('keeps short keys as they are', () => {
    const key = 'ns/1\u0000main\u0000src/app.ts#App.run@12';
    expect(boundedKey(key)).toBe(key);
  });

  it('bounds long keys, keeping a readable head and staying unique', () => {
    const head = `ns/1\u0000main\u0000${'deep/'.repeat(400)}`;
    const a = boundedKey(`${head}a.ts#Thing@1`);
    const b = boundedKey(`${head}a.ts#Thing@2`);
    expect(a.length).toBeLessThanOrEqual(512);
    expect(b.length).toBeLessThanOrEqual(512);
    expect(a).not.toBe(b);
    expect(a.startsWith('ns/1\u0000main\u0000deep/deep/')).toBe(true);
    expect(boundedKey(`${head}a.ts#Thing@1`)).toBe(a);
  });
});
