// What the evaluator's tests share: the demo's invoices as a fine-tune request, and a reader for the
// multipart (text + HTML) outcome e-mail.
import type { FineTuneRequestInput } from '@tuneline/contracts';
import type { DatasetStorage } from '@tuneline/dataset';
import type { Db } from '@tuneline/db';
import { invoiceModelConfig, syntheticInvoices } from '@tuneline/devstack';
import { reserveCredits } from '@tuneline/ledger';
import { BASE_MODEL } from '../evaluation/invoice-examples.ts';
import { seedReadyDataset } from '../stages/harness.ts';

/** The demo's 60 invoices (seed 2026) at a 20% test split: the testing file is demoSplit().test. */
export function invoiceRequest(
  over: Partial<FineTuneRequestInput> & { requestId: string; licenseId: string },
) {
  return {
    documents: syntheticInvoices({ count: 60, seed: 2026 }),
    modelConfig: invoiceModelConfig,
    dump: 'mapped',
    testPercent: 20,
    baseModel: BASE_MODEL,
    autoTrain: true,
    ...over,
  } satisfies FineTuneRequestInput;
}

/** The parts of a MIME message by content type, transfer encoding undone (quoted-printable, base64). */
export function mimeParts(raw: string): Record<string, string> {
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1];
  if (!boundary) return {};
  const parts: Record<string, string> = {};
  for (const chunk of raw.split(`--${boundary}`).slice(1)) {
    const split = chunk.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const head = chunk.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
    const type = /content-type:\s*([^;\r\n]+)/i.exec(head)?.[1]?.trim().toLowerCase();
    if (!type) continue;
    let body = chunk.slice(split + 4);
    if (/content-transfer-encoding:\s*quoted-printable/i.test(head)) {
      body = decodeQuotedPrintable(body.replace(/=\r\n/g, ''));
    } else if (/content-transfer-encoding:\s*base64/i.test(head)) {
      body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    }
    parts[type] = body.replace(/\r\n/g, '\n');
  }
  return parts;
}

function decodeQuotedPrintable(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const hex = s.slice(i + 1, i + 3);
    if (s[i] === '=' && /^[0-9A-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(s[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Sum of the `evaluation` ledger transfers of a fine-tune, and how many there are per id. */
export async function evaluationLedger(db: Db, fineTuneId: string) {
  const rows = await db
    .selectFrom('ledger_transfers')
    .select(['id', 'amount', 'tokens'])
    .where('fine_tune_id', '=', fineTuneId)
    .where('kind', '=', 'evaluation')
    .execute();
  return {
    count: rows.length,
    ids: new Set(rows.map((r) => r.id)),
    credits: rows.reduce((a, r) => a + BigInt(r.amount), 0n),
    tokens: rows.reduce((a, r) => a + BigInt(r.tokens ?? 0), 0n),
  };
}

/**
 * A fine-tune that has just succeeded (not settled yet) on a dataset with a testing file of
 * `testExamples` examples (`testTokens` tokens in all), holding a reservation of `reserve` credits as the
 * trainer would: billing's settlement then queues its evaluation. Its "fine-tuned model" is `model`
 * (any model the simulator serves), trained on `trainedTokens` at 3,000 credits per 1M tokens.
 */
export async function unsettledFineTune(
  db: Db,
  storage: DatasetStorage,
  opts: {
    licenseId: string;
    model: string;
    reserve: bigint;
    testExamples?: number;
    testTokens?: number;
    trainedTokens?: bigint;
    email?: string;
    /** Its provider, deployment and base model (default: the deployment default's BASE_MODEL, not deployed). */
    at?: { provider?: string; deployment_name?: string; base_model?: string };
  },
): Promise<string> {
  const testExamples = opts.testExamples ?? 8;
  const base = opts.at?.base_model ?? BASE_MODEL;
  const datasetId = await seedReadyDataset(db, { licenseId: opts.licenseId, storage, testExamples });
  await db
    .updateTable('datasets')
    .set({ test_tokens: opts.testTokens ?? testExamples * 60 })
    .where('id', '=', datasetId)
    .execute();
  const row = await db
    .insertInto('fine_tunes')
    .values({
      license_id: opts.licenseId,
      dataset_id: datasetId,
      correlation_id: `corr-${datasetId}`,
      status: 'succeeded',
      ...opts.at,
      base_model: base,
      description: 'evaluated',
      notify_emails: [opts.email ?? 'ops@example.com'],
      suffix: 'evaluated',
      hyperparameters: JSON.stringify('auto'),
      credits_per_million_tokens: 3000,
      fine_tuned_model: opts.model,
      trained_tokens: opts.trainedTokens ?? 1000n,
      credits_reserved: opts.reserve.toString(),
      finished_at: new Date(),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const reserved = await reserveCredits(db, {
    fineTuneId: row.id,
    licenseId: opts.licenseId,
    amount: opts.reserve,
    model: base,
  });
  if (!reserved.ok) throw new Error(`reservation of ${opts.reserve} refused: ${reserved.reason}`);
  return row.id;
}
