import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphExtractor, type FileGraph, type GraphExtractor } from '../../shared/graph/extract.ts';
import type { Language } from '../../shared/indexing/language.ts';

/** Source text from a template literal: drops the first newline so line 1 is the first line written. */
const src = (s: string) => s.replace(/^\n/, '');

type Row = [qualifiedName: string, kind: string, startLine: number, endLine: number, exported: boolean];
const rows = (g: FileGraph): Row[] => g.symbols.map((s) => [s.qualifiedName, s.kind, s.startLine, s.endLine, s.exported]);
const calls = (g: FileGraph) => Object.fromEntries(g.symbols.map((s) => [s.qualifiedName, s.calls]));
const qualifiedCalls = (g: FileGraph) => Object.fromEntries(g.symbols.map((s) => [s.qualifiedName, s.qualifiedCalls]));
const heritage = (g: FileGraph) =>
  Object.fromEntries(
    g.symbols
      .filter((s) => s.extends.length > 0 || s.implements.length > 0)
      .map((s) => [s.qualifiedName, { extends: s.extends, implements: s.implements }]),
  );
const imports = (g: FileGraph) => g.imports.map((i) => [i.specifier, i.names, i.line]);

let extractor: GraphExtractor;

beforeAll(() => {
  extractor = createGraphExtractor();
});

afterAll(() => extractor.close());

async function extract(language: Language, content: string, path = 'file'): Promise<FileGraph> {
  const graph = await extractor.extract({ path, content: src(content), language });
  if (!graph) throw new Error(`no graph for ${language}`);
  return graph;
}

describe('TypeScript', () => {
  const code = `
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import Default, { a, b as c } from './util.js';
import type { Config } from '@app/core';
export * from './reexport';
export { x as y } from '../lib/index.js';

export interface Store<T> extends Base<T>, Disposable {
  get(key: string): T;
}

export type Key = string;
enum Color { Red, Green }

export abstract class Cache<T> extends BaseCache<T> implements Store<T>, ns.Closeable {
  private loader = (key: string) => this.load(key);
  constructor(private readonly size: number) {
    super(size);
    init(Default);
  }
  get(key: string): T {
    const hit = this.map.get(key);
    if (!hit) return this.load(key);
    return path.join(hit, key) as T;
  }
  private async load(key: string): Promise<T> {
    const helper = (k: string) => normalize(k);
    return helper(await readFile(key, 'utf8')) as T;
  }
  abstract close(): void;
}

function localHelper(): Map<string, number> {
  return new Map();
}
export { localHelper };

export default function main(): void {
  const cache = new LruCache<string>(10);
  cache.get('k');
}

setup(localHelper());
const lazy = async () => (await import('./lazy')).run();
`;

  it('finds interfaces, types, enums, classes, methods, functions and nested functions with their lines', async () => {
    const g = await extract('typescript', code);
    expect(rows(g)).toEqual([
      ['Store', 'interface', 8, 10, true],
      ['Key', 'type', 12, 12, true],
      ['Color', 'enum', 13, 13, false],
      ['Cache', 'class', 15, 31, true],
      ['Cache.loader', 'method', 16, 16, false],
      ['Cache.constructor', 'method', 17, 20, true],
      ['Cache.get', 'method', 21, 25, true],
      ['Cache.load', 'method', 26, 29, false],
      ['Cache.load.helper', 'function', 27, 27, false],
      ['localHelper', 'function', 33, 35, true],
      ['main', 'function', 38, 41, true],
      ['lazy', 'function', 44, 44, false],
    ]);
    expect(g.symbols.find((s) => s.qualifiedName === 'Cache.load.helper')!.name).toBe('helper');
  });

  it('attributes calls to the innermost function, once each', async () => {
    const g = await extract('typescript', code);
    expect(calls(g)).toEqual({
      Store: [],
      Key: [],
      Color: [],
      Cache: [],
      'Cache.loader': ['load'],
      'Cache.constructor': ['init'],
      'Cache.get': ['get', 'load', 'join'],
      // normalize() is the nested helper's, not load's.
      'Cache.load': ['helper', 'readFile'],
      'Cache.load.helper': ['normalize'],
      localHelper: ['Map'],
      main: ['LruCache', 'get'],
      lazy: ['run'],
    });
    expect(qualifiedCalls(g)['Cache.get']).toEqual(['this.map.get', 'this.load', 'path.join']);
    expect(g.topLevelCalls).toEqual(['setup', 'localHelper']);
  });

  it('reads extends and implements as bare names', async () => {
    const g = await extract('typescript', code);
    expect(heritage(g)).toEqual({
      Store: { extends: ['Base', 'Disposable'], implements: [] },
      Cache: { extends: ['BaseCache'], implements: ['Store', 'Closeable'] },
    });
  });

  it('reads imports, re-exports and dynamic imports', async () => {
    const g = await extract('typescript', code);
    expect(imports(g)).toEqual([
      ['node:fs/promises', ['readFile'], 1],
      ['node:path', ['*'], 2],
      ['./util.js', ['default', 'a', 'b'], 3],
      ['@app/core', ['Config'], 4],
      ['./reexport', ['*'], 5],
      ['../lib/index.js', ['x'], 6],
      ['./lazy', [], 44],
    ]);
  });

  it('handles `import x = require()` and export lists', async () => {
    const g = await extract(
      'typescript',
      `
import fs = require('fs');
const { a } = await import('./a');
function f() {}
function g() {}
export { f };
export default g;
`,
    );
    expect(imports(g)).toEqual([
      ['fs', ['*'], 1],
      ['./a', ['a'], 2],
    ]);
    expect(rows(g)).toEqual([
      ['f', 'function', 3, 3, true],
      ['g', 'function', 4, 4, true],
    ]);
  });
});

describe('decorators', () => {
  it('start a symbol at its first decorator, whether the grammar nests it or not', async () => {
    const g = await extract(
      'typescript',
      `
@Component({ selector: 'x' })
export class Panel {
  @Input() name = make();

  @HostListener('click')
  @Throttle(100)
  onClick() { go(); }
}
`,
    );
    expect(rows(g)).toEqual([
      ['Panel', 'class', 1, 8, true],
      ['Panel.onClick', 'method', 5, 7, true],
    ]);
    // Decorators run when the class is defined: they are the enclosing scope's calls.
    expect(calls(g)).toEqual({ Panel: ['Input', 'make', 'HostListener', 'Throttle'], 'Panel.onClick': ['go'] });
    expect(g.topLevelCalls).toEqual(['Component']);
  });
});

describe('TSX', () => {
  it('counts rendering a component as calling it, and a wrapped module-level arrow as a function', async () => {
    const g = await extract(
      'tsx',
      `
import React, { useState } from 'react';
import { Button } from '@/components/ui/button';

export const Counter = React.memo(({ start }: { start: number }) => {
  const [n, setN] = useState(start);
  return <Button onClick={() => setN(n + 1)}>{format(n)}</Button>;
});

export function Page() {
  return (
    <Layout.Main>
      <Counter start={1} />
      <div>{render()}</div>
    </Layout.Main>
  );
}
`,
    );
    expect(rows(g)).toEqual([
      ['Counter', 'function', 4, 7, true],
      ['Page', 'function', 9, 16, true],
    ]);
    expect(calls(g)).toEqual({
      Counter: ['memo', 'useState', 'Button', 'setN', 'format'],
      Page: ['Main', 'Counter', 'render'],
    });
    expect(qualifiedCalls(g).Page).toEqual(['Layout.Main', 'Counter', 'render']);
    expect(imports(g)).toEqual([
      ['react', ['default', 'useState'], 1],
      ['@/components/ui/button', ['Button'], 2],
    ]);
  });
});

describe('JavaScript', () => {
  it('reads CommonJS: require, prototype methods, exports', async () => {
    const g = await extract(
      'javascript',
      `
'use strict';
const fs = require('fs');
const { join, resolve: res } = require('path');

function Legacy(opts) {
  this.opts = opts;
}

Legacy.prototype.start = function () {
  return fs.readFileSync(join(this.opts.dir, 'x'));
};

exports.create = function (opts) {
  return new Legacy(opts);
};

class Widget extends EventEmitter {
  static of() { return new Widget(); }
  #tick() { this.emit('tick'); }
}

const handlers = {
  ping() { return pong(); },
};

module.exports = { Widget, Legacy: Legacy };
main().catch(console.error);
`,
    );
    expect(rows(g)).toEqual([
      ['Legacy', 'function', 5, 7, true],
      ['Legacy.start', 'method', 9, 11, false],
      ['create', 'function', 13, 15, true],
      ['Widget', 'class', 17, 20, true],
      ['Widget.of', 'method', 18, 18, true],
      ['Widget.#tick', 'method', 19, 19, false],
    ]);
    expect(calls(g)).toEqual({
      Legacy: [],
      'Legacy.start': ['readFileSync', 'join'],
      create: ['Legacy'],
      Widget: [],
      'Widget.of': ['Widget'],
      'Widget.#tick': ['emit'],
    });
    // Object-literal methods are not symbols: their calls are the file's.
    expect(g.topLevelCalls).toEqual(['pong', 'catch', 'main']);
    expect(heritage(g)).toEqual({ Widget: { extends: ['EventEmitter'], implements: [] } });
    expect(imports(g)).toEqual([
      ['fs', ['*'], 2],
      ['path', ['join', 'resolve'], 3],
    ]);
  });

  it('reads a class expression and a mixin base', async () => {
    const g = await extract(
      'javascript',
      `
export const A = class extends mixin(B) {
  run() { go(); }
};
export class C extends lib.D {}
`,
    );
    expect(rows(g)).toEqual([
      ['A', 'class', 1, 3, true],
      ['A.run', 'method', 2, 2, true],
      ['C', 'class', 4, 4, true],
    ]);
    expect(calls(g)).toEqual({ A: ['mixin'], 'A.run': ['go'], C: [] });
    expect(heritage(g)).toEqual({ C: { extends: ['D'], implements: [] } });
  });

  it('names computed class members only when the key is a literal or a name chain', async () => {
    // What compilers emit for private fields: the computed key is a whole expression.
    const weakMaps = Array.from({ length: 40 }, (_, i) => `_Stream_field${i} = new WeakMap()`).join(', ');
    const g = await extract(
      'javascript',
      `
class Stream {
  [(${weakMaps}, Symbol.asyncIterator)]() { return pull(); }
  [Symbol.iterator]() { return walk(); }
  ['quoted name']() {}
  'plain string'() {}
  #secret() {}
  handler = () => fire();
  [computeKey()] = () => lost();
}
`,
    );
    expect(rows(g)).toEqual([
      ['Stream', 'class', 1, 9, false],
      ['Stream.[Symbol.iterator]', 'method', 3, 3, false],
      ['Stream.quoted name', 'method', 4, 4, false],
      ['Stream.plain string', 'method', 5, 5, false],
      ['Stream.#secret', 'method', 6, 6, false],
      ['Stream.handler', 'method', 7, 7, false],
    ]);
    // A member without a usable name is not a symbol; its calls belong to the class.
    expect(calls(g).Stream).toEqual(['WeakMap', 'pull', 'computeKey', 'lost']);
    for (const s of g.symbols) expect(s.name.length).toBeLessThan(100);
  });
});

describe('Python', () => {
  const code = `
"""Module docstring."""
import os.path
import numpy as np
from typing import Optional
from .models import User, Group as G
from ..core.base import *
from . import utils

CONFIG = load_config(os.environ)


class Repository(BaseRepo, mixins.Cached, Generic[T], metaclass=ABCMeta):
    """Stores users."""

    registry = make_registry()

    def __init__(self, db):
        super().__init__()
        self.db = connect(db)

    @cached(ttl=60)
    def find(self, user_id: int) -> Optional[User]:
        def _key(x):
            return f"user:{fmt(x)}"
        row = self.db.query(_key(user_id))
        return User.from_row(row)

    def _internal(self):
        pass


async def main():
    repo = Repository(np.zeros(3))
    await repo.find(1)


if __name__ == "__main__":
    main()
`;

  it('finds classes, methods (from their decorators) and nested functions', async () => {
    const g = await extract('python', code);
    expect(rows(g)).toEqual([
      ['Repository', 'class', 12, 29, true],
      ['Repository.__init__', 'method', 17, 19, true],
      ['Repository.find', 'method', 21, 26, true],
      ['Repository.find._key', 'function', 23, 24, false],
      ['Repository._internal', 'method', 28, 29, false],
      ['main', 'function', 32, 34, true],
    ]);
  });

  it('attributes calls, including those in f-strings, to the innermost function', async () => {
    const g = await extract('python', code);
    expect(calls(g)).toEqual({
      // The decorator runs when the class body does.
      Repository: ['make_registry', 'cached'],
      'Repository.__init__': ['__init__', 'super', 'connect'],
      'Repository.find': ['query', '_key', 'from_row'],
      'Repository.find._key': ['fmt'],
      'Repository._internal': [],
      main: ['Repository', 'zeros', 'find'],
    });
    expect(qualifiedCalls(g)['Repository.find']).toEqual(['self.db.query', '_key', 'User.from_row']);
    expect(g.topLevelCalls).toEqual(['load_config', 'main']);
  });

  it('reads class bases without keywords, and imports', async () => {
    const g = await extract('python', code);
    expect(heritage(g)).toEqual({ Repository: { extends: ['BaseRepo', 'Cached', 'Generic'], implements: [] } });
    expect(imports(g)).toEqual([
      ['os.path', ['*'], 2],
      ['numpy', ['*'], 3],
      ['typing', ['Optional'], 4],
      ['.models', ['User', 'Group'], 5],
      ['..core.base', ['*'], 6],
      ['.', ['utils'], 7],
    ]);
  });
});

describe('Go', () => {
  const code = `
package server

import (
	"context"
	"fmt"
	log "github.com/sirupsen/logrus"
	_ "embed"

	"example.com/app/internal/store"
	yaml "gopkg.in/yaml.v3"
	"github.com/x/y/v2"
)

type (
	// Server serves.
	Server struct {
		store.Base
		*Embedded
		name string
	}
	handler func(ctx context.Context) error
)

type Starter interface {
	fmt.Stringer
	Start(ctx context.Context) error
}

type ID = string

func New(name string) *Server {
	return &Server{name: name}
}

func (s *Server) Start(ctx context.Context) error {
	log.Info("starting")
	go func() {
		s.loop(ctx)
	}()
	return store.Open(ctx)
}

func (s Server) loop(ctx context.Context) {
	for {
		fmt.Println(s.name)
	}
}
`;

  it('finds structs, interfaces, types, functions and methods qualified by receiver', async () => {
    const g = await extract('go', code);
    expect(rows(g)).toEqual([
      ['Server', 'struct', 16, 20, true],
      ['handler', 'type', 21, 21, false],
      ['Starter', 'interface', 24, 27, true],
      ['ID', 'type', 29, 29, true],
      ['New', 'function', 31, 33, true],
      ['Server.Start', 'method', 35, 41, true],
      ['Server.loop', 'method', 43, 47, false],
    ]);
  });

  it('attributes calls in closures to the enclosing function', async () => {
    const g = await extract('go', code);
    expect(calls(g)).toEqual({
      Server: [],
      handler: [],
      Starter: [],
      ID: [],
      New: [],
      'Server.Start': ['Info', 'loop', 'Open'],
      'Server.loop': ['Println'],
    });
    expect(qualifiedCalls(g)['Server.Start']).toEqual(['log.Info', 's.loop', 'store.Open']);
  });

  it('treats embedded types as extends and names imports by alias or package', async () => {
    const g = await extract('go', code);
    expect(heritage(g)).toEqual({
      Server: { extends: ['Base', 'Embedded'], implements: [] },
      Starter: { extends: ['Stringer'], implements: [] },
    });
    expect(imports(g)).toEqual([
      ['context', ['context'], 4],
      ['fmt', ['fmt'], 5],
      ['github.com/sirupsen/logrus', ['log'], 6],
      ['embed', ['_'], 7],
      ['example.com/app/internal/store', ['store'], 9],
      ['gopkg.in/yaml.v3', ['yaml'], 10],
      ['github.com/x/y/v2', ['y'], 11],
    ]);
  });

  it('reads a single import and a dot import', async () => {
    const g = await extract('go', 'package a\n\nimport "os"\nimport . "math"\n');
    expect(imports(g)).toEqual([
      ['os', ['os'], 3],
      ['math', ['*'], 4],
    ]);
  });
});

describe('Java', () => {
  const code = `
package com.example.app;

import java.util.List;
import java.util.concurrent.*;
import static org.junit.Assert.assertEquals;
import com.example.app.model.User;

@Service
public class UserService extends BaseService<User> implements Lookup<User>, AutoCloseable {
    private final Repo repo = new Repo();

    public UserService() {
        super("users");
        init();
    }

    @Override
    public List<User> find(String name) {
        return repo.findAll().stream().filter(u -> matches(u, name)).toList();
    }

    private static boolean matches(User u, String name) {
        return u.getName().equals(name);
    }

    public interface Listener extends EventListener, Serializable {
        void on(User u);
        default void off() { log("off"); }
    }

    enum Mode implements Labeled { ON, OFF }
}

class Helper {
    void help() { new java.util.ArrayList<String>(); }
}
`;

  it('finds classes, nested types, constructors and methods with bodies', async () => {
    const g = await extract('java', code);
    expect(rows(g)).toEqual([
      ['UserService', 'class', 8, 32, true],
      ['UserService.UserService', 'method', 12, 15, true],
      ['UserService.find', 'method', 17, 20, true],
      ['UserService.matches', 'method', 22, 24, false],
      ['UserService.Listener', 'interface', 26, 29, true],
      ['UserService.Listener.off', 'method', 28, 28, true],
      ['UserService.Mode', 'enum', 31, 31, false],
      ['Helper', 'class', 34, 36, false],
      ['Helper.help', 'method', 35, 35, false],
    ]);
  });

  it('reads calls, object creation, extends/implements and imports', async () => {
    const g = await extract('java', code);
    expect(calls(g)).toEqual({
      UserService: ['Repo'],
      'UserService.UserService': ['init'],
      'UserService.find': ['toList', 'filter', 'stream', 'findAll', 'matches'],
      'UserService.matches': ['equals', 'getName'],
      'UserService.Listener': [],
      'UserService.Listener.off': ['log'],
      'UserService.Mode': [],
      Helper: [],
      'Helper.help': ['ArrayList'],
    });
    expect(heritage(g)).toEqual({
      UserService: { extends: ['BaseService'], implements: ['Lookup', 'AutoCloseable'] },
      'UserService.Listener': { extends: ['EventListener', 'Serializable'], implements: [] },
      'UserService.Mode': { extends: [], implements: ['Labeled'] },
    });
    expect(imports(g)).toEqual([
      ['java.util.List', ['List'], 3],
      ['java.util.concurrent', ['*'], 4],
      ['org.junit.Assert', ['assertEquals'], 5],
      ['com.example.app.model.User', ['User'], 6],
    ]);
  });
});

describe('Rust', () => {
  it('qualifies impl methods by their type and joins trait impls to the struct', async () => {
    const g = await extract(
      'rust',
      `
use std::collections::HashMap;
use crate::a::{b, c::D as E, self};
use super::*;

pub struct Cache<T> { map: HashMap<String, T> }

pub trait Store: Send + fmt::Debug {
    fn get(&self) -> u8 { self.load() }
    fn load(&self) -> u8;
}

impl<T> Store for Cache<T> {
    fn get(&self) -> u8 { helper(); a::b::c(); Vec::<u8>::new(); self.map.len() as u8 }
}

impl<T> Cache<T> {
    pub fn new() -> Self { Cache { map: HashMap::new() } }
    fn private(&self) { println!("{}", fmt(1)); }
}

#[derive(Debug)]
enum Mode { On }
`,
    );
    expect(rows(g)).toEqual([
      ['Cache', 'struct', 5, 5, true],
      ['Store', 'trait', 7, 10, true],
      ['Store.get', 'method', 8, 8, true],
      ['Cache.get', 'method', 13, 13, true],
      ['Cache.new', 'method', 17, 17, true],
      ['Cache.private', 'method', 18, 18, false],
      ['Mode', 'enum', 21, 22, false],
    ]);
    expect(calls(g)).toEqual({
      Cache: [],
      Store: [],
      'Store.get': ['load'],
      'Cache.get': ['helper', 'c', 'new', 'len'],
      'Cache.new': ['new'],
      // Macro arguments are unparsed tokens.
      'Cache.private': [],
      Mode: [],
    });
    expect(qualifiedCalls(g)['Cache.get']).toEqual(['helper', 'a.b.c', 'Vec.new', 'self.map.len']);
    expect(heritage(g)).toEqual({
      Cache: { extends: [], implements: ['Store'] },
      Store: { extends: ['Send', 'Debug'], implements: [] },
    });
    expect(imports(g)).toEqual([
      ['std::collections::HashMap', ['HashMap'], 1],
      ['crate::a::b', ['b'], 2],
      ['crate::a::c::D', ['D'], 2],
      ['crate::a', ['a'], 2],
      ['super', ['*'], 3],
    ]);
  });
});

describe('C#', () => {
  it('reads types, members, calls, bases and usings', async () => {
    const g = await extract(
      'csharp',
      `
using System.Text;
using Alias = App.Models;

namespace App.Services;

public class UserService : ServiceBase, IUserService, IDisposable
{
    public UserService() : base() { Init(); }
    public User Find(string id) { return repo.Get<User>(id) ?? new User(); }
    private void Log() { void Inner() => Write(); Inner(); }
}

public interface IUserService : IService { User Find(string id); }
struct Point : IEquatable<Point> { }
`,
    );
    expect(rows(g)).toEqual([
      ['UserService', 'class', 6, 11, true],
      ['UserService.UserService', 'method', 8, 8, true],
      ['UserService.Find', 'method', 9, 9, true],
      ['UserService.Log', 'method', 10, 10, false],
      ['UserService.Log.Inner', 'function', 10, 10, false],
      ['IUserService', 'interface', 13, 13, true],
      ['Point', 'struct', 14, 14, false],
    ]);
    expect(calls(g)).toEqual({
      UserService: [],
      'UserService.UserService': ['Init'],
      'UserService.Find': ['Get', 'User'],
      'UserService.Log': ['Inner'],
      'UserService.Log.Inner': ['Write'],
      IUserService: [],
      Point: [],
    });
    expect(heritage(g)).toEqual({
      UserService: { extends: ['ServiceBase'], implements: ['IUserService', 'IDisposable'] },
      IUserService: { extends: ['IService'], implements: [] },
      Point: { extends: [], implements: ['IEquatable'] },
    });
    expect(imports(g)).toEqual([
      ['System.Text', ['*'], 1],
      ['App.Models', ['Alias'], 2],
    ]);
  });
});

describe('robustness', () => {
  it('returns null for languages without graph support', async () => {
    expect(await extractor.extract({ path: 'a.rb', content: 'def a; end', language: 'ruby' })).toBeNull();
    expect(await extractor.extract({ path: 'a.md', content: '# A', language: 'markdown' })).toBeNull();
  });

  it('keeps what parses around a syntax error', async () => {
    const g = await extract('typescript', 'function ok() { a(); }\nfunction broken( {\n');
    expect(g.symbols[0]).toMatchObject({ qualifiedName: 'ok', calls: ['a'] });
  });

  it('survives empty input, binary garbage and deep nesting', async () => {
    expect(await extract('go', '')).toEqual({ symbols: [], imports: [], topLevelCalls: [], topLevelQualifiedCalls: [] });
    await expect(extract('go', '\u0000\ufffd garbage {{{ ((( func')).resolves.toBeDefined();
    const chain = `const v = ${Array.from({ length: 20_000 }, (_, i) => `f${i}()`).join(' + ')};\n`;
    const g = await extract('javascript', chain);
    expect(g.topLevelCalls.length).toBe(20_000);
  });
});
