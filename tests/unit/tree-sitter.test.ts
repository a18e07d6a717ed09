import { describe, expect, it } from 'vitest';
import { createParserLoader } from '../../shared/indexing/tree-sitter.ts';
import { TREE_SITTER_GRAMMARS, type GrammarLanguage } from '../../shared/indexing/language.ts';

describe('tree-sitter grammars', () => {
  it('load side by side from several loaders (as the chunker and the graph extractor do) without clashing', async () => {
    const loaders = [createParserLoader(), createParserLoader(), createParserLoader()];
    const languages = Object.keys(TREE_SITTER_GRAMMARS) as GrammarLanguage[];
    // Before grammar loads were serialised, two at once failed with "bad export type for '…_external_scanner_create'".
    const parsers = await Promise.all(loaders.flatMap((l) => languages.map((lang) => l.loadParser(lang))));
    expect(parsers).toHaveLength(loaders.length * languages.length);
    const tree = (await loaders[1]!.loadParser('javascript')).parse('function f() { return `x${1}`; }');
    expect(tree.rootNode.firstChild?.type).toBe('function_declaration');
    for (const l of loaders) l.close();
  });
});
