import { existsSync } from 'node:fs';
import { canonicalJson } from '@tuneline/contracts';
import {
  assistantContent,
  CONTROL_CHAR_PATTERN,
  chooseTestSet,
  compileAnswerKey,
  compileAssistantContent,
  compilePromptTemplate,
  compileTemplate,
  exampleLine,
  exampleLineParts,
  isPlainText,
  quotePlainText,
  stableJson,
  TemplateError,
} from '@tuneline/dataset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { build, invoice, invoices, jsonl, removedAfterAll, type TempStorage } from './fixtures.ts';

const removeAfterAll = removedAfterAll();

describe('example construction', { timeout: 120_000 }, () => {
  it('builds system / filled user / assistant with only the mapped fields, keys sorted (golden)', async () => {
    const { result, store } = await build(invoices(12));
    removeAfterAll(store);
    expect(result.status).toBe('ready');
    const lines = store.read('train.jsonl').split('\n');
    expect(lines[0]).toBe(
      '{"messages":[{"role":"system","content":"You extract invoice fields and answer with JSON."},' +
        '{"role":"user","content":"Document inv-0000:\\nINVOICE 1000\\nACME Supplies GmbH, Hauptstraße 0\\nDate: 2024-03-01\\nNet: 0.00 EUR\\nVAT 19%: 0.00 EUR\\nTotal: 0.00 EUR"},' +
        '{"role":"assistant","content":"{\\"invoiceNumber\\":\\"1000\\",\\"total\\":\\"0.00\\"}"}]}',
    );
    expect(lines).toHaveLength(13); // 12 examples and the final newline
  });

  it('dump "all" writes every field as compact JSON with keys sorted at every level (golden)', async () => {
    const docs = invoices(12).map((d, i) =>
      i === 0 ? { ...d, fields: { z: 1, a: { y: [1, 'b'], b: null }, m: 'x' } } : d,
    );
    const { result, store } = await build(docs, { dump: 'all' });
    removeAfterAll(store);
    expect(result.status).toBe('ready');
    const first = jsonl(store.read('train.jsonl'))[0];
    expect(first?.messages[2]).toEqual({
      role: 'assistant',
      content: '{"a":{"b":null,"y":[1,"b"]},"m":"x","z":1}',
    });
    const second = jsonl(store.read('train.jsonl'))[1];
    expect(second?.messages[2]?.content).toBe(
      '{"date":"2024-03-02","invoiceNumber":"1001","total":"11.90","vendor":"ACME Supplies GmbH"}',
    );
  });

  it('stableJson writes the same text as canonicalJson for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(stableJson(v)).toBe(canonicalJson(v));
      }),
      { numRuns: 500 },
    );
  });

  it('stableJson gives canonicalJson for many objects sharing their keys in any order', () => {
    const keys = ['total', 'date', '10', 'vendor', '2', '__proto__', 'a b'];
    const object = fc
      .tuple(
        fc.shuffledSubarray(keys),
        fc.array(fc.jsonValue({ maxDepth: 1 }), { minLength: 7, maxLength: 7 }),
      )
      .map(([ks, vs]) => {
        const o: Record<string, unknown> = Object.create(null);
        ks.forEach((k, i) => {
          o[k] = vs[i];
        });
        return o;
      });
    fc.assert(
      fc.property(fc.array(object, { maxLength: 20 }), (objects) => {
        for (const o of objects) expect(stableJson(o)).toBe(canonicalJson(o));
      }),
      { numRuns: 300 },
    );
  });

  it('exampleLineParts around the JSON-encoded contents give exactly exampleLine', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.string({ unit: 'binary' }),
        fc.string(),
        (sys, user, answer) => {
          const { head, middle, tail } = exampleLineParts(sys);
          const messages = [
            { role: 'system', content: sys },
            { role: 'user', content: user },
            { role: 'assistant', content: answer },
          ];
          expect(head + JSON.stringify(user) + middle + JSON.stringify(answer) + tail).toBe(
            exampleLine(messages),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('quotePlainText is JSON.stringify for plain text; plain text has no control character', () => {
    const chars = fc.constantFrom(
      'a',
      'ß',
      '€',
      ' ',
      '\n',
      '\r',
      '\t',
      '"',
      '\\',
      '\u0000',
      '\u001f',
      '\u007f',
      '\ud83d',
      '\ude00',
      '\u2028',
      '/',
    );
    const texts = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.array(chars, { maxLength: 40 }).map((cs) => cs.join('')),
    );
    let plainSeen = 0;
    fc.assert(
      fc.property(texts, (text) => {
        if (!isPlainText(text)) {
          expect(/[\u0000-\u0008\u000B\u000C\u000E-\u001F"\\\u007F\uD800-\uDFFF]/.test(text)).toBe(true);
          return;
        }
        plainSeen++;
        expect(CONTROL_CHAR_PATTERN.test(text)).toBe(false);
        expect(quotePlainText(text)).toBe(JSON.stringify(text));
      }),
      { numRuns: 3_000 },
    );
    expect(plainSeen).toBeGreaterThan(100);
    expect(quotePlainText('a\r\nb\tc\n\nü 😀')).toBe(JSON.stringify('a\r\nb\tc\n\nü 😀'));
    expect(isPlainText('😀')).toBe(false); // surrogates take JSON.stringify (a lone one is escaped)
  });

  it('compileAnswerKey: equal answers get equal keys, different answers rarely share one', () => {
    const key = fc.oneof(
      fc.constantFrom('total', 'date', '0', '10', '__proto__', ''),
      fc.string({ maxLength: 4 }),
    );
    const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
    const fields = fc.dictionary(key, value, { maxKeys: 6 }) as fc.Arbitrary<
      Parameters<typeof assistantContent>[0]
    >;
    fc.assert(
      fc.property(
        fields,
        fields,
        fc.array(key, { maxLength: 6 }),
        fc.constantFrom('all', 'mapped'),
        (a, extra, mapped, dump) => {
          const answerOf = compileAssistantContent(dump, mapped);
          const keyOf = compileAnswerKey(dump, mapped);
          // The same fields in another order, plus fields the answer leaves out: the same answer.
          const b = Object.fromEntries(Object.entries(a).reverse());
          for (const [k, v] of Object.entries(extra)) {
            if (!Object.hasOwn(b, k) && (dump === 'mapped' ? !mapped.includes(k) : v === undefined)) b[k] = v;
          }
          expect(answerOf(b)).toBe(answerOf(a));
          expect(keyOf(b)).toBe(keyOf(a));
        },
      ),
      { numRuns: 2_000 },
    );
    // Distinct answers: invoice-like fields differing in one value.
    const keyOf = compileAnswerKey('mapped', ['invoiceNumber', 'total', 'date']);
    const keys = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      keys.add(keyOf({ invoiceNumber: `INV-${i}`, total: `${(i * 7919) % 5000}.00`, date: '2024-05-01' }));
    }
    expect(keys.size).toBeGreaterThan(19_980);
  });

  it('compileAssistantContent gives assistantContent for any fields and mapped list', () => {
    const key = fc.oneof(
      fc.constantFrom('total', 'date', '0', '1', '10', '01', '__proto__', 'toJSON', 'constructor', ''),
      fc.string({ maxLength: 6 }),
    );
    const fields = fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 8 }) as fc.Arbitrary<
      Parameters<typeof assistantContent>[0]
    >;
    fc.assert(
      fc.property(
        fields,
        fc.array(key, { maxLength: 8 }),
        fc.constantFrom('all', 'mapped'),
        (f, mapped, dump) => {
          expect(compileAssistantContent(dump, mapped)(f)).toBe(assistantContent(f, dump, mapped));
        },
      ),
      { numRuns: 2_000 },
    );
    const proto = JSON.parse('{"__proto__":{"a":1},"total":"5","2":"x"}');
    expect(compileAssistantContent('mapped', ['total', '__proto__', '2', 'total'])(proto)).toBe(
      assistantContent(proto, 'mapped', ['total', '__proto__', '2', 'total']),
    );
    // A field named "__proto__" is a field like any other, in both dump modes.
    expect(assistantContent(proto, 'mapped', ['total', '__proto__', '2'])).toBe(
      '{"2":"x","__proto__":{"a":1},"total":"5"}',
    );
    expect(assistantContent(proto, 'all', [])).toBe('{"2":"x","__proto__":{"a":1},"total":"5"}');
  });

  it('mapped dump leaves out mapped fields a document lacks', () => {
    expect(assistantContent({ total: '1', other: 2 }, 'mapped', ['total', 'missing'])).toBe('{"total":"1"}');
  });

  it('fills {{text}} and {{documentId}} (with spaces inside braces) and keeps other text', () => {
    const fill = compileTemplate('[{{ documentId }}] {{text}} -- {{text}}');
    expect(fill({ id: 'd1', text: 'T' })).toBe('[d1] T -- T');
  });

  it('a compiled template knows its length, and its prefix when it ends with its only {{text}} (property)', () => {
    const part = fc.constantFrom('{{text}}', '{{ documentId }}', 'Doc ', ':\n\n', 'text', '{{', '}', '');
    const doc = fc.record({ id: fc.string({ minLength: 1 }), text: fc.string() });
    fc.assert(
      fc.property(fc.array(part, { maxLength: 6 }), doc, (parts, d) => {
        const template = parts.join('');
        let compiled: ReturnType<typeof compilePromptTemplate>;
        try {
          compiled = compilePromptTemplate(template);
        } catch (err) {
          // No {{text}}, or an unknown placeholder such as {{}}: tested elsewhere.
          expect(err).toBeInstanceOf(TemplateError);
          return;
        }
        const filled = compiled.fill(d);
        expect(compiled.length(d)).toBe(filled.length);
        const texts = template.match(/\{\{\s*text\s*\}\}/g)?.length ?? 0;
        if (texts === 1 && /\{\{\s*text\s*\}\}$/.test(template)) {
          expect(`${compiled.prefix?.(d)}${d.text}`).toBe(filled);
        } else expect(compiled.prefix).toBeUndefined();
      }),
      { numRuns: 1_000 },
    );
    const invoicePrompt = compilePromptTemplate('Document {{documentId}}:\n\n{{text}}');
    expect(invoicePrompt.beforeText).toBe(':\n\n');
    expect(invoicePrompt.prefix?.({ id: 'd1', text: 'T' })).toBe('Document d1:\n\n');
    expect(compilePromptTemplate('{{text}}').prefix?.({ id: 'd1', text: 'T' })).toBe('');
    expect(compilePromptTemplate('A {{text}}').beforeText).toBe('A ');
  });

  it('rejects unknown placeholders by name, and a template without {{text}}', () => {
    expect(() => compileTemplate('{{text}} {{vendor}}')).toThrow(TemplateError);
    expect(() => compileTemplate('{{text}} {{vendor}}')).toThrow(/\{\{vendor\}\}/);
    expect(() => compileTemplate('only {{documentId}}')).toThrow(/\{\{text\}\}/);
  });

  it('an unknown placeholder makes the dataset invalid, naming the field and placeholder', async () => {
    const { result, store } = await build(invoices(12), {
      modelConfig: {
        systemPrompt: 's',
        userPromptTemplate: '{{text}} {{customer}}',
        mappedFields: ['total'],
      },
    });
    removeAfterAll(store);
    expect(result.status).toBe('invalid');
    expect(result.errors).toContainEqual(
      expect.objectContaining({
        code: 'invalid_template',
        field: 'modelConfig.userPromptTemplate',
        message: expect.stringContaining('{{customer}}'),
      }),
    );
    expect(existsSync(store.storage.path('train.jsonl'))).toBe(false);
  });
});

describe('test split', { timeout: 120_000 }, () => {
  it('takes testPercent of the documents, the same ones for the same request', async () => {
    const docs = invoices(50);
    const a = await build(docs, { testPercent: 20 });
    const b = await build([...docs], { testPercent: 20 });
    removeAfterAll(a.store, b.store);
    expect(a.result.testExamples).toBe(10);
    expect(a.result.trainExamples).toBe(40);
    expect(a.store.read('test.jsonl')).toBe(b.store.read('test.jsonl'));
    expect(a.store.read('train.jsonl')).toBe(b.store.read('train.jsonl'));
    expect(a.result.contentHash).toBe(b.result.contentHash);
    expect(a.result.shortHash).toBe(a.result.contentHash?.slice(0, 8));
    // Every document lands in exactly one file.
    const ids = (text: string) =>
      jsonl(text).map((e) => /Document (\S+):/.exec(e.messages[1]?.content ?? '')?.[1]);
    const all = [...ids(a.store.read('train.jsonl')), ...ids(a.store.read('test.jsonl'))].sort();
    expect(all).toEqual(docs.map((d) => d.id).sort());
  });

  it('a different request content gives a different (seeded) split', async () => {
    const docs = invoices(50);
    const a = await build(docs, { testPercent: 20 });
    const b = await build(docs, {
      testPercent: 20,
      modelConfig: { systemPrompt: 'Other prompt.', userPromptTemplate: '{{text}}', mappedFields: ['total'] },
    });
    removeAfterAll(a.store, b.store);
    const testIds = (s: TempStorage) =>
      jsonl(s.read('test.jsonl'))
        .map((e) => e.messages[2]?.content)
        .sort();
    expect(testIds(a.store)).not.toEqual(testIds(b.store));
  });

  it('a document keeps its rank when documents are added: the old and new test sets are nested', async () => {
    const docs = invoices(50);
    const a = await build(docs, { testPercent: 20 });
    const b = await build([...docs, ...invoices(30, 50)], { testPercent: 20 });
    removeAfterAll(a.store, b.store);
    const testIds = (s: TempStorage) =>
      new Set(
        jsonl(s.read('test.jsonl')).map(
          (e) => /Document (\S+):/.exec(e.messages[1]?.content ?? '')?.[1] ?? '',
        ),
      );
    const before = testIds(a.store);
    const original = new Set(docs.map((d) => d.id));
    const after = new Set([...testIds(b.store)].filter((id) => original.has(id)));
    expect(before.size).toBe(10);
    expect(testIds(b.store).size).toBe(16);
    // Ranks depend on the settings and the id alone, so the original documents in the new test set are
    // the lowest-ranked ones of them: a subset or a superset of the old test set, never a reshuffle.
    const nested = [...after].every((id) => before.has(id)) || [...before].every((id) => after.has(id));
    expect(nested).toBe(true);
    expect(after.size).toBeGreaterThan(0);
  });

  it('chooseTestSet is a pure function of ids, percent and seed', () => {
    const ids = invoices(40).map((d) => d.id);
    const x = chooseTestSet(ids, 25, 'seed-a');
    expect(x.size).toBe(10);
    expect([...chooseTestSet(ids, 25, 'seed-a')]).toEqual([...x]);
    expect([...chooseTestSet(ids, 25, 'seed-b')].sort()).not.toEqual([...x].sort());
  });

  it('chooseTestSet spreads evenly over similar ids (no id pattern decides the side)', () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `doc-${i}`);
    for (const seed of ['seed-a', 'seed-b', 'seed-c']) {
      const chosen = [...chooseTestSet(ids, 10, seed)];
      expect(chosen).toHaveLength(1_000);
      // By last digit and by position: 100 expected in each of the ten groups.
      const byDigit = new Array(10).fill(0);
      const byTenth = new Array(10).fill(0);
      for (const i of chosen) {
        byDigit[i % 10]++;
        byTenth[Math.floor(i / 1_000)]++;
      }
      for (const n of [...byDigit, ...byTenth]) {
        expect(n).toBeGreaterThan(65);
        expect(n).toBeLessThan(135);
      }
    }
  });

  it('no testing file when testPercent is 0', async () => {
    const { result, store } = await build(invoices(20));
    removeAfterAll(store);
    expect(result.testKey).toBeNull();
    expect(existsSync(store.storage.path('test.jsonl'))).toBe(false);
  });

  it('rounds testPercent of the document count (10% of 22 → 2 testing examples)', async () => {
    const docs = [invoice(1), invoice(2), ...invoices(20, 3)];
    const a = await build(docs, { testPercent: 10 });
    removeAfterAll(a.store);
    expect(a.result.testExamples).toBe(2);
  });
});

describe('long builds', { timeout: 120_000 }, () => {
  it('let timers run while building from an array (the worker lock renewal is a timer)', async () => {
    // Small documents: the files stay under the write stream's buffer, so no write ever waits for
    // the disk, and only the builder's own turns of the event loop let the timer fire.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const { result, store } = await build(invoices(2_500));
      removeAfterAll(store);
      expect(result.status).toBe('ready');
      expect(result.trainBytes).toBeLessThan(1024 * 1024);
    } finally {
      clearInterval(timer);
    }
    // Two turns (per 1,024 documents) in each of the two passes.
    expect(ticks).toBeGreaterThanOrEqual(4);
  });
});
