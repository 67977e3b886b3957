// The checks of a create-fine-tuning-job request (job-request.ts and the state lookups it asks), through
// the SDK: each bad parameter is refused with a 400 naming it, in OpenAI's order of checks.
import { BadRequestError, toFile } from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  invoiceExamples,
  loadConformanceChecker,
  simulatorForFile,
  toJsonl,
  uploadTrainingFile,
  waitForJob,
  withSimulator,
} from './support.ts';

const sim = simulatorForFile({ seed: 5, speed: 2000 });
let trainingFile: string;

beforeAll(async () => {
  trainingFile = await uploadTrainingFile(sim.client, toJsonl(invoiceExamples(12)), 'train.jsonl');
});

/** The 400 a create request gets: its param and code. */
async function refusal(body: Record<string, unknown>) {
  const err = await sim.client.fineTuning.jobs
    .create({ model: 'gpt-4o-mini-2024-07-18', training_file: trainingFile, ...body } as never)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(BadRequestError);
  const e = err as BadRequestError;
  return { param: e.param, code: e.code, message: e.message };
}

describe('create job: each parameter is checked', () => {
  it.each([
    [{ model: '' }, 'model', null],
    [{ model: 'gpt-9' }, 'model', 'model_not_available'],
    [{ training_file: '' }, 'training_file', null],
    [{ training_file: 'file-none' }, 'training_file', 'invalid_file'],
    [{ validation_file: 'file-none' }, 'validation_file', 'invalid_file'],
    [{ suffix: 7 }, 'suffix', 'invalid_type'],
    [{ suffix: 'x'.repeat(65) }, 'suffix', 'string_above_max_length'],
    [{ suffix: 'a b' }, 'suffix', 'invalid_value'],
    [{ metadata: [] }, 'metadata', 'invalid_type'],
    [
      { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
      'metadata',
      'object_above_max_properties',
    ],
    [{ metadata: { ['k'.repeat(65)]: 'v' } }, 'metadata', 'invalid_value'],
    [{ metadata: { team: 1 } }, 'metadata.team', 'invalid_type'],
    [{ metadata: { team: 'v'.repeat(513) } }, 'metadata.team', 'string_above_max_length'],
    [{ hyperparameters: { epochs: 2 } }, 'hyperparameters.epochs', 'unknown_parameter'],
    [{ hyperparameters: { n_epochs: 51 } }, 'hyperparameters.n_epochs', 'invalid_value'],
    [{ hyperparameters: { batch_size: 1.5 } }, 'hyperparameters.batch_size', 'invalid_value'],
    [
      { hyperparameters: { learning_rate_multiplier: 0 } },
      'hyperparameters.learning_rate_multiplier',
      'invalid_value',
    ],
    [{ method: { type: 'dpo' } }, 'method.type', 'invalid_value'],
    [
      { method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 0 } } } },
      'method.supervised.hyperparameters.n_epochs',
      'invalid_value',
    ],
    [{ seed: 1.5 }, 'seed', 'invalid_type'],
  ])('%j is refused naming %s', async (body, param, code) => {
    expect(await refusal(body)).toMatchObject({ param, code });
  });

  it('checks in OpenAI order: model, files, suffix, metadata, hyperparameters, seed', async () => {
    const all = {
      model: 'gpt-9',
      training_file: 'file-none',
      suffix: 'a b',
      metadata: { team: 1 },
      hyperparameters: { n_epochs: 0 },
      seed: 1.5,
    };
    const order: (string | null | undefined)[] = [];
    let body: Record<string, unknown> = { ...all };
    for (const fix of [
      { model: 'gpt-4o-mini-2024-07-18' },
      { training_file: trainingFile },
      { suffix: 'ok' },
      { metadata: { team: 'a' } },
      { hyperparameters: { n_epochs: 2 } },
    ]) {
      order.push((await refusal(body)).param);
      body = { ...body, ...fix };
    }
    order.push((await refusal(body)).param);
    expect(order).toEqual([
      'model',
      'training_file',
      'suffix',
      'metadata.team',
      'hyperparameters.n_epochs',
      'seed',
    ]);
  });

  it('refuses a file still being processed and one of another purpose', async () => {
    await withSimulator({ seed: 6, speed: 1 }, async (_slow, slowClient) => {
      const file = await slowClient.files.create({
        file: await toFile(Buffer.from(toJsonl(invoiceExamples(12))), 'train.jsonl'),
        purpose: 'fine-tune',
      });
      const err = await slowClient.fineTuning.jobs
        .create({ model: 'gpt-4o-mini-2024-07-18', training_file: file.id })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 400, param: 'training_file', code: 'file_not_ready' });
    });
    // The only other purpose a file here has: a finished job's result file.
    const done = await waitForJob(
      sim.client,
      (
        await sim.client.fineTuning.jobs.create({
          model: 'gpt-4o-mini-2024-07-18',
          training_file: trainingFile,
        })
      ).id,
    );
    expect(done.status).toBe('succeeded');
    expect(await refusal({ training_file: done.result_files[0] })).toMatchObject({
      param: 'training_file',
      code: 'invalid_file_purpose',
    });
  });

  it('every error body in this file conforms to the OpenAPI document', () => {
    const { checked, failures } = loadConformanceChecker().check(sim.recorded);
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });
});
