import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { createChunker, type Chunk, type Chunker } from '../../shared/indexing/chunker.ts';
import { detectLanguage, hasGrammar, type Language } from '../../shared/indexing/language.ts';

/** Source text from a template literal: drops the first newline so line 1 is the first line written. */
const src = (s: string) => s.replace(/^\n/, '');

type Row = [startLine: number, endLine: number, kind: Chunk['kind'], symbol: string | null];
const rows = (chunks: Chunk[]): Row[] => chunks.map((c) => [c.startLine, c.endLine, c.kind, c.symbol]);

/**
 * The promises every chunking makes: each non-blank line is in a chunk, a
 * chunk's text is exactly its lines (or a piece of one long line), and no
 * chunk passes the hard cap.
 */
function expectSound(chunks: Chunk[], content: string, chunker: Chunker): void {
  const lines = content.split('\n').map((l) => l.replace(/\r$/, ''));
  const covered = new Array<boolean>(lines.length).fill(false);
  const cap = chunker.options.maxChunkChars + chunker.options.minChunkChars;
  for (const c of chunks) {
    expect(c.startLine).toBeGreaterThanOrEqual(1);
    expect(c.endLine).toBeGreaterThanOrEqual(c.startLine);
    expect(c.endLine).toBeLessThanOrEqual(lines.length);
    expect(c.content.length).toBeLessThanOrEqual(cap);
    const text = lines.slice(c.startLine - 1, c.endLine).join('\n');
    const content = c.content.replaceAll('\r\n', '\n');
    if (content !== text) {
      expect(c.startLine).toBe(c.endLine);
      expect(text.includes(content)).toBe(true);
    }
    for (let i = c.startLine - 1; i < c.endLine; i++) covered[i] = true;
  }
  const missing = lines.flatMap((l, i) => (l.trim() !== '' && !covered[i] ? [i + 1] : []));
  expect(missing).toEqual([]);
}

let chunker: Chunker;
let small: Chunker;

beforeAll(async () => {
  chunker = await createChunker();
  small = await createChunker({ maxChunkChars: 150, minChunkChars: 40 });
});

afterAll(() => {
  chunker.close();
  small.close();
});

async function chunkWith(c: Chunker, path: string, content: string, language?: Language): Promise<Chunk[]> {
  const chunks = await c.chunk({ path, content, language: language ?? detectLanguage(path) });
  expectSound(chunks, content, c);
  return chunks;
}

describe('syntax-aware chunks per language (class split into members at maxChunkChars 150)', () => {
  it('typescript: methods are qualified by their class, JSDoc stays with its definition', async () => {
    const content = src(`
import { Store } from './store.ts';

/** Keeps recent values. */
export class Cache {
  private readonly map = new Map<string, number>();

  /** Reads one value. */
  get(key: string): number | undefined {
    return this.map.get(key);
  }

  set(key: string, value: number): void {
    this.map.set(key, value);
  }
}

export const parseArgs = (argv: string[]): string[] => argv.slice(2);
`);
    const chunks = await chunkWith(small, 'src/cache.ts', content);
    expect(rows(chunks)).toEqual([
      [1, 5, 'class', 'Cache'],
      [7, 10, 'method', 'Cache.get'],
      [12, 15, 'method', 'Cache.set'],
      [17, 17, 'function', 'parseArgs'],
    ]);
    expect(chunks[1]!.content).toBe(
      '  /** Reads one value. */\n  get(key: string): number | undefined {\n    return this.map.get(key);\n  }',
    );
  });

  it('typescript: interfaces, type aliases, enums, namespaces, decorated and default-exported classes', async () => {
    const c = await createChunker({ minChunkChars: 10, packDefsBelow: 0 });
    const content = src(`
export interface User {
  id: string;
}
export type UserId = User['id'];
export enum Role {
  Admin,
  Member,
}
export namespace Users {
  export const all: User[] = [];
}
export function findUser(id: UserId): User | undefined {
  return Users.all.find((u) => u.id === id);
}
@Injectable()
export class Service {}
export default class Repo {}
`);
    expect(rows(await chunkWith(c, 'src/user.ts', content))).toEqual([
      [1, 3, 'interface', 'User'],
      [4, 4, 'type', 'UserId'],
      [5, 8, 'enum', 'Role'],
      [9, 11, 'namespace', 'Users'],
      [12, 14, 'function', 'findUser'],
      [15, 16, 'class', 'Service'],
      [17, 17, 'class', 'Repo'],
    ]);
    c.close();
  });

  it('tsx: components parse with the TSX grammar', async () => {
    const content = src(`
export function Greeting({ name }: { name: string }) {
  return <h1 className="greeting">Hello, {name}!</h1>;
}
`);
    expect(rows(await chunkWith(chunker, 'src/Greeting.tsx', content))).toEqual([[1, 3, 'function', 'Greeting']]);
  });

  it('javascript: declarations, class members, glue blocks', async () => {
    const content = src(`
'use strict';
const path = require('node:path');
const DEFAULT_PORT = 8080;

function resolveRoot(dir) {
  return path.resolve(dir, '..');
}

class Server {
  constructor(port) {
    this.port = port ?? DEFAULT_PORT;
  }

  // Starts accepting connections.
  listen() {
    return \`listening on \${this.port}\`;
  }
}

module.exports = { resolveRoot, Server };
`);
    expect(rows(await chunkWith(small, 'lib/server.js', content))).toEqual([
      [1, 3, 'block', null],
      [5, 7, 'function', 'resolveRoot'],
      [9, 12, 'method', 'Server.constructor'],
      [14, 18, 'method', 'Server.listen'],
      [20, 20, 'block', null],
    ]);
  });

  it('python: decorated methods, docstring in the class header', async () => {
    const content = src(`
import os


class Cache:
    """Keeps recent values."""

    def __init__(self):
        self.values = {}

    @staticmethod
    def key(name):
        return name.lower()

    def get(self, name):
        return self.values.get(Cache.key(name))


def load(path):
    with open(path) as f:
        return f.read()
`);
    expect(rows(await chunkWith(small, 'cache.py', content))).toEqual([
      [1, 5, 'class', 'Cache'],
      [7, 8, 'method', 'Cache.__init__'],
      [10, 12, 'method', 'Cache.key'],
      [14, 15, 'method', 'Cache.get'],
      [18, 20, 'function', 'load'],
    ]);
  });

  it('go: structs, methods named by their receiver type, doc comments attached', async () => {
    const content = src(`
package cache

import "sync"

// Cache keeps recent values.
type Cache struct {
	mu     sync.Mutex
	values map[string]int
}

// Get reads one value.
func (c *Cache) Get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[key]
}

func New() *Cache {
	return &Cache{values: map[string]int{}}
}
`);
    expect(rows(await chunkWith(small, 'cache.go', content))).toEqual([
      [1, 9, 'struct', 'Cache'],
      [11, 16, 'method', 'Cache.Get'],
      [18, 20, 'function', 'New'],
    ]);
  });

  it('java: class header with fields, constructor, annotated method, nested class', async () => {
    const content = src(`
package demo;

import java.util.HashMap;
import java.util.Map;

public class Cache {
    private final HashMap<String, Integer> values = new HashMap<>();

    public Cache() {
        values.put("seed", 1);
    }

    @Override
    public String toString() {
        return "Cache" + values;
    }

    static class Entry {
        int hits;
    }
}
`);
    expect(rows(await chunkWith(small, 'src/main/java/demo/Cache.java', content))).toEqual([
      [1, 4, 'block', null],
      [6, 7, 'class', 'Cache'],
      [9, 11, 'method', 'Cache.Cache'],
      [13, 16, 'method', 'Cache.toString'],
      [18, 21, 'class', 'Cache.Entry'],
    ]);
  });

  it('rust: attributes and doc comments attached, impl methods qualified by the type', async () => {
    const content = src(`
use std::collections::HashMap;

/// Keeps recent values.
#[derive(Default)]
pub struct Cache {
    values: HashMap<String, i32>,
}

impl Cache {
    pub fn get(&self, key: &str) -> Option<&i32> {
        self.values.get(key)
    }

    pub fn set(&mut self, key: &str, value: i32) {
        self.values.insert(key.to_string(), value);
    }
}

pub fn new_cache() -> Cache {
    Cache::default()
}
`);
    expect(rows(await chunkWith(small, 'src/cache.rs', content))).toEqual([
      [1, 7, 'struct', 'Cache'],
      [9, 12, 'method', 'Cache.get'],
      [14, 17, 'method', 'Cache.set'],
      [19, 21, 'function', 'new_cache'],
    ]);
  });

  it('c#: block namespace with a class split into methods', async () => {
    const content = src(`
using System.Collections.Generic;

namespace Demo.Caching
{
    public class Cache
    {
        private readonly Dictionary<string, int> values = new();

        public int Get(string key)
        {
            return values[key];
        }

        public void Set(string key, int value)
        {
            values[key] = value;
        }
    }
}
`);
    expect(rows(await chunkWith(small, 'Cache.cs', content))).toEqual([
      [1, 7, 'class', 'Cache'],
      [9, 12, 'method', 'Cache.Get'],
      [14, 19, 'method', 'Cache.Set'],
    ]);
  });

  it('c#: a file-scoped namespace does not swallow the file', async () => {
    const content = src(`
namespace Demo.Caching;

public record Entry(string Key, int Value);

public class Cache
{
    public int Count() { return 0; }
}
`);
    expect(rows(await chunkWith(small, 'Cache.cs', content))).toEqual([
      [1, 3, 'class', 'Entry'],
      [5, 8, 'class', 'Cache'],
    ]);
  });

  it('c: typedef structs, functions, prototypes as glue', async () => {
    const content = src(`
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    int value;
} entry;

int entry_count(const entry *entries);

/* Copies a key. */
static char *copy_key(const char *key) {
    char *copy = malloc(strlen(key) + 1);
    strcpy(copy, key);
    return copy;
}

int main(void) {
    return 0;
}
`);
    expect(rows(await chunkWith(small, 'entry.c', content))).toEqual([
      [1, 7, 'struct', 'entry'],
      [9, 16, 'function', 'copy_key'],
      [18, 20, 'function', 'main'],
    ]);
  });

  it('c++: in-class and out-of-line methods, templates, namespaces', async () => {
    const content = src(`
#include <map>
#include <string>

namespace demo {

class Cache {
public:
    int get(const std::string& key) const {
        return values_.at(key);
    }
    void set(const std::string& key, int value);

private:
    std::map<std::string, int> values_;
};

void Cache::set(const std::string& key, int value) {
    values_[key] = value;
}

template <typename T>
T twice(T v) { return v + v; }

}  // namespace demo
`);
    expect(rows(await chunkWith(small, 'cache.cpp', content))).toEqual([
      [1, 10, 'method', 'Cache.get'],
      [11, 15, 'class', 'Cache'],
      [17, 19, 'method', 'Cache.set'],
      [21, 24, 'function', 'twice'],
    ]);
  });

  it('reads .h headers with the C++ grammar, so classes in headers are found', async () => {
    const content = src(`
#pragma once
class Counter {
public:
    int next() { return ++value_; }
private:
    int value_ = 0;
};
`);
    const chunks = await chunkWith(chunker, 'include/counter.h', content);
    expect(rows(chunks)).toEqual([[1, 7, 'class', 'Counter']]);
  });

  it('ruby, php, kotlin, swift and scala grammars load and name their members', async () => {
    const tiny = await createChunker({ maxChunkChars: 80, minChunkChars: 10 });
    const symbols = async (path: string, content: string) =>
      (await chunkWith(tiny, path, content)).filter((c) => c.kind === 'method').map((c) => c.symbol);
    expect(await symbols('cache.rb', 'class Cache\n  def get(key)\n    @values[key]\n  end\n  def size\n    @values.size\n  end\nend\n')).toEqual(['Cache.get', 'Cache.size']);
    expect(await symbols('Cache.php', '<?php\nclass Cache {\n    public function get($key) { return $this->v[$key]; }\n    public function size() { return 0; }\n}\n')).toEqual(['Cache.get', 'Cache.size']);
    expect(await symbols('Cache.kt', 'class Cache {\n    fun get(key: String): Int = values[key] ?: 0\n    fun size(): Int = values.size\n}\n')).toEqual(['Cache.get', 'Cache.size']);
    expect(await symbols('Cache.swift', 'class Cache {\n    func get(key: String) -> Int { return values[key] ?? 0 }\n    func size() -> Int { return values.count }\n}\n')).toEqual(['Cache.get', 'Cache.size']);
    expect(await symbols('Cache.scala', 'class Cache {\n  def get(key: String): Int = values.getOrElse(key, 0)\n  def size(): Int = values.size\n}\n')).toEqual(['Cache.get', 'Cache.size']);
    tiny.close();
  });
});

describe('sizes', () => {
  it('splits a huge function into overlapping line windows that keep its name', async () => {
    const c = await createChunker({ maxChunkChars: 600, minChunkChars: 50 });
    const body = Array.from({ length: 80 }, (_, i) => `  total += compute(${i}, total) * ${i};`);
    const content = ['import { compute } from "./compute.ts";', '', 'export function big(): number {', '  let total = 0;', ...body, '  return total;', '}', ''].join('\n');
    const chunks = await chunkWith(c, 'big.ts', content);
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    expect(chunks.every((ch) => ch.kind === 'function' && ch.symbol === 'big')).toBe(true);
    expect(chunks.slice(1).every((ch) => ch.content.length <= 600)).toBe(true);
    // The tiny import line joins the first window; the last window ends with the closing brace.
    expect(chunks[0]!.startLine).toBe(1);
    expect(chunks.at(-1)!.endLine).toBe(86);
    for (let i = 1; i < chunks.length; i++) {
      expect(chunks[i]!.startLine).toBeGreaterThan(chunks[i - 1]!.startLine);
      expect(chunks[i]!.startLine).toBeLessThanOrEqual(chunks[i - 1]!.endLine);
    }
    c.close();
  });

  it('descends into a class too big for one chunk and windows its oversized method', async () => {
    const c = await createChunker({ maxChunkChars: 400, minChunkChars: 40 });
    const hugeBody = Array.from({ length: 40 }, (_, i) => `    this.rows.push({ id: ${i}, label: 'row ${i}' });`);
    const content = [
      'class Table {',
      '  rows: Array<{ id: number; label: string }> = [];',
      '',
      '  clear(): void {',
      '    this.rows = [];',
      '  }',
      '',
      '  fill(): void {',
      ...hugeBody,
      '  }',
      '}',
    ].join('\n');
    const chunks = await chunkWith(c, 'table.ts', content);
    const summary = rows(chunks);
    expect(summary.slice(0, 2)).toEqual([
      [1, 2, 'class', 'Table'],
      [4, 6, 'method', 'Table.clear'],
    ]);
    const fill = summary.slice(2);
    expect(fill.length).toBeGreaterThanOrEqual(4);
    expect(fill.every(([, , kind, symbol]) => kind === 'method' && symbol === 'Table.fill')).toBe(true);
    expect(fill[0]![0]).toBe(8);
    // The class's closing brace joins the method's last window.
    expect(fill.at(-1)![1]).toBe(50);
    c.close();
  });

  it('merges small top-level siblings into one block and folds tiny glue into a neighbouring definition', async () => {
    const c = await createChunker({ maxChunkChars: 400, minChunkChars: 40 });
    const content = src(`
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = process.cwd();
let loads = 0;

export async function readConfig(name: string): Promise<string> {
  loads++;
  return readFile(join(ROOT, name), 'utf8');
}

const SEP = ',';

export function splitList(value: string): string[] {
  return value.split(SEP).map((v) => v.trim());
}

export default readConfig;
`);
    expect(rows(await chunkWith(c, 'config.ts', content))).toEqual([
      [1, 5, 'block', null],
      [7, 10, 'function', 'readConfig'],
      [12, 18, 'function', 'splitList'],
    ]);
    c.close();
  });

  it('packs runs of small definitions into chunks up to the cap, named by all their symbols', async () => {
    const c = await createChunker({ maxChunkChars: 300, minChunkChars: 20, packDefsBelow: 100 });
    const content = src(`
export function one() { return 1; }
export function two() { return 2; }
export function three() { return 3; }
export function four() { return 4; }
export function five() { return 5; }
export function six() { return 6; }
export function seven() { return 7; }
export function eight() { return 8; }
export function big(values: number[]): number {
  // Long enough not to be packed: it stays a chunk of its own, and so ends the run before it.
  return values.reduce((sum, v) => sum + v * v, 0);
}
export function nine() { return 9; }
`);
    const chunks = await chunkWith(c, 'numbers.ts', content);
    expect(rows(chunks)).toEqual([
      [1, 8, 'function', 'one, two, three, four, five, six, seven, eight'],
      [9, 12, 'function', 'big'],
      [13, 13, 'function', 'nine'],
    ]);
    expect(chunks.every((ch) => ch.content.length <= 300)).toBe(true);

    // Past the cap a run starts a new chunk; every line is still in exactly one.
    const tight = await createChunker({ maxChunkChars: 120, minChunkChars: 20, packDefsBelow: 100 });
    const packed = rows(await chunkWith(tight, 'numbers.ts', content)).slice(0, 3);
    expect(packed).toEqual([
      [1, 3, 'function', 'one, two, three'],
      [4, 6, 'function', 'four, five, six'],
      [7, 8, 'function', 'seven, eight'],
    ]);
    c.close();
    tight.close();
  });

  it('treats one-line type aliases as glue rather than chunks of their own', async () => {
    const content = src(`
type Id = string;
type Name = string;

export function label(id: Id, name: Name): string {
  return \`\${id}:\${name}\`;
}
`);
    expect(rows(await chunkWith(chunker, 'label.ts', content))).toEqual([[1, 6, 'function', 'label']]);
  });
});

describe('markdown', () => {
  const doc = src(`
---
title: Guide
---
# Guide

Intro text for the whole guide.

## Install

Run the installer.

\`\`\`sh
# not a heading
npm install
\`\`\`

## Usage

Setext Title
------------

Body text under a setext heading.
`);

  it('is one section when it fits', async () => {
    expect(rows(await chunkWith(chunker, 'docs/guide.md', doc))).toEqual([[1, 22, 'section', 'Guide']]);
  });

  it('splits by headings, nested by level, ignoring # inside code fences and front matter', async () => {
    const c = await createChunker({ maxChunkChars: 100, minChunkChars: 30 });
    expect(rows(await chunkWith(c, 'docs/guide.md', doc))).toEqual([
      [1, 6, 'section', 'Guide'],
      [8, 15, 'section', 'Install'],
      [17, 17, 'section', 'Usage'],
      [19, 22, 'section', 'Setext Title'],
    ]);
    c.close();
  });

  it('windows an oversized section and keeps its heading as the symbol', async () => {
    const c = await createChunker({ maxChunkChars: 300, minChunkChars: 30 });
    const paragraphs = Array.from({ length: 20 }, (_, i) => `Paragraph ${i} explains one more detail of the setup.`);
    const content = ['# Setup', '', ...paragraphs.flatMap((p) => [p, '']), '# Next', '', 'Short.'].join('\n');
    const chunks = await chunkWith(c, 'README.md', content);
    const setup = chunks.filter((ch) => ch.symbol === 'Setup');
    expect(setup.length).toBeGreaterThanOrEqual(3);
    expect(setup.every((ch) => ch.kind === 'section' && ch.content.length <= 300)).toBe(true);
    expect(setup[0]!.startLine).toBe(1);
    expect(rows(chunks).at(-1)).toEqual([43, 45, 'section', 'Next']);
    c.close();
  });
});

describe('line windows', () => {
  it('windows text of no known language by windowLines with windowOverlap lines shared', async () => {
    const c = await createChunker({ maxChunkChars: 100_000, windowLines: 60, windowOverlap: 10 });
    const content = Array.from({ length: 200 }, (_, i) => `line ${i + 1}`).join('\n');
    const chunks = await chunkWith(c, 'notes/log.unknownext', content);
    expect(rows(chunks)).toEqual([
      [1, 60, 'window', null],
      [51, 110, 'window', null],
      [101, 160, 'window', null],
      [151, 200, 'window', null],
    ]);
    c.close();
  });

  it('windows JSON and YAML too, and tells the language from the path when none is given', async () => {
    const c = await createChunker({ maxChunkChars: 200, windowLines: 10, windowOverlap: 2 });
    const json = JSON.stringify({ items: Array.from({ length: 30 }, (_, i) => ({ id: i })) }, null, 2);
    const chunks = await c.chunk({ path: 'data/items.json', content: json, language: undefined });
    expectSound(chunks, json, c);
    expect(chunks.length).toBeGreaterThan(5);
    expect(new Set(chunks.map((ch) => ch.kind))).toEqual(new Set(['window']));
    c.close();
  });
});

describe('robustness', () => {
  it('returns no chunks for empty and whitespace-only files', async () => {
    expect(await chunker.chunk({ path: 'a.ts', content: '', language: 'typescript' })).toEqual([]);
    expect(await chunker.chunk({ path: 'a.md', content: '\n  \n\t\n', language: 'markdown' })).toEqual([]);
    expect(await chunker.chunk({ path: 'a.txt', content: '   ', language: 'text' })).toEqual([]);
  });

  it('survives invalid UTF-8 decoded to replacement characters', async () => {
    const bytes = Buffer.concat([
      Buffer.from('export function ok() {\n  return "'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1]),
      Buffer.from('";\n}\n\u0000garbage \x01\x02 line\n'),
    ]);
    const content = bytes.toString('utf8');
    expect(content).toContain('\uFFFD');
    for (const [path, language] of [['bad.ts', 'typescript'], ['bad.txt', 'text'], ['bad.md', 'markdown']] as const) {
      const chunks = await chunkWith(chunker, path, content, language);
      expect(chunks.length).toBeGreaterThan(0);
      expect(chunks.some((ch) => ch.content.includes('\uFFFD'))).toBe(true);
    }
  });

  it('cuts a 200 KB single line into pieces no longer than maxChunkChars, losing nothing', async () => {
    const line = `const data = [${Array.from({ length: 30_000 }, (_, i) => i * 7).join(', ')}];`;
    expect(line.length).toBeGreaterThan(200_000);
    for (const [path, language] of [['data.js', 'javascript'], ['data.txt', 'text']] as const) {
      const chunks = await chunkWith(chunker, path, `${line}\n`, language);
      expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(line.length / 1500));
      expect(chunks.every((ch) => ch.startLine === 1 && ch.endLine === 1 && ch.content.length <= 1500)).toBe(true);
      expect(chunks.map((ch) => ch.content).join('')).toBe(line);
    }
  });

  it('keeps a long line in the middle of code from inflating its chunk', async () => {
    const content = ['function a() {', `  return '${'x'.repeat(5000)}';`, '}', '', 'function b() {', '  return 1;', '}'].join('\n');
    const chunks = await chunkWith(chunker, 'long.js', content);
    expect(chunks.filter((ch) => ch.symbol === 'a').length).toBeGreaterThanOrEqual(4);
    expect(rows(chunks).at(-1)).toEqual([5, 7, 'function', 'b']);
  });

  it('handles CRLF line endings', async () => {
    const content = 'def one():\r\n    return 1\r\n\r\ndef two():\r\n    return 2\r\n';
    const apart = await createChunker({ packDefsBelow: 0 });
    const chunks = await chunkWith(apart, 'crlf.py', content);
    apart.close();
    expect(rows(chunks)).toEqual([
      [1, 2, 'function', 'one'],
      [4, 5, 'function', 'two'],
    ]);
    expect(chunks[0]!.content).toBe('def one():\r\n    return 1');
  });

  it('chunks syntax errors without losing lines', async () => {
    const content = 'export function broken( {\n  return ;;\n}\n\nclass {\n  method() { return 1 }\n}\n';
    const chunks = await chunkWith(chunker, 'broken.ts', content);
    expect(chunks.length).toBeGreaterThan(0);
  });

  it('loads grammars ahead of time, and ignores languages without one', async () => {
    const c = await createChunker();
    await expect(c.load('go')).resolves.toBeUndefined();
    await expect(c.load('markdown')).resolves.toBeUndefined();
    expect(rows(await c.chunk({ path: 'main.go', content: 'package main\n\nfunc main() {}\n', language: 'go' }))).toEqual([[1, 3, 'function', 'main']]);
    c.close();
  });

  it('rejects inconsistent options', async () => {
    await expect(createChunker({ maxChunkChars: 100, minChunkChars: 100 })).rejects.toThrow('minChunkChars');
    await expect(createChunker({ windowLines: 10, windowOverlap: 10 })).rejects.toThrow('windowOverlap');
  });
});

describe('language detection', () => {
  it('knows extensions, well-known names, and falls back to text', () => {
    expect(detectLanguage('src/a.ts')).toBe('typescript');
    expect(detectLanguage('src/a.d.ts')).toBe('typescript');
    expect(detectLanguage('src/App.tsx')).toBe('tsx');
    expect(detectLanguage('lib/a.mjs')).toBe('javascript');
    expect(detectLanguage('x/Program.cs')).toBe('csharp');
    expect(detectLanguage('x/a.hpp')).toBe('cpp');
    expect(detectLanguage('Dockerfile')).toBe('dockerfile');
    expect(detectLanguage('deploy/api.Dockerfile')).toBe('dockerfile');
    expect(detectLanguage('Makefile')).toBe('makefile');
    expect(detectLanguage('Gemfile')).toBe('ruby');
    expect(detectLanguage('docs/README.MD')).toBe('markdown');
    expect(detectLanguage('LICENSE')).toBe('text');
    expect(detectLanguage('a/b.weird')).toBe('text');
    expect(hasGrammar('csharp')).toBe(true);
    expect(hasGrammar('markdown')).toBe(false);
    expect(hasGrammar('json')).toBe(false);
  });
});
