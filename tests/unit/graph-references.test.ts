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

describe('resolution by owner and through re-exports', () => {
  it('prefers a method of the caller\'s own type over a same-named one earlier in the file', () => {
    const own = [
      { file: 'm', key: 'm:Square.area', name: 'area', qualifiedName: 'Square.area', kind: 'method', calls: [], ext: null, impl: null },
      { file: 'm', key: 'm:Shape.area', name: 'area', qualifiedName: 'Shape.area', kind: 'method', calls: [], ext: null, impl: null },
      { file: 'm', key: 'm:Shape.describe', name: 'describe', qualifiedName: 'Shape.describe', kind: 'method', calls: ['area'], ext: null, impl: null },
    ];
    expect(resolveReferences(own, [])).toEqual([{ from: 'm:Shape.describe', rel: 'CALLS', to: 'm:Shape.area' }]);
  });

  it('falls back to re-exported symbols only when nothing closer has the name', () => {
    const own = [{ file: 'm', key: 'm:main', name: 'main', qualifiedName: 'main', kind: 'function', calls: ['deep', 'near'], ext: null, impl: null }];
    const imported = [
      {
        file: 'm',
        symbols: [{ key: 'a:near', name: 'near', kind: 'function' }],
        reexported: [
          { key: 'inner:deep', name: 'deep', kind: 'function' },
          { key: 'inner:near', name: 'near', kind: 'function' },
        ],
      },
    ];
    expect(resolveReferences(own, imported)).toEqual([
      { from: 'm:main', rel: 'CALLS', to: 'inner:deep' },
      { from: 'm:main', rel: 'CALLS', to: 'a:near' },
    ]);
  });
});
