import { describe, expect, it } from 'vitest';
import { createImportResolver, npmPackageName, parseJsonc } from '../../shared/graph/resolve-import.ts';

const file = (path: string) => ({ kind: 'file', path });
const mod = (name: string) => ({ kind: 'module', name });

describe('TypeScript and JavaScript', () => {
  const resolver = createImportResolver({
    files: [
      'tsconfig.json',
      'styles.css',
      'src/index.ts',
      'src/util.ts',
      'src/lib/index.ts',
      'src/lib/helpers.tsx',
      'src/legacy.js',
      'src/both.ts',
      'src/both.js',
      'src/types.d.ts',
      'src/esm.mts',
      'packages/core/tsconfig.json',
      'packages/core/src/index.ts',
      'packages/ui/src/index.ts',
      'apps/web/tsconfig.json',
      'apps/web/src/app.ts',
      'apps/web/src/ui/card.tsx',
    ],
    tsconfigs: [
      {
        dir: '',
        name: 'tsconfig.json',
        content: `{
          // Aliases for the whole monorepo.
          "compilerOptions": {
            "baseUrl": ".",
            "paths": {
              "@app/core": ["packages/core/src/index.ts"],
              "@app/*": ["packages/*/src"],
              "@/*": ["src/*",], /* a trailing comma, as editors allow */
            },
          },
          "include": ["src/**/*", "http://not-a-comment"],
        }`,
      },
      // Inherits baseUrl and paths from the root.
      { dir: 'packages/core', name: 'tsconfig.json', content: '{ "extends": "../../tsconfig.json" }' },
      // Its own paths replace the root's, relative to its own baseUrl.
      {
        dir: 'apps/web',
        name: 'tsconfig.json',
        content: '{ "extends": "../../tsconfig.json", "compilerOptions": { "baseUrl": "./src", "paths": { "~/*": ["*"] } } }',
      },
    ],
  });
  const ts = (from: string, spec: string) => resolver.resolve(from, 'typescript', spec);

  it('resolves relative specifiers: exact, extensions, index files, declarations', () => {
    expect(ts('src/index.ts', './util')).toEqual(file('src/util.ts'));
    expect(ts('src/index.ts', './lib')).toEqual(file('src/lib/index.ts'));
    expect(ts('src/index.ts', './lib/index')).toEqual(file('src/lib/index.ts'));
    expect(ts('src/lib/index.ts', '../types')).toEqual(file('src/types.d.ts'));
    expect(ts('src/index.ts', '../styles.css')).toEqual(file('styles.css'));
    expect(ts('src/lib/helpers.tsx', '..')).toEqual(file('src/index.ts'));
  });

  it('maps .js to .ts as TypeScript does, but not for JavaScript importers', () => {
    expect(ts('src/index.ts', './util.js')).toEqual(file('src/util.ts'));
    expect(ts('src/index.ts', './lib/helpers.js')).toEqual(file('src/lib/helpers.tsx'));
    expect(ts('src/index.ts', './esm.mjs')).toEqual(file('src/esm.mts'));
    expect(ts('src/index.ts', './both.js')).toEqual(file('src/both.ts'));
    expect(resolver.resolve('src/legacy.js', 'javascript', './both.js')).toEqual(file('src/both.js'));
    expect(resolver.resolve('src/legacy.js', 'javascript', './util.js')).toEqual(file('src/util.ts'));
  });

  it('keeps unresolved relative imports as modules named by the path they point at', () => {
    expect(ts('src/index.ts', './missing')).toEqual(mod('src/missing'));
    expect(ts('src/index.ts', '../../outside')).toEqual(mod('../../outside'));
  });

  it('honours tsconfig paths (exact keys first, then the longest wildcard prefix) and baseUrl', () => {
    expect(ts('src/index.ts', '@/util')).toEqual(file('src/util.ts'));
    expect(ts('src/index.ts', '@/lib/helpers')).toEqual(file('src/lib/helpers.tsx'));
    expect(ts('src/index.ts', '@app/core')).toEqual(file('packages/core/src/index.ts'));
    expect(ts('src/index.ts', '@app/ui')).toEqual(file('packages/ui/src/index.ts'));
    expect(ts('src/index.ts', 'src/util')).toEqual(file('src/util.ts'));
    expect(ts('src/index.ts', '@app/nothing')).toEqual(mod('@app/nothing'));
  });

  it('uses the nearest tsconfig, following extends', () => {
    expect(ts('packages/core/src/index.ts', '@/util')).toEqual(file('src/util.ts'));
    expect(ts('apps/web/src/app.ts', '~/ui/card')).toEqual(file('apps/web/src/ui/card.tsx'));
    expect(ts('apps/web/src/app.ts', '@/util')).toEqual(mod('@/util'));
  });

  it('names external packages without their subpaths', () => {
    expect(ts('src/index.ts', 'react')).toEqual(mod('react'));
    expect(ts('src/index.ts', 'lodash/fp')).toEqual(mod('lodash'));
    expect(ts('src/index.ts', '@scope/pkg/sub/path')).toEqual(mod('@scope/pkg'));
    expect(ts('src/index.ts', 'node:fs/promises')).toEqual(mod('fs'));
    expect(npmPackageName('https://deno.land/std/path/mod.ts')).toBe('https://deno.land/std/path/mod.ts');
  });

  it('works without any tsconfig', () => {
    const bare = createImportResolver({ files: ['a/b.ts', 'a/c/index.jsx'] });
    expect(bare.resolve('a/b.ts', 'tsx', './c')).toEqual(file('a/c/index.jsx'));
    expect(bare.resolve('a/b.ts', 'typescript', '@/x')).toEqual(mod('@/x'));
  });
});

describe('parseJsonc', () => {
  it('reads comments and trailing commas, keeping comment-like text inside strings', () => {
    expect(parseJsonc('{ /* a */ "a": "//b", // c\n "c": [1, 2,], }')).toEqual({ a: '//b', c: [1, 2] });
    expect(parseJsonc('{ "a": "x\\" // y", }')).toEqual({ a: 'x" // y' });
    expect(parseJsonc('{ broken')).toBeUndefined();
  });
});

describe('Python', () => {
  const resolver = createImportResolver({
    files: [
      'app/__init__.py',
      'app/models/__init__.py',
      'app/models/user.py',
      'app/services/__init__.py',
      'app/services/auth.py',
      'src/lib/__init__.py',
      'src/lib/core.py',
      'tools/run.py',
      'tools/helpers.py',
      'stubs/typed.pyi',
    ],
  });
  const py = (from: string, spec: string) => resolver.resolve(from, 'python', spec);

  it('resolves relative imports by package, one dot per level', () => {
    expect(py('app/services/auth.py', '.')).toEqual(file('app/services/__init__.py'));
    expect(py('app/services/auth.py', '..models')).toEqual(file('app/models/__init__.py'));
    expect(py('app/services/auth.py', '..models.user')).toEqual(file('app/models/user.py'));
    expect(py('app/services/auth.py', '..')).toEqual(file('app/__init__.py'));
    expect(py('app/services/auth.py', '.missing')).toEqual(mod('app/services/missing'));
    expect(py('app/services/auth.py', '....beyond')).toEqual(mod('....beyond'));
  });

  it('resolves absolute imports from the root, src/, or the importing file’s folders', () => {
    expect(py('app/services/auth.py', 'app.models.user')).toEqual(file('app/models/user.py'));
    expect(py('app/services/auth.py', 'app')).toEqual(file('app/__init__.py'));
    expect(py('app/services/auth.py', 'lib.core')).toEqual(file('src/lib/core.py'));
    expect(py('tools/run.py', 'helpers')).toEqual(file('tools/helpers.py'));
    expect(py('stubs/x.py', 'typed')).toEqual(file('stubs/typed.pyi'));
  });

  it('names external modules by their top-level package', () => {
    expect(py('app/services/auth.py', 'os.path')).toEqual(mod('os'));
    expect(py('app/services/auth.py', 'numpy')).toEqual(mod('numpy'));
  });
});

describe('Go', () => {
  const resolver = createImportResolver({
    files: [
      'go.mod',
      'main.go',
      'internal/store/db.go',
      'internal/store/store.go',
      'internal/store/store_test.go',
      'internal/util/b.go',
      'internal/util/a.go',
      'internal/util/a_test.go',
      'internal/empty/x_test.go',
      'third_party/lib/lib.go',
      'tools/go.mod',
      'tools/gen/gen.go',
    ],
    goModules: [
      {
        dir: '',
        content: 'module example.com/app // the app\n\ngo 1.22\n\nrequire github.com/x/y v1.2.3\n\nreplace example.com/lib => ./third_party/lib\n',
      },
      { dir: 'tools', content: 'module "example.com/app/tools"\n' },
    ],
  });
  const go = (spec: string) => resolver.resolve('main.go', 'go', spec);

  it('maps module paths to package directories, represented by one file', () => {
    // The file named after the package's directory, else the first non-test file by name.
    expect(go('example.com/app/internal/store')).toEqual(file('internal/store/store.go'));
    expect(go('example.com/app/internal/util')).toEqual(file('internal/util/a.go'));
    expect(go('example.com/app')).toEqual(file('main.go'));
  });

  it('prefers the longest module path and follows local replace directives', () => {
    expect(go('example.com/app/tools/gen')).toEqual(file('tools/gen/gen.go'));
    expect(go('example.com/lib')).toEqual(file('third_party/lib/lib.go'));
  });

  it('keeps the full import path of anything outside the tree', () => {
    expect(go('example.com/app/missing')).toEqual(mod('example.com/app/missing'));
    expect(go('example.com/app/internal/empty')).toEqual(mod('example.com/app/internal/empty'));
    expect(go('fmt')).toEqual(mod('fmt'));
    expect(go('github.com/x/y/v2')).toEqual(mod('github.com/x/y/v2'));
  });
});

describe('Java', () => {
  const resolver = createImportResolver({
    files: [
      'src/main/java/com/acme/App.java',
      'src/main/java/com/acme/model/User.java',
      'src/main/java/com/acme/model/Role.java',
      'lib/src/main/java/com/acme/model/User.java',
      'lib/src/main/java/com/acme/Other.java',
    ],
  });
  const java = (from: string, spec: string) => resolver.resolve(from, 'java', spec);

  it('finds a class under any source root, the closest one first', () => {
    expect(java('src/main/java/com/acme/App.java', 'com.acme.model.User')).toEqual(file('src/main/java/com/acme/model/User.java'));
    expect(java('lib/src/main/java/com/acme/Other.java', 'com.acme.model.User')).toEqual(file('lib/src/main/java/com/acme/model/User.java'));
  });

  it('resolves nested classes to their file and wildcard packages to one of their files', () => {
    expect(java('src/main/java/com/acme/App.java', 'com.acme.model.User.Builder')).toEqual(file('src/main/java/com/acme/model/User.java'));
    expect(java('src/main/java/com/acme/App.java', 'com.acme.model')).toEqual(file('src/main/java/com/acme/model/Role.java'));
  });

  it('keeps the full name of anything outside the tree', () => {
    expect(java('src/main/java/com/acme/App.java', 'java.util.List')).toEqual(mod('java.util.List'));
    expect(java('src/main/java/com/acme/App.java', 'org.junit')).toEqual(mod('org.junit'));
  });
});

describe('other languages', () => {
  const resolver = createImportResolver({ files: ['src/lib.rs'] });

  it('names Rust crates, keeps crate-local paths, and passes others through', () => {
    expect(resolver.resolve('src/lib.rs', 'rust', 'std::collections::HashMap')).toEqual(mod('std'));
    expect(resolver.resolve('src/lib.rs', 'rust', 'crate::a::b')).toEqual(mod('crate::a::b'));
    expect(resolver.resolve('a.cs', 'csharp', 'System.Text')).toEqual(mod('System.Text'));
  });
});
