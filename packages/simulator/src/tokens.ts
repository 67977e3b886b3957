// The simulator's own token counting. It shares no code with the dataset builder on purpose: if one
// of them counts wrong, the other disagrees and a test notices.
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';

export type EncodingName = 'o200k_base' | 'cl100k_base';

const NO_SPECIALS = { disallowedSpecial: new Set<string>() };

/** Tokens in a piece of text; special-token text is counted as ordinary text, never rejected. */
export function countTextTokens(text: string, encoding: EncodingName): number {
  return (encoding === 'cl100k_base' ? cl100k : o200k).encode(text, NO_SPECIALS).length;
}

/** The answer's text split at token boundaries, each token with its id (Together streams both). */
export function tokenPieces(text: string, encoding: EncodingName): Array<{ id: number; text: string }> {
  const enc = encoding === 'cl100k_base' ? cl100k : o200k;
  return enc.encode(text, NO_SPECIALS).map((id) => ({ id, text: enc.decode([id]) }));
}

/** The answer's text split at token boundaries (for log probabilities and streamed deltas). */
export function textTokens(text: string, encoding: EncodingName): string[] {
  return tokenPieces(text, encoding).map((t) => t.text);
}

export interface ChatMessageLike {
  role: string;
  content?: unknown;
  name?: unknown;
}

/**
 * Tokens of a chat conversation the way OpenAI's cookbook counts them: 3 per message for the
 * framing, the role and content tokens, 1 more for a name, and 3 priming the reply.
 */
const roleTokens = new Map<string, number>();

/** Roles are few and short: count each once per encoding. */
function countRoleTokens(role: string, encoding: EncodingName): number {
  const key = `${encoding}:${role}`;
  let n = roleTokens.get(key);
  if (n === undefined) {
    n = countTextTokens(role, encoding);
    if (roleTokens.size < 64) roleTokens.set(key, n);
  }
  return n;
}

export function countChatTokens(messages: ChatMessageLike[], encoding: EncodingName): number {
  let total = 3;
  for (const m of messages) {
    total += 3 + countRoleTokens(m.role, encoding);
    if (typeof m.content === 'string') total += countTextTokens(m.content, encoding);
    else if (m.content != null) total += countTextTokens(JSON.stringify(m.content), encoding);
    if (typeof m.name === 'string') total += 1 + countTextTokens(m.name, encoding);
  }
  return total;
}
