import { describe, expect, it } from 'vitest';
import { wordForms, fullTextQuery, snippet } from '../../shared/search/hybrid-search.ts';

describe('full-text query', () => {
  it('matches a camelCase identifier whole or by all of its parts, as exact lexemes', () => {
    expect(fullTextQuery('getUserName')).toMatchObject({
      all: '(getusername | get & user & name)',
      any: '(getusername | get & user & name)',
      words: 1,
      terms: [{ expr: '(getusername | get & user & name)', named: '(getusername:AB | get:AB & user:AB & name:AB)', lexemes: ['getusername', 'get', 'user', 'name'] }],
    });
    // Acronyms end where the next word starts; digits stay with their letters, as in the index.
    expect(fullTextQuery('parseHTTPRequest2')?.all).toBe('(parsehttprequest2 | parse & http & request2)');
    expect(fullTextQuery('XMLHttpRequest')?.all).toBe('(xmlhttprequest | xml & http & request)');
  });

  it('splits snake_case, kebab-case and member chains into words, as the index does', () => {
    expect(fullTextQuery('push_to_array content-type')?.all).toBe('push & array & content & type');
    expect(fullTextQuery('max_id')?.all).toBe('max & id');
    expect(fullTextQuery('schema.safeParse')?.all).toBe('schema & (safeparse | safe & parse)');
  });

  it('drops stop words, one-letter words and duplicates', () => {
    const q = fullTextQuery('How does the ID of a user get to the DB? user')!;
    expect(q.all).toBe('id & user & get & db');
    expect(q.any).toBe('id | user | get | db');
    expect(q.words).toBe(4);
  });

  it('keeps short camelCase parts: they are exact lexemes, not prefixes', () => {
    expect(fullTextQuery('toJSON')?.all).toBe('(tojson | to & json)');
    expect(fullTextQuery('isOK')?.all).toBe('(isok | is & ok)');
  });

  it('returns null when nothing is left to search for', () => {
    expect(fullTextQuery('the of a')).toBeNull();
    expect(fullTextQuery('?!. ()')).toBeNull();
  });

  it('bounds the number of words', () => {
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    expect(fullTextQuery(words)?.words).toBe(16);
  });
});

describe('search snippet', () => {
  const content = Array.from({ length: 30 }, (_, i) => `function f${i}() { return ${i}; }`).join('\n');

  it('starts just above the line holding the most query words', () => {
    const lines = snippet(content, ['f20', 'return']).split('\n');
    expect(lines[0]).toBe('function f18() { return 18; }');
    expect(lines[2]).toBe('function f20() { return 20; }');
    expect(lines).toHaveLength(12);
  });

  it('shows the first lines when nothing matches or the chunk is short, and never runs past the end', () => {
    expect(snippet(content, ['nothing']).split('\n')[0]).toBe('function f0() { return 0; }');
    expect(snippet('a\nb', ['b'])).toBe('a\nb');
    const tail = snippet(content, ['f29']).split('\n');
    expect(tail).toHaveLength(12);
    expect(tail.at(-1)).toBe('function f29() { return 29; }');
  });

  it('looks for a plain word in the forms code holds it in', () => {
    expect(wordForms('passwords')).toEqual(['passwords', 'password']);
    expect(wordForms('retries')).toEqual(['retries', 'retry']);
    expect(wordForms('matches')).toEqual(['matches', 'match']);
    expect(wordForms('parsing')).toEqual(['parsing', 'pars', 'parse']);
    expect(wordForms('escaped')).toEqual(['escaped', 'escap', 'escape']);
    expect(wordForms('class')).toEqual(['class']);
    expect(wordForms('status')).toEqual(['status']);
    expect(wordForms('ids')).toEqual(['ids']);
    const q = fullTextQuery('hide passwords in logs')!;
    expect(q.terms.map((t) => t.expr)).toEqual(['hide', '(passwords | password)', 'logs']);
    expect(q.terms[1]!.named).toBe('(passwords:AB | password:AB)');
  });
});
