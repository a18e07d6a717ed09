import { describe, expect, it } from 'vitest';
import { resolveReferences } from '../../shared/stores/graph.store.ts';

describe('call and inheritance resolution by name', () => {
  const own = [
    { file: 'a', key: 'a:main', name: 'main', kind: 'function', calls: ['helper', 'shared', 'missing', 'main'], ext: null, impl: null },
    { file: 'a', key: 'a:helper', name: 'helper', kind: 'function', calls: [], ext: null, impl: null },
    { file: 'a', key: 'a:Impl', name: 'Impl', kind: 'class', calls: null, ext: ['Base', 'helper'], impl: ['Shape'] },
    { file: 'b', key: 'b:other', name: 'other', kind: 'function', calls: ['helper'], ext: null, impl: null },
  ];
  const imported = [
    {
      file: 'a',
      symbols: [
        { key: 'lib:shared', name: 'shared', kind: 'function' },
        { key: 'lib:helper', name: 'helper', kind: 'function' },
        { key: 'lib:Base', name: 'Base', kind: 'class' },
        { key: 'lib:Shape', name: 'Shape', kind: 'interface' },
      ],
    },
  ];

  it('prefers the same file, falls back to imports, and never links a symbol to itself', () => {
    expect(resolveReferences(own, imported)).toEqual([
      { from: 'a:main', rel: 'CALLS', to: 'a:helper' },
      { from: 'a:main', rel: 'CALLS', to: 'lib:shared' },
      { from: 'a:Impl', rel: 'EXTENDS', to: 'lib:Base' },
      { from: 'a:Impl', rel: 'IMPLEMENTS', to: 'lib:Shape' },
    ]);
  });

  it('only inherits from types, and a file without imports resolves locally only', () => {
    const edges = resolveReferences(own, imported);
    // `extends helper` names a function: no edge.
    expect(edges.some((e) => e.from === 'a:Impl' && e.to.endsWith('helper'))).toBe(false);
    // File b imports nothing and defines no `helper`.
    expect(edges.some((e) => e.from === 'b:other')).toBe(false);
  });
});
