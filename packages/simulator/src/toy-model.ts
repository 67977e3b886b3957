// The simulator's toy chat models: deterministic, cheap per call, and measurably changed by training.
//
// - A fine-tuned model learns, once and then from its cache, an extractor from its job's training file
//   (learned-model.ts): what it gets right on documents it never saw rises with training examples and
//   epochs. A training file whose answers are mostly not JSON objects falls back to answering with the
//   answer of the most similar training input (Jaccard similarity of lower-cased word sets; ties go to
//   the earlier example).
// - A base model is a weaker generic extractor (base-model.ts) when a system prompt mentions JSON, and
//   otherwise echoes the first line of the user message (at most 200 characters).
import { baseModelAnswer as genericExtraction } from './base-model.ts';
import { extract, type LearnedModel, learn } from './learned-model.ts';
import type { TrainingExample } from './validation.ts';

export interface ChatTurn {
  role: string;
  content: string;
}

function wordSet(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  for (const w of a) if (b.has(w)) shared++;
  return shared / (a.size + b.size - shared);
}

function lastUserMessage(messages: ChatTurn[]): string {
  return messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
}

function systemPrompt(messages: ChatTurn[]): string {
  return messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map((m) => m.content)
    .join('\n');
}

/** The answer of the training example whose input is most like the last user message. */
export function nearestAnswer(examples: readonly TrainingExample[], messages: ChatTurn[]): string {
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

/** What a fine-tuned model is made from: its job's training examples, seed and epochs (nothing else). */
export interface FineTunedSource {
  examples: readonly TrainingExample[];
  seed: number;
  epochs: number;
}

/** The fine-tuned model learned from a source (null: its answers are not JSON; it answers by similarity). */
export function learnFineTuned(source: FineTunedSource): LearnedModel | null {
  return learn(source.examples, source.seed, source.epochs);
}

export function fineTunedAnswer(
  model: LearnedModel | null,
  source: FineTunedSource,
  messages: ChatTurn[],
): string {
  return model ? extract(model, lastUserMessage(messages)) : nearestAnswer(source.examples, messages);
}

export function baseModelAnswer(messages: ChatTurn[], seed: number): string {
  const system = systemPrompt(messages);
  if (/json/i.test(system)) return genericExtraction(system, lastUserMessage(messages), seed);
  return (lastUserMessage(messages).split('\n')[0] ?? '').slice(0, 200);
}

/**
 * The models one simulator serves. A fine-tuned model is learned at its first call and kept per model
 * record (a WeakMap, so a deleted model's cache goes with it). Nothing else is stored: after a restart a
 * model would be learned again, the same, from its job's training file, seed and epochs.
 */
export class ToyModels {
  private readonly learned = new WeakMap<object, LearnedModel | null>();

  constructor(private readonly seed: number) {}

  base(messages: ChatTurn[]): string {
    return baseModelAnswer(messages, this.seed);
  }

  fineTuned(record: object, source: () => FineTunedSource, messages: ChatTurn[]): string {
    let model = this.learned.get(record);
    const from = source();
    if (model === undefined) {
      model = learnFineTuned(from);
      this.learned.set(record, model);
    }
    return fineTunedAnswer(model, from, messages);
  }
}
