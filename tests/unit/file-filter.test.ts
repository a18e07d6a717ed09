import { describe, expect, it } from 'vitest';
import { createFileFilter, MAX_PATH_BYTES, type FileFilterOptions } from '../../shared/indexing/file-filter.ts';

const defaults: FileFilterOptions = { gitignores: [], include: [], exclude: [], maxFileBytes: 1000 };
const filterWith = (opts: Partial<FileFilterOptions>) => createFileFilter({ ...defaults, ...opts });

/** Decision for each path (size 10), as `indexed` or the skip reason. */
function decide(filter: ReturnType<typeof createFileFilter>, paths: string[]): Record<string, string> {
  return Object.fromEntries(
    paths.map((p) => {
      const d = filter.check(p, 10);
      return [p, d.indexed ? 'indexed' : d.reason];
    }),
  );
}

function decideContent(filter: ReturnType<typeof createFileFilter>, path: string, content: string | Buffer): string {
  const d = filter.checkContent(path, typeof content === 'string' ? Buffer.from(content) : content);
  return d.indexed ? 'indexed' : d.reason;
}

describe('gitignore', () => {
  const filter = filterWith({
    gitignores: [
      { dir: '', content: '# build output\n*.log\n/tmp/\ngenerated/\n!keep.log\n' },
      { dir: 'packages/api', content: 'secret.txt\n/local.txt\n!debug.log\n' },
      // git never reads this one: its folder is ignored from the root.
      { dir: 'generated', content: '!keep.ts\n' },
    ],
  });

  it('applies root rules, negations and anchors', () => {
    expect(decide(filter, ['app.log', 'src/app.log', 'keep.log', 'src/keep.log', 'tmp/x.ts', 'src/tmp/x.ts', 'src/app.ts'])).toEqual({
      'app.log': 'gitignored',
      'src/app.log': 'gitignored',
      'keep.log': 'indexed',
      'src/keep.log': 'indexed',
      'tmp/x.ts': 'gitignored',
      'src/tmp/x.ts': 'indexed',
      'src/app.ts': 'indexed',
    });
  });

  it('applies nested .gitignore rules relative to their folder, deeper files winning', () => {
    expect(
      decide(filter, [
        'packages/api/secret.txt',
        'packages/api/deep/secret.txt',
        'secret.txt',
        'packages/web/secret.txt',
        'packages/api/local.txt',
        'packages/api/src/local.txt',
        'packages/api/debug.log',
        'packages/web/debug.log',
      ]),
    ).toEqual({
      'packages/api/secret.txt': 'gitignored',
      'packages/api/deep/secret.txt': 'gitignored',
      'secret.txt': 'indexed',
      'packages/web/secret.txt': 'indexed',
      'packages/api/local.txt': 'gitignored',
      'packages/api/src/local.txt': 'indexed',
      'packages/api/debug.log': 'indexed',
      'packages/web/debug.log': 'gitignored',
    });
  });

  it('cannot re-include a file below an ignored folder', () => {
    expect(decide(filter, ['generated/a.ts', 'generated/keep.ts', 'src/generated/b.ts'])).toEqual({
      'generated/a.ts': 'gitignored',
      'generated/keep.ts': 'gitignored',
      'src/generated/b.ts': 'gitignored',
    });
  });
});

describe('include and exclude globs', () => {
  const filter = filterWith({ include: ['src/**', '*.md'], exclude: ['**/*.test.ts', 'fixtures', 'src/legacy/'] });

  it('keeps only included files, and drops excluded files and folders', () => {
    expect(
      decide(filter, [
        'src/a.ts',
        './src/b.ts',
        'docs/guide.md',
        'README.md',
        'scripts/run.sh',
        'src/a.test.ts',
        'src/fixtures/data.json',
        'src/fixtures.ts',
        'src/legacy/old.ts',
        'src/.config/app.ts',
      ]),
    ).toEqual({
      'src/a.ts': 'indexed',
      './src/b.ts': 'indexed',
      'docs/guide.md': 'indexed',
      'README.md': 'indexed',
      'scripts/run.sh': 'not-included',
      'src/a.test.ts': 'excluded',
      'src/fixtures/data.json': 'excluded',
      'src/fixtures.ts': 'indexed',
      'src/legacy/old.ts': 'excluded',
      'src/.config/app.ts': 'indexed',
    });
  });

  it('matches a repository glob of many wildcards at once (no backtracking), and refuses an unbalanced one', () => {
    const started = performance.now();
    const filter = filterWith({ include: [`${'*a'.repeat(12)}b`, 'docs/**/*a*a*a*a*a*a*a*a*a*a*b.md'] });
    const deep = `docs/${'a/'.repeat(40)}${'a'.repeat(60)}.md`;
    expect(decide(filter, [`${'a'.repeat(60)}.md`, deep, 'src/aaaaaaaaaaaaaab.ts'])).toEqual({
      [`${'a'.repeat(60)}.md`]: 'not-included',
      [deep]: 'not-included',
      'src/aaaaaaaaaaaaaab.ts': 'not-included',
    });
    expect(decide(filter, ['src/aaaaaaaaaaaaaaaaaaaaaaaaab'])).toEqual({ 'src/aaaaaaaaaaaaaaaaaaaaaaaaab': 'indexed' });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(() => filterWith({ exclude: ['src/[abc'] })).toThrow(/path glob "src\/\[abc" is not valid/);
  });

  it('includes everything when include is empty', () => {
    expect(decide(filterWith({}), ['anything/at/all.xyz', 'Makefile'])).toEqual({
      'anything/at/all.xyz': 'indexed',
      Makefile: 'indexed',
    });
  });
});

describe('built-in exclusions', () => {
  const filter = filterWith({});

  it('skips dependency, build, cache and tool folders at any depth', () => {
    const paths = [
      'node_modules/lodash/index.js',
      'packages/a/node_modules/x/index.js',
      'vendor/github.com/x/y.go',
      'third_party/zlib/zlib.c',
      'dist/index.js',
      'web/build/main.js',
      'out/app.js',
      'target/debug/main.rs',
      '.next/server/page.js',
      'coverage/lcov-report/index.html',
      '.git/config',
      '.venv/lib/site.py',
      'venv/bin/activate',
      'app/__pycache__/m.py',
      '.idea/workspace.xml',
      '.vscode/settings.json',
      'App/obj/project.assets.json',
      'App/bin/Debug/net8.0/App.xml',
      'ios/Pods/Alamofire/Source.swift',
      'android/.gradle/caches/x.txt',
      'pkg/my_pkg.egg-info/PKG-INFO',
    ];
    const decisions = decide(filter, paths);
    expect(Object.entries(decisions).filter(([, d]) => d !== 'built-in-directory')).toEqual([]);
  });

  it('keeps look-alikes that are source', () => {
    expect(decide(filter, ['bin/cli.js', 'src/build.ts', 'src/distance.ts', 'tools/vendor.go', 'docs/output.md'])).toEqual({
      'bin/cli.js': 'indexed',
      'src/build.ts': 'indexed',
      'src/distance.ts': 'indexed',
      'tools/vendor.go': 'indexed',
      'docs/output.md': 'indexed',
    });
  });

  it('skips lock files but not manifests', () => {
    expect(
      decide(filter, [
        'package-lock.json',
        'web/yarn.lock',
        'pnpm-lock.yaml',
        'Cargo.lock',
        'poetry.lock',
        'Gemfile.lock',
        'composer.lock',
        'go.sum',
        'package.json',
        'go.mod',
        'src/lock.ts',
      ]),
    ).toEqual({
      'package-lock.json': 'lock-file',
      'web/yarn.lock': 'lock-file',
      'pnpm-lock.yaml': 'lock-file',
      'Cargo.lock': 'lock-file',
      'poetry.lock': 'lock-file',
      'Gemfile.lock': 'lock-file',
      'composer.lock': 'lock-file',
      'go.sum': 'lock-file',
      'package.json': 'indexed',
      'go.mod': 'indexed',
      'src/lock.ts': 'indexed',
    });
  });

  it('skips binary and media files, source maps, likely secrets and generated names', () => {
    expect(
      decide(filter, [
        'assets/logo.png',
        'assets/PHOTO.JPG',
        'fonts/inter.woff2',
        'lib/app.jar',
        'docs/spec.pdf',
        'native/libfoo.so',
        'web/app.wasm',
        'release.tar.gz',
        'public/app.js.map',
        '.env',
        'config/.env.production',
        '.env.example',
        'certs/server.pem',
        'api/user.pb.go',
        'proto/user_pb2.py',
        'src/user.go',
      ]),
    ).toEqual({
      'assets/logo.png': 'binary-extension',
      'assets/PHOTO.JPG': 'binary-extension',
      'fonts/inter.woff2': 'binary-extension',
      'lib/app.jar': 'binary-extension',
      'docs/spec.pdf': 'binary-extension',
      'native/libfoo.so': 'binary-extension',
      'web/app.wasm': 'binary-extension',
      'release.tar.gz': 'binary-extension',
      'public/app.js.map': 'source-map',
      '.env': 'secret',
      'config/.env.production': 'secret',
      '.env.example': 'indexed',
      'certs/server.pem': 'secret',
      'api/user.pb.go': 'generated-name',
      'proto/user_pb2.py': 'generated-name',
      'src/user.go': 'indexed',
    });
  });

  it('skips files over maxFileBytes', () => {
    expect(filter.check('src/a.ts', 1000)).toEqual({ indexed: true });
    expect(filter.check('src/a.ts', 1001)).toEqual({ indexed: false, reason: 'too-large' });
    expect(filter.checkContent('src/a.ts', Buffer.alloc(1001, 0x61))).toEqual({ indexed: false, reason: 'too-large' });
  });

  it('skips paths longer than Postgres can key, counted in bytes', () => {
    const within = `src/${'é'.repeat(Math.floor((MAX_PATH_BYTES - 7) / 2))}.ts`;
    expect(Buffer.byteLength(within)).toBeLessThanOrEqual(MAX_PATH_BYTES);
    expect(filter.check(within, 10)).toEqual({ indexed: true });
    expect(filter.check(`é${within}`, 10)).toEqual({ indexed: false, reason: 'path-too-long' });
  });

  it('reads a backslash in a tree path as part of a name, never as a folder separator', () => {
    // Git separates folders with `/` only; names that are not UTF-8 come with backslash escapes (`build\351.ts`).
    expect(decide(filterWith({ gitignores: [{ dir: '', content: 'docs/\n' }] }), ['build\\351.ts', 'node_modules\\x.js', 'docs\\guide.md', 'docs/guide.md'])).toEqual({
      'build\\351.ts': 'indexed',
      'node_modules\\x.js': 'indexed',
      'docs\\guide.md': 'indexed',
      'docs/guide.md': 'gitignored',
    });
  });
});

describe('content checks', () => {
  const filter = filterWith({ maxFileBytes: 1_000_000 });

  it('detects binary content by a NUL byte or control characters in the first 8 KB', () => {
    expect(decideContent(filter, 'data.txt', Buffer.from([0x68, 0x69, 0x00, 0x21]))).toBe('binary');
    expect(decideContent(filter, 'blob.dat2', Buffer.from(Array.from({ length: 400 }, (_, i) => (i % 3 === 0 ? 0x01 : 0x41))))).toBe('binary');
    // git's rule too: a NUL past the first 8000 bytes does not make a file binary.
    expect(decideContent(filter, 'late.txt', Buffer.concat([Buffer.alloc(9000, 0x61), Buffer.from([0])]))).toBe('indexed');
    expect(decideContent(filter, 'utf8.md', 'Ünïcödé ✓ 日本語 — emoji 🎉\nline two\n')).toBe('indexed');
    expect(decideContent(filter, 'latin1.txt', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]))).toBe('indexed');
    expect(decideContent(filter, 'colors.log', '\x1b[31mred\x1b[0m\tok\r\n\f')).toBe('indexed');
    expect(decideContent(filter, 'empty.ts', '')).toBe('indexed');
  });

  it('detects minified files by name or by very long lines, but not prose', () => {
    const longLines = Array.from({ length: 3 }, () => 'var a=1;'.repeat(250)).join('\n');
    expect(decideContent(filter, 'public/app.min.js', 'console.log(1);\n')).toBe('minified');
    expect(decideContent(filter, 'public/site.min.css', 'a{color:red}\n')).toBe('minified');
    expect(decideContent(filter, 'src/bundle.js', longLines)).toBe('minified');
    expect(decideContent(filter, 'data/dump.json', `[${'1,'.repeat(600)}1]`)).toBe('minified');
    expect(decideContent(filter, 'docs/essay.md', longLines)).toBe('indexed');
    expect(decideContent(filter, 'notes.txt', longLines)).toBe('indexed');
    expect(decideContent(filter, 'src/one-liner.js', `module.exports = ${JSON.stringify('x'.repeat(400))};`)).toBe('indexed');
    const normal = Array.from({ length: 200 }, (_, i) => `export const value${i} = ${i};`).join('\n');
    expect(decideContent(filter, 'src/values.ts', normal)).toBe('indexed');
  });

  it('detects generator markers in the opening comments', () => {
    const generated: Array<[string, string]> = [
      ['api/user.go', '// Code generated by protoc-gen-go. DO NOT EDIT.\n// source: user.proto\n\npackage api\n'],
      ['src/schema.ts', '/**\n * @generated SignedSource<<abc>>\n */\nexport const schema = {};\n'],
      ['Models/User.cs', '//------------------------------------------------------------------------------\n// <auto-generated>\n//     This code was generated by a tool.\n// </auto-generated>\n//------------------------------------------------------------------------------\nnamespace Models {}\n'],
      ['pkg/version.py', '# -*- coding: utf-8 -*-\n# This file is automatically generated by setup.py\nVERSION = "1.0"\n'],
      ['lib/parser.c', '/*\n   Copyright 2020 Example Corp.\n\n   This file is auto-generated from grammar.y.\n*/\nint parse(void);\n'],
      ['gen/api.php', '<?php\n// DO NOT EDIT: generated from openapi.yaml\nclass Api {}\n'],
    ];
    for (const [path, content] of generated) expect([path, decideContent(filter, path, content)]).toEqual([path, 'generated']);
  });

  it('ignores markers that are not in the opening comments', () => {
    const handwritten: Array<[string, string]> = [
      ['src/ids.ts', 'import { randomUUID } from "node:crypto";\n// ids are auto-generated on insert\nexport const newId = () => randomUUID();\n'],
      ['src/readme.md', '# Tools\n\nThis tool reads files that say DO NOT EDIT and @generated.\n'],
      ['main.go', '// Package main is a tool.\npackage main\n\n// Code generated by hand; DO NOT EDIT comments below.\n'],
    ];
    for (const [path, content] of handwritten) expect([path, decideContent(filter, path, content)]).toEqual([path, 'indexed']);
  });
});
