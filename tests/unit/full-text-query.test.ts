import { describe, expect, it } from 'vitest';
import { fullTextQuery } from '../../shared/search/hybrid-search.ts';

describe('full-text query', () => {
  it('matches a camelCase identifier whole or by all of its parts', () => {
    expect(fullTextQuery('getUserName')).toEqual({
      all: '(getusername:* | get:* & user:* & name:*)',
      any: '(getusername:* | get:* & user:* & name:*)',
      words: 1,
    });
    expect(fullTextQuery('parseHTTPRequest2')?.all).toBe('(parsehttprequest2:* | parse:* & http:* & request:*)');
  });

  it('splits snake_case and kebab-case into words, as the index does', () => {
    expect(fullTextQuery('push_to_array content-type')?.all).toBe('push:* & array:* & content:* & type:*');
    expect(fullTextQuery('max_id')?.all).toBe('max:* & id');
  });

  it('drops stop words, one-letter words and duplicates; short words match exactly', () => {
    const q = fullTextQuery('How does the ID of a user get to the DB? user')!;
    expect(q.all).toBe('id & user:* & get:* & db');
    expect(q.any).toBe('id | user:* | get:* | db');
    expect(q.words).toBe(4);
  });

  it('short camelCase parts do not widen the match', () => {
    expect(fullTextQuery('toJSON')?.all).toBe('tojson:*');
    expect(fullTextQuery('toJSONString')?.all).toBe('(tojsonstring:* | json:* & string:*)');
    expect(fullTextQuery('isOK')?.all).toBe('isok:*');
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
