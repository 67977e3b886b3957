// A toy but honest chat model: deterministic, and visibly changed by fine-tuning.
//
// - A fine-tuned model answers a user message it was trained on with the trained answer, and any
//   other user message with the answer of the most similar training input (Jaccard similarity of
//   lower-cased word sets; ties go to the earlier example).
// - A base model has learned nothing about the task: it answers `{}` when the system prompt asks
//   for JSON, and otherwise echoes the first line of the user message (at most 200 characters).
import type { TrainingExample } from './validation.ts';

function wordSet(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  for (const w of a) if (b.has(w)) shared++;
  return shared / (a.size + b.size - shared);
}

export interface ChatTurn {
  role: string;
  content: string;
}

function lastUserMessage(messages: ChatTurn[]): string {
  return messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
}

export function fineTunedAnswer(examples: TrainingExample[], messages: ChatTurn[]): string {
  const input = lastUserMessage(messages);
  const exact = examples.find((e) => e.input === input);
  if (exact) return exact.answer;
  const words = wordSet(input);
  let best: TrainingExample | undefined;
  let bestScore = -1;
  for (const e of examples) {
    const score = jaccard(words, wordSet(e.input));
    if (score > bestScore) {
      best = e;
      bestScore = score;
    }
  }
  return best?.answer ?? '';
}

export function baseModelAnswer(messages: ChatTurn[]): string {
  const system = messages.filter((m) => m.role === 'system' || m.role === 'developer').map((m) => m.content);
  if (system.some((s) => /json/i.test(s))) return '{}';
  return (lastUserMessage(messages).split('\n')[0] ?? '').slice(0, 200);
}
