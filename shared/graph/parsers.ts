import { createRequire } from 'node:module';
import path from 'node:path';
import Parser from 'web-tree-sitter';
import { TREE_SITTER_GRAMMARS, type GrammarLanguage } from '../indexing/language.ts';

/**
 * Tree-sitter parsers for the code graph. The chunker (shared/indexing/
 * chunker.ts) keeps the same loading private; this mirrors it so both can
 * later share one module.
 */

/** A parse that takes longer is abandoned; normal files parse in milliseconds. */
const PARSE_TIMEOUT_MICROS = 5_000_000;

// web-tree-sitter keeps one wasm runtime per process. 0.22's `init` returns
// the same promise when called again, so sharing the runtime with the chunker
// is safe; the guard only adds retry after a failed start.
let runtimeReady: Promise<void> | undefined;
function initRuntime(): Promise<void> {
  runtimeReady ??= Parser.init().catch((err: unknown) => {
    runtimeReady = undefined;
    throw err;
  });
  return runtimeReady;
}

/** Grammars ship inside the tree-sitter-wasms package: found from its install location, never from cwd. */
function grammarPath(grammar: string): string {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('tree-sitter-wasms/package.json');
  return path.join(path.dirname(packageJson), 'out', `tree-sitter-${grammar}.wasm`);
}

export interface ParserLoader {
  /** One parser per grammar, created on first use and reused: callers parse synchronously, so nothing shares it mid-parse. */
  loadParser(language: GrammarLanguage): Promise<Parser>;
  /** Frees the parsers (wasm memory). */
  close(): void;
}

export function createParserLoader(): ParserLoader {
  const parsers = new Map<string, Promise<Parser>>();

  function loadParser(language: GrammarLanguage): Promise<Parser> {
    const grammar = TREE_SITTER_GRAMMARS[language];
    let parser = parsers.get(grammar);
    if (!parser) {
      parser = initRuntime()
        .then(() => Parser.Language.load(grammarPath(grammar)))
        .then((lang) => {
          const p = new Parser();
          p.setLanguage(lang);
          p.setTimeoutMicros(PARSE_TIMEOUT_MICROS);
          return p;
        });
      // A failed load is retried by the next file instead of failing every file after it.
      parser.catch(() => parsers.delete(grammar));
      parsers.set(grammar, parser);
    }
    return parser;
  }

  function close(): void {
    for (const parser of parsers.values()) {
      parser.then((p) => p.delete(), () => undefined);
    }
    parsers.clear();
  }

  return { loadParser, close };
}

export type { Parser };
