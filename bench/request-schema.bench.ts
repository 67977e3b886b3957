// The fine-tune request schema's cost with the depth bound on document fields (issue 16.7): parsing a
// 20,000-document request with the schema as it is, against the same schema with fields checked by
// zod's recursive JSON schema alone (the rule before the bound), in the same process and run.
import { documentSchema, fineTuneRequestSchema, MAX_FIELD_DEPTH } from '@tuneline/contracts';
import { z } from 'zod';

const DOCS = Number(process.env.REQUEST_BENCH_DOCS ?? 20_000);
const ROUNDS = 5;
const TARGET_RATIO = 1.25;

/** Fields as extraction produces them: scalars plus line items (objects in an array, 3 levels). */
function document(i: number) {
  return {
    id: `inv-${i}`,
    text: `INVOICE ${1000 + i}\nACME Supplies GmbH\nTotal: ${(i * 11.9).toFixed(2)} EUR`,
    fields: {
      invoiceNumber: String(1000 + i),
      total: (i * 11.9).toFixed(2),
      vendor: { name: 'ACME Supplies GmbH', vatId: `DE${100_000_000 + i}`, address: { city: 'Berlin' } },
      lines: Array.from({ length: 4 }, (_, k) => ({
        pos: k + 1,
        qty: k + 2,
        price: 9.5 * (k + 1),
        tags: ['a'],
      })),
      paid: i % 2 === 0,
      note: null,
    },
  };
}

const request = {
  requestId: 'bench-1',
  licenseId: 'lic-bench',
  documents: Array.from({ length: DOCS }, (_, i) => document(i)),
  modelConfig: { systemPrompt: 'Extract fields as JSON.', userPromptTemplate: 'Document:\n{{text}}' },
  baseModel: 'gpt-4o-mini-2024-07-18',
};

/** The schema before the bound: the same request, fields checked by z.json() only. */
const unbounded = fineTuneRequestSchema.extend({
  documents: z.array(documentSchema.extend({ fields: z.record(z.string(), z.json()) })),
});

function cpuMs(run: () => void): number {
  const start = process.cpuUsage();
  run();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const parseWith = (schema: z.ZodType) => () => {
  const parsed = schema.safeParse(request);
  if (!parsed.success) throw new Error(`bench request rejected: ${parsed.error.message}`);
};

// Warm both paths (JIT) outside the timed rounds.
parseWith(fineTuneRequestSchema)();
parseWith(unbounded)();

const rounds: { bounded: number; baseline: number; ratio: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const before = cpuMs(parseWith(unbounded));
  const bounded = cpuMs(parseWith(fineTuneRequestSchema));
  const after = cpuMs(parseWith(unbounded));
  const baseline = (before + after) / 2;
  rounds.push({ bounded, baseline, ratio: bounded / baseline });
}
const sorted = [...rounds].sort((a, b) => a.ratio - b.ratio);
const median = sorted[Math.floor(sorted.length / 2)] as (typeof rounds)[number];
const perDoc = (ms: number) => `${((ms * 1000) / DOCS).toFixed(1)} µs/doc`;
console.log(
  `request schema, ${DOCS} documents (fields up to 3 levels, bound ${MAX_FIELD_DEPTH}): ` +
    `bounded ${median.bounded.toFixed(0)} ms CPU (${perDoc(median.bounded)}), ` +
    `unbounded baseline ${median.baseline.toFixed(0)} ms (${perDoc(median.baseline)}), ` +
    `ratio ${median.ratio.toFixed(2)} (all rounds: ${rounds.map((x) => x.ratio.toFixed(2)).join(', ')}), ` +
    `target <= ${TARGET_RATIO}${median.ratio <= TARGET_RATIO ? '' : ' TARGET MISSED'}`,
);
