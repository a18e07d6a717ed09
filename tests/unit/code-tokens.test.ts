import { describe, expect, it } from 'vitest';
import { codeSubtokens } from '../../shared/search/code-tokens.ts';

// The definition the scanner must keep to: what the full-text index held when it was built with two regular expressions.
const NON_WORD = /[^\p{L}\p{N}]+/gu;
const CAMEL_BOUNDARY = /(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})/gu;
const byRegex = (t: string) => t.slice(0, 100_000).replace(NON_WORD, ' ').replace(CAMEL_BOUNDARY, ' ');

describe('codeSubtokens', () => {
  it('splits at separators and at camelCase and acronym boundaries, digits staying with their letters', () => {
    expect(codeSubtokens('parseHTTPRequest2(this._def)')).toBe('parse HTTP Request2 this def ');
    expect(codeSubtokens('XMLHttpRequest utf8Encode a.b_c-d')).toBe('XML Http Request utf8 Encode a b c d');
    expect(codeSubtokens('plain words')).toBe('plain words');
    expect(codeSubtokens('')).toBe('');
  });

  it('treats letters and numbers of any script as word characters, and marks and symbols as separators', () => {
    expect(codeSubtokens('ÉtatCivil naïveΣύνολο 中文Name ٣x')).toBe('État Civil naïve Σύνολο 中文Name ٣x');
    expect(codeSubtokens('e\u0301 😀 𝐀𝐚')).toBe('e 𝐀𝐚');
  });

  it('indexes the first 100,000 characters only, even when that cuts a surrogate pair', () => {
    expect(codeSubtokens(`${'x'.repeat(99_999)}😀abc`)).toBe(`${'x'.repeat(99_999)} `);
    expect(codeSubtokens('ab'.repeat(60_000))).toHaveLength(100_000);
  });

  it('gives what the two regular expressions give, on random text of mixed scripts', () => {
    const alphabet = ['a', 'Z', 'B', 'q', '1', '9', ' ', '_', '.', '-', 'é', 'É', 'ǅ', 'ʰ', '中', '٣', '½', 'Ⅻ', '\u0301', '😀', '𝐀', '𝐚', '\ud800', '\udc00', 'Σ', 'σ', 'ß', '\0', '\n'];
    let seed = 7;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let k = 0; k < 20_000; k++) {
      let text = '';
      const length = Math.floor(random() * 14);
      for (let j = 0; j < length; j++) text += alphabet[Math.floor(random() * alphabet.length)];
      expect(codeSubtokens(text), JSON.stringify(text)).toBe(byRegex(text));
    }
  });
});
