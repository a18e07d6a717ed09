import { createRequire } from 'node:module';
import path from 'node:path';
import Parser from 'web-tree-sitter';
import { TREE_SITTER_GRAMMARS, type GrammarLanguage } from './language.ts';

/**
 * Tree-sitter parsers, shared by the chunker and the code-graph extractor:
 * WASM grammars from the tree-sitter-wasms package (whose 0.1.x grammars load
 * only with web-tree-sitter 0.22.x, hence the pinned runtime).
 */

/** A parse that takes longer is abandoned; normal files parse in milliseconds. */
const PARSE_TIMEOUT_MICROS = 5_000_000;

// web-tree-sitter keeps one wasm runtime per process: initialise it once, and
// retry only after a failed start.
let runtimeReady: Promise<void> | undefined;
function initRuntime(): Promise<void> {
  runtimeReady ??= Parser.init().catch((err: unknown) => {
    runtimeReady = undefined;
    throw err;
  });
  return runtimeReady;
}

/**
 * Grammars by file, loaded once per process and one at a time: loading links the grammar's wasm module into
 * the runtime, and two loads side by side (the chunker and the graph extractor each have a loader) can
 * clash there ("bad export type for 'tree_sitter_javascript_external_scanner_create'"). A failed load is
 * forgotten, so the next file tries again.
 */
const languages = new Map<string, Promise<Parser.Language>>();
let loading: Promise<unknown> = Promise.resolve();
function loadLanguage(file: string): Promise<Parser.Language> {
  let language = languages.get(file);
  if (!language) {
    language = loading.then(
      () => Parser.Language.load(file),
      () => Parser.Language.load(file),
    );
    loading = language.catch(() => undefined);
    language.catch(() => languages.delete(file));
    languages.set(file, language);
  }
  return language;
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
  /** The same, by grammar name (e.g. `cpp` for C headers). */
  loadGrammar(grammar: string): Promise<Parser>;
  /** Frees the parsers (wasm memory). */
  close(): void;
}

export function createParserLoader(): ParserLoader {
  const parsers = new Map<string, Promise<Parser>>();

  function loadGrammar(grammar: string): Promise<Parser> {
    let parser = parsers.get(grammar);
    if (!parser) {
      parser = initRuntime()
        .then(() => loadLanguage(grammarPath(grammar)))
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

  const loadParser = (language: GrammarLanguage) => loadGrammar(TREE_SITTER_GRAMMARS[language]);

  function close(): void {
    for (const parser of parsers.values()) {
      parser.then((p) => p.delete(), () => undefined);
    }
    parsers.clear();
  }

  return { loadParser, loadGrammar, close };
}

export type { Parser };
