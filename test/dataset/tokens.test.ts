import {
  type ChatMessage,
  compileAnswerTokens,
  compileAssistantContent,
  countChatTokens,
  countTextTokens,
  encoderFor,
  isPlainText,
  splitsAfter,
  startsPiece,
  TokenCounter,
} from '@tuneline/dataset';
import fc from 'fast-check';
import { encode as encodeCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { encode as encodeO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { build, invoices, jsonl, removedAfterAll } from './fixtures.ts';

/** The independent implementation: gpt-tokenizer, special-token strings treated as text. */
const reference = {
  o200k_base: (t: string) => encodeO200k(t, { disallowedSpecial: new Set() }).length,
  cl100k_base: (t: string) => encodeCl100k(t, { disallowedSpecial: new Set() }).length,
} as const;

/** The cookbook's count, computed with the reference tokenizer. */
function referenceChatTokens(encoding: keyof typeof reference, messages: ChatMessage[]): number {
  let n = 3;
  for (const m of messages) n += 3 + reference[encoding](m.role) + reference[encoding](m.content);
  return n;
}

const removeAfterAll = removedAfterAll();

const samples = [
  '',
  'INVOICE 12345\nTotal: 1.234,56 EUR',
  'Straße Müller — “quotes” ✓ 日本語 🚀🚀 naïve café',
  '   leading and   trailing spaces   \n\n\n\t\ttabs',
  "don't it's we'll I'M 1234567890 3.14159",
  '<|endoftext|> counted as text <|im_start|>',
  'a'.repeat(5000),
];

// Loading three tokenizers' rank tables is slow on a busy machine.
describe('exact token counts', { timeout: 180_000 }, () => {
  for (const encoding of ['o200k_base', 'cl100k_base'] as const) {
    it(`${encoding}: matches gpt-tokenizer on fixed samples and js-tiktoken's own encode`, () => {
      for (const s of samples) {
        expect(countTextTokens(encoding, s), JSON.stringify(s.slice(0, 40))).toBe(reference[encoding](s));
        expect(countTextTokens(encoding, s)).toBe(encoderFor(encoding).encode(s, [], []).length);
      }
    });

    it(`${encoding}: matches gpt-tokenizer on random text (property)`, () => {
      // A tiny cache forces the uncached path too.
      const uncached = new TokenCounter(encoding, 1);
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
          const expected = reference[encoding](s);
          expect(countTextTokens(encoding, s)).toBe(expected);
          expect(uncached.count(s)).toBe(expected);
        }),
        { numRuns: 300 },
      );
    });

    it(`${encoding}: countChecked gives count and isPlainText from one pass (property)`, () => {
      // A tiny cache forces the path that learns a piece; the shared one answers from cached pieces.
      const uncached = new TokenCounter(encoding, 1);
      const shared = new TokenCounter(encoding);
      const chars = fc.constantFrom(
        'a',
        'Z',
        'ü',
        '7',
        ' ',
        '\n',
        '\r',
        '\t',
        '.',
        '/',
        '"',
        '\\',
        '\u0000',
        '\u0008',
        '\u000b',
        '\u000c',
        '\u001f',
        '\u007f',
        '\u0301',
        '\ud83d',
        '\ude00',
        '😀',
        '\u2028',
        '<|',
      );
      const texts = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 120 }),
        fc.array(chars, { maxLength: 60 }).map((cs) => cs.join('')),
      );
      let plainSeen = 0;
      let notPlainSeen = 0;
      fc.assert(
        fc.property(texts, (s) => {
          const expected = { tokens: reference[encoding](s), plain: isPlainText(s) };
          expect(uncached.countChecked(s)).toEqual(expected);
          expect(shared.countChecked(s)).toEqual(expected);
          if (expected.plain) plainSeen++;
          else notPlainSeen++;
        }),
        { numRuns: 1_000 },
      );
      expect(plainSeen).toBeGreaterThan(50);
      expect(notPlainSeen).toBeGreaterThan(50);
      expect(shared.countChecked('')).toEqual({ tokens: 0, plain: true });
    });

    it(`${encoding}: compileAnswerTokens counts the answer as counting it whole does (property)`, () => {
      const counter = new TokenCounter(encoding);
      // Values whose edges change the pre-tokenizer's pieces around the quotes: letters (upper, lower,
      // accented, CJK), digits, a combining mark, spaces, line breaks, punctuation, quotes, apostrophes
      // ('s), slashes, emoji; plus numbers, booleans, null, arrays and objects.
      const part = fc.constantFrom(
        'a',
        'Z',
        'é',
        'ß',
        '日本',
        '7',
        '123',
        '4567',
        ' ',
        '  ',
        '\n',
        '\t',
        '.',
        ',',
        '-',
        '/',
        '"',
        "'",
        "'s",
        "'LL",
        '\\',
        '\u0301',
        '😀',
        ':',
        '{',
        '}',
        'EUR',
        'GmbH',
        'INV-2024',
      );
      const text = fc.array(part, { maxLength: 6 }).map((ps) => ps.join(''));
      const edge = fc.constantFrom('a', 'Z', 'é', '日', '7', '42');
      const value = fc.oneof(
        { weight: 3, arbitrary: text },
        { weight: 3, arbitrary: fc.tuple(edge, text, edge).map((ps) => ps.join('')) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
        { weight: 1, arbitrary: fc.constant(undefined) },
      );
      const name = fc.constantFrom('total', 'date', 'vendor', 'invoiceNumber', '10', 'a b', 'x.', '');
      const fields = fc.dictionary(name, value, { maxKeys: 6 }) as fc.Arbitrary<Record<string, unknown>>;
      let apart = 0;
      fc.assert(
        fc.property(
          fields,
          fc.array(name, { maxLength: 6 }),
          fc.constantFrom('all', 'mapped'),
          (f, mapped, dump) => {
            const answerOf = compileAssistantContent(dump, mapped);
            const answerTokens = compileAnswerTokens(dump, mapped, counter);
            const answer = answerOf(f as never);
            expect(answerTokens(f as never, answer)).toBe(reference[encoding](answer));
            if (
              dump === 'mapped' &&
              answer.length > 2 &&
              /^\{("[^"\\]*":"[\p{L}\p{N}][^"\\]*",?)+\}$/u.test(answer)
            )
              apart++;
          },
        ),
        { numRuns: 3_000 },
      );
      // The fast path ran (answers of plain string values), not only the fallback.
      expect(apart).toBeGreaterThan(150);

      // One compiled counter over many documents, as a build uses it: values repeat across documents
      // (its value cache answers them), in fields present in some documents and absent in others.
      for (const mapped of [
        ['total', 'date', 'vendor'],
        ['invoiceNumber', '10', 'a b', 'total'],
      ]) {
        const answerOf = compileAssistantContent('mapped', mapped);
        const answerTokens = compileAnswerTokens('mapped', mapped, counter);
        fc.assert(
          fc.property(fields, (f) => {
            const answer = answerOf(f as never);
            expect(answerTokens(f as never, answer)).toBe(reference[encoding](answer));
          }),
          { numRuns: 2_000 },
        );
      }
    });

    it(`${encoding}: long one-piece runs (OCR noise) take the heap merge and count the same (property)`, () => {
      const uncached = new TokenCounter(encoding, 1);
      // Runs of letters with no space stay one pre-tokenizer piece: over 256 bytes they use the heap path.
      const run = fc
        .tuple(
          fc.constantFrom('ab', 'abcxyz', 'üöa', 'qzj', 'éèêë', 'Ωωabc'),
          fc.array(fc.nat(), { minLength: 200, maxLength: 1_500 }),
        )
        .map(([alphabet, picks]) => picks.map((p) => alphabet[p % alphabet.length]).join(''));
      fc.assert(
        fc.property(run, (s) => {
          expect(uncached.count(s)).toBe(reference[encoding](s));
        }),
        { numRuns: 60 },
      );
      // The case that used to stall: one 20,000-character word.
      const noise = 'ü'.repeat(20_000);
      expect(uncached.count(noise)).toBe(reference[encoding](noise));
    });

    it(`${encoding}: a prompt prefix ending in a symbol and line breaks counts apart from the text (property)`, () => {
      const counter = new TokenCounter(encoding);
      // Characters around the boundary that change the pre-tokenizer's pieces: letters, a combining
      // mark, digits, spaces and line breaks, symbols, '/', quotes, surrogates (paired and lone).
      const chars = fc.constantFrom(
        ...['a', 'Z', 'é', '\u0301', '1', ' ', '\n', '\r', '\t', ':', '-', '/', "'", '"', '😀'],
        ...['\ud83d', '\ude00', '\u00a0', '中', '.', '\\', 's'],
      );
      const str = (maxLength: number) =>
        fc.oneof(
          fc.array(chars, { maxLength }).map((cs) => cs.join('')),
          fc.string({ unit: 'grapheme', maxLength }),
          fc.string({ unit: 'binary', maxLength }),
        );
      const symbol = fc.constantFrom(':', '-', '#', '"', '/', '😀', '\u0301', '\ude00', 'a', ' ', '1');
      const breaks = fc.array(fc.constantFrom('\n', '\r', '\r\n'), { maxLength: 3 }).map((b) => b.join(''));
      let split = 0;
      let differs = 0;
      fc.assert(
        fc.property(str(6), str(8), symbol, breaks, str(30), (id, before, sym, brk, text) => {
          // `id` stands for whatever precedes the literal, such as a document id.
          const literal = before + sym + brk;
          const joined = counter.count(id + literal + text);
          const apart = counter.count(id + literal) + counter.count(text);
          if (splitsAfter(literal) && startsPiece(text)) {
            split++;
            expect(apart).toBe(joined);
          } else if (apart !== joined) differs++;
        }),
        { numRuns: 5_000 },
      );
      // Both sides were exercised: the rule held where it applies, and elsewhere counts do differ.
      expect(split).toBeGreaterThan(500);
      expect(differs).toBeGreaterThan(50);
      // The cases the rule excludes: a text starting with a line break or '/', a combining mark.
      expect(splitsAfter('Document 1:\n\n')).toBe(true);
      expect(startsPiece('\nx') || startsPiece('/x') || startsPiece('')).toBe(false);
      expect(splitsAfter('a\u0301\n') || splitsAfter('Q: ') || splitsAfter('Text:')).toBe(false);
    });
  }

  it('chat counts follow the cookbook: 3 per message + role + content, + 3 priming', () => {
    const messages = [
      { role: 'system', content: 'Extract fields.' },
      { role: 'user', content: 'Invoice 1\nTotal 5 EUR' },
      { role: 'assistant', content: '{"total":"5"}' },
    ];
    expect(countChatTokens('o200k_base', messages)).toBe(referenceChatTokens('o200k_base', messages));
    expect(countChatTokens('cl100k_base', messages)).toBe(referenceChatTokens('cl100k_base', messages));
  });

  for (const [baseModel, encoding] of [
    ['gpt-4o-mini-2024-07-18', 'o200k_base'],
    ['gpt-3.5-turbo-0125', 'cl100k_base'],
  ] as const) {
    it(`${baseModel}: dataset train/test tokens equal the reference count of the written files`, async () => {
      const { result, store } = await build(invoices(40), {
        baseModel,
        testPercent: 25,
        job: { hyperparameters: { n_epochs: 2 } },
      });
      removeAfterAll(store);
      expect(result.status).toBe('ready');
      const sum = (text: string) =>
        jsonl(text).reduce((n, e) => n + referenceChatTokens(encoding, e.messages), 0);
      const train = sum(store.read('train.jsonl'));
      expect(result.trainTokens).toBe(BigInt(train));
      expect(result.testTokens).toBe(BigInt(sum(store.read('test.jsonl'))));
      expect(result.epochs).toBe(2);
      expect(result.estimatedBilledTokens).toBe(BigInt(2 * train));
      const price = baseModel === 'gpt-3.5-turbo-0125' ? 8000n : 3000n;
      expect(result.estimatedCredits).toBe((BigInt(2 * train) * price + 999_999n) / 1_000_000n);
    });
  }
});
