import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEmbeddingProvider, DEFAULT_EMBEDDING_CONFIG } from '../../shared/embeddings/embedding-provider.ts';
import { LocalEmbeddingProvider } from '../../shared/embeddings/local.provider.ts';
import { silentLogger } from '../helpers/context.ts';

const cosine = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);
const norm = (v: number[]) => Math.sqrt(cosine(v, v));

describe('local embedding provider', () => {
  const provider = new LocalEmbeddingProvider({ dimensions: 384 });
  const embed = (text: string) => provider.embedOne(text);

  it('names its vector space by model and size', () => {
    expect(provider.id).toBe('local:hash-v1:384');
    expect(provider.model).toBe('hash-v1');
    expect(provider.dimensions).toBe(384);
    expect(new LocalEmbeddingProvider({ dimensions: 64 }).id).toBe('local:hash-v1:64');
  });

  it('is deterministic across calls and instances', async () => {
    const text = 'export async function getUserByID_v2(id: string) { return db.users.find(id); }';
    const again = new LocalEmbeddingProvider({ dimensions: 384 });
    const [first] = await provider.embed([text]);
    expect(first).toEqual(embed(text));
    expect(again.embedOne(text)).toEqual(first);
    // Scratch state from another text must not leak into the next one.
    again.embedOne('something else entirely');
    expect(again.embedOne(text)).toEqual(first);
  });

  it('keeps the hash-v1 vector space: the same vectors as when the space was named', () => {
    // Digests of vectors made by the first hash-v1 code (a Map per feature kind); a faster rewrite must give
    // the same numbers, or cached and stored vectors would be compared with vectors they no longer match.
    const digest = (v: number[]) => createHash('sha256').update(v.map((x) => x.toFixed(9)).join(',')).digest('hex');
    expect(digest(embed('getUserByID_v2 HTTPServer users'))).toBe('93b11f10bf61e2aee75a9422c7cc7ca608e67def40f125cbfbe9fd3e666bb278');
    // Thousands of distinct features: the counting table grows several times on the way.
    const many = Array.from({ length: 3000 }, (_, i) => `word${i}Name_${(i * 7919) % 1000}`).join(' ');
    expect(digest(embed(many))).toBe('2cb6b9542d3a311dc3e6b589057f21dc1cec603b33560e1bfdc1f7ddd65ea43c');
    // …and a short text right after it starts from a clean table.
    expect(digest(embed('getUserByID_v2 HTTPServer users'))).toBe('93b11f10bf61e2aee75a9422c7cc7ca608e67def40f125cbfbe9fd3e666bb278');
  });

  it('returns unit vectors of the configured size, in input order', async () => {
    const texts = ['alpha beta', 'class HttpServer {}', 'x', 'SELECT * FROM users WHERE id = 1'];
    const vectors = await provider.embed(texts);
    expect(vectors).toHaveLength(4);
    vectors.forEach((v, i) => {
      expect(v).toHaveLength(384);
      expect(norm(v)).toBeCloseTo(1, 12);
      expect(v).toEqual(embed(texts[i]!));
    });
  });

  it('gives text without identifiers one fixed unit vector instead of zeros', () => {
    const empty = embed('');
    expect(empty).toHaveLength(384);
    expect(norm(empty)).toBeCloseTo(1, 12);
    expect(new Set(empty)).toEqual(new Set([1 / Math.sqrt(384)]));
    expect(embed('   \n\t ')).toEqual(empty);
    expect(embed('{}();  => ++')).toEqual(empty);
  });

  it('treats camelCase, snake_case, SCREAMING_CASE and kebab-case spellings as one', () => {
    const camel = embed('getUserName');
    expect(cosine(camel, embed('get_user_name'))).toBeCloseTo(1, 12);
    expect(cosine(camel, embed('GET_USER_NAME'))).toBeCloseTo(1, 12);
    expect(cosine(camel, embed('get-user-name'))).toBeCloseTo(1, 12);
    expect(cosine(camel, embed('GetUserName'))).toBeCloseTo(1, 12);
    // The whole identifier is a feature too, so the run-together spelling (URLs, SQL, config keys) is near.
    expect(cosine(camel, embed('getusername'))).toBeGreaterThan(0.45);
  });

  it('keeps identifiers that share words close and unrelated ones far', () => {
    const query = embed('getUserName');
    const related = cosine(query, embed('function get_user_name(user) { return user.name; }'));
    const partial = cosine(query, embed('setUserEmail'));
    const unrelated = cosine(query, embed('parseJsonConfig(readFileSync(path))'));
    expect(related).toBeGreaterThan(0.6);
    expect(partial).toBeGreaterThan(0.2);
    expect(partial).toBeLessThan(related);
    expect(Math.abs(unrelated)).toBeLessThan(0.15);
  });

  it('splits acronyms, digits and separators the way code is written', () => {
    // Same sub-tokens and same whole identifier → the same vector.
    expect(cosine(embed('getUserByID_v2'), embed('get_user_by_id_v2'))).toBeCloseTo(1, 12);
    expect(cosine(embed('HTTPServer'), embed('http_server'))).toBeCloseTo(1, 12);
    expect(cosine(embed('utf8Decode'), embed('UTF8_DECODE'))).toBeCloseTo(1, 12);
    // A digit stays with the letters before it, and an acronym is one word, not letters.
    expect(cosine(embed('fooV2'), embed('foo_v_2'))).toBeLessThan(0.9);
    expect(cosine(embed('HTTPServer'), embed('h_t_t_p_server'))).toBeLessThan(0.9);
  });

  it('lands near-miss words near each other through trigrams', () => {
    const users = cosine(embed('users'), embed('user'));
    expect(users).toBeGreaterThan(0.25);
    expect(users).toBeLessThan(0.99);
    expect(Math.abs(cosine(embed('users'), embed('banana')))).toBeLessThan(0.15);
  });

  it('counts inputs and sub-tokens', async () => {
    const counted = new LocalEmbeddingProvider({ dimensions: 32 });
    await counted.embed(['getUserByID_v2', 'a b']);
    await counted.embed([]);
    expect(counted.stats()).toEqual({ calls: 2, inputs: 2, tokens: 7, retries: 0 });
  });

  it('stops between slices when aborted', async () => {
    const controller = new AbortController();
    const pending = provider.embed(Array.from({ length: 1000 }, (_, i) => `text ${i}`), { signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });
});

describe('createEmbeddingProvider', () => {
  it('picks the local provider when no API key is set', () => {
    const provider = createEmbeddingProvider({ ...DEFAULT_EMBEDDING_CONFIG, localDimensions: 256 }, silentLogger);
    expect(provider.id).toBe('local:hash-v1:256');
  });

  it('picks OpenAI when an API key is set, or when asked for explicitly', () => {
    const withKey = createEmbeddingProvider({ ...DEFAULT_EMBEDDING_CONFIG, openaiApiKey: 'sk-test' }, silentLogger);
    expect(withKey.id).toBe('openai:text-embedding-3-small:1536');
    const keyless = createEmbeddingProvider(
      { ...DEFAULT_EMBEDDING_CONFIG, provider: 'openai', openaiBaseUrl: 'http://127.0.0.1:11434/v1', model: 'nomic-embed-text', dimensions: 768 },
      silentLogger,
    );
    expect(keyless.id).toBe('openai:nomic-embed-text:768');
    const forcedLocal = createEmbeddingProvider({ ...DEFAULT_EMBEDDING_CONFIG, provider: 'local', openaiApiKey: 'sk-test' }, silentLogger);
    expect(forcedLocal.id).toBe('local:hash-v1:384');
  });

  it('refuses an OpenAI setup it cannot use, saying why', () => {
    expect(() => createEmbeddingProvider({ ...DEFAULT_EMBEDDING_CONFIG, provider: 'openai' }, silentLogger)).toThrow(
      'needs an API key',
    );
    expect(() =>
      createEmbeddingProvider({ ...DEFAULT_EMBEDDING_CONFIG, openaiApiKey: 'sk-test', model: 'mystery-embedder' }, silentLogger),
    ).toThrow('Embedding model "mystery-embedder" is not one whose size is known: configure its dimensions');
  });
});
