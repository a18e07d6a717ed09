import { createHash } from 'node:crypto';

/**
 * What the model reads for one chunk: a header naming where the code lives
 * and what it defines, then the chunk's first lines. The header gives the
 * model the words a question uses that the code itself may not (`express/lib/
 * router/index.js` says "router" where the body says `layer` and `stack`);
 * the cut keeps what names and explains the code (signature, doc comment,
 * first statements) and halves the cost of embedding a chunk: the model's
 * time grows faster than linearly with its input, and the tail of a long
 * function adds little to what it is about.
 *
 * Changing this text changes what the vectors mean: bump `SEMANTIC_TEXT_VERSION`
 * so that stored vectors are embedded again rather than compared with new ones.
 */
export const SEMANTIC_TEXT_VERSION = 1;
export const SEMANTIC_BODY_CHARS = 800;

export interface SemanticTextInput {
  path: string;
  symbol: string | null;
  kind: string;
  content: string;
}

export function semanticText(c: SemanticTextInput): string {
  const symbol = c.symbol ? `${c.kind} ${c.symbol}\n` : '';
  const body = c.content.length > SEMANTIC_BODY_CHARS ? c.content.slice(0, SEMANTIC_BODY_CHARS) : c.content;
  return `${c.path}\n${symbol}${body}`;
}

/** Key of the text in the embedding cache: the text's own hash, so the same text under the same model is embedded once ever. */
export function semanticTextHash(text: string): string {
  return createHash('sha256').update(`v${SEMANTIC_TEXT_VERSION}\0${text}`).digest('hex');
}
