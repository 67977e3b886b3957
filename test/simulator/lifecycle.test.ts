// Training-file validation, `auto` epochs, trained tokens and the other job endings (cancel, pause,
// resume, per-job failure modes), all through the SDK.
import { resolveAutoEpochs } from '@tuneline/simulator';
import { encode as encodeCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { encode as encodeO200k } from 'gpt-tokenizer/encoding/o200k_base';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import {
  invoiceExamples,
  loadConformanceChecker,
  simulatorForFile,
  sleep,
  toJsonl,
  uploadTrainingFile,
  waitForJob,
  withSimulator,
} from './support.ts';

const sim = simulatorForFile({ seed: 3, speed: 2000 });

const upload = (content: string, name = 'train.jsonl') => uploadTrainingFile(sim.client, content, name);

async function runJob(
  content: string,
  model = 'gpt-4o-mini-2024-07-18',
  extra: Record<string, unknown> = {},
) {
  const training_file = await upload(content);
  const job = await sim.client.fineTuning.jobs.create({ model, training_file, ...extra });
  return waitForJob(sim.client, job.id);
}

const line = (messages: unknown[], more: Record<string, unknown> = {}) =>
  JSON.stringify({ messages, ...more });
const good = (i: number) =>
  line([
    { role: 'user', content: `question ${i}` },
    { role: 'assistant', content: `answer ${i}` },
  ]);
/** Nine good lines with `bad` as example 4. */
const withBadFourth = (bad: string) =>
  `${[1, 2, 3].map(good).join('\n')}\n${bad}\n${[5, 6, 7, 8, 9, 10].map(good).join('\n')}\n`;
/** A question `q` changed by `user` and its answer `a`, with `more` top-level keys. */
const badQuestion = (user: Record<string, unknown>, more: Record<string, unknown> = {}) =>
  line(
    [
      { role: 'user', content: 'q', ...user },
      { role: 'assistant', content: 'a' },
    ],
    more,
  );
/** Bad lines for example 4 (invalid_training_file) and the message naming them. */
const badFourths: Array<[string, string, RegExp]> = [
  ['a line that is not JSON', '{"messages": [', /Example 4 \(line 4\) is not valid JSON/],
  ['a missing messages list', '{"prompt": "x"}', /Example 4 .*unrecognized key "prompt"/],
  ['an unknown top-level key', badQuestion({}, { extra: 1 }), /Example 4 .*unrecognized key "extra"/],
  ['an unknown role', badQuestion({ role: 'robot' }), /Example 4 .*unrecognized role "robot"/],
  ['non-string content', badQuestion({ content: 42 }), /Example 4 .*content is not a string/],
  ['no assistant message', line([{ role: 'user', content: 'q' }]), /Example 4 .*no assistant message/],
  [
    'a special token',
    badQuestion({ content: 'q <|endoftext|>' }),
    /Example 4 .*special token "<\|endoftext\|>"/,
  ],
  ['an unknown message key', badQuestion({ mood: 'x' }), /Example 4 .*unrecognized key "mood"/],
];

describe('training-file validation', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    [
      'fewer than 10 examples',
      `${[1, 2, 3, 4, 5, 6, 7, 8, 9].map(good).join('\n')}\n`,
      'invalid_n_examples',
      /has 9 example\(s\), but must have at least 10/,
    ],
    ...badFourths.map(([name, bad, message]): [string, string, string, RegExp] => [
      name,
      withBadFourth(bad),
      'invalid_training_file',
      message,
    ]),
  ];

  it.each(cases)('fails a file with %s', async (_name, content, code, message) => {
    const job = await runJob(content);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code, param: 'training_file' });
    expect(job.error!.message).toMatch(message);
    expect(job.trained_tokens).toBeNull();
    expect(job.fine_tuned_model).toBeNull();
    const events = await sim.client.fineTuning.jobs.listEvents(job.id);
    expect(events.data[0]).toMatchObject({ level: 'error', message: job.error!.message });
  });

  it("fails an example longer than the base model's token limit", async () => {
    // gpt-3.5-turbo-0125 takes 16,385 tokens per example; " a" is one cl100k token.
    const long = badQuestion({ content: ' a'.repeat(17_000) });
    const job = await runJob(withBadFourth(long), 'gpt-3.5-turbo-0125');
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'invalid_training_file', param: 'training_file' });
    expect(job.error!.message).toMatch(/Example 4 .*more than the 16385-token limit of gpt-3.5-turbo-0125/);
  });
});

describe('validation file', () => {
  it('fails the job with invalid_validation_file naming the example', async () => {
    const training_file = await upload(toJsonl(invoiceExamples(12)));
    const validation_file = await upload(
      `${good(1)}\n${line([{ role: 'user', content: 'q' }])}\n`,
      'valid.jsonl',
    );
    const job = await sim.client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file,
      validation_file,
    });
    const done = await waitForJob(sim.client, job.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'invalid_validation_file', param: 'validation_file' });
    expect(done.error!.message).toMatch(/Example 2 \(line 2\) has no assistant message/);
  });

  it('reports validation metrics in checkpoints when a valid validation file is given', async () => {
    const training_file = await upload(toJsonl(invoiceExamples(12)));
    const validation_file = await upload(toJsonl(invoiceExamples(3)), 'valid.jsonl');
    const job = await sim.client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file,
      validation_file,
    });
    expect((await waitForJob(sim.client, job.id)).status).toBe('succeeded');
    const checkpoints = await sim.client.fineTuning.jobs.checkpoints.list(job.id);
    expect(checkpoints.data[0]!.metrics.valid_loss).toBeGreaterThan(0);
  });
});

describe('auto hyperparameters and trained tokens', () => {
  it('resolves auto epochs by the published rule', () => {
    expect(resolveAutoEpochs(10)).toBe(10);
    expect(resolveAutoEpochs(12)).toBe(9);
    expect(resolveAutoEpochs(1)).toBe(25);
    expect(resolveAutoEpochs(34)).toBe(3);
    expect(resolveAutoEpochs(33)).toBe(4);
    expect(resolveAutoEpochs(8333)).toBe(3);
    expect(resolveAutoEpochs(8334)).toBe(2);
    expect(resolveAutoEpochs(30_000)).toBe(1);
  });

  it('charges epochs × billable tokens, counted per message like the cookbook', async () => {
    const examples = invoiceExamples(40);
    const job = await runJob(toJsonl(examples));
    expect(job.status).toBe('succeeded');
    expect(job.hyperparameters.n_epochs).toBe(3);
    // Counted here independently: 3 priming tokens per example, 3 + role + content per message.
    const count = (text: string) => encodeO200k(text, { disallowedSpecial: new Set() }).length;
    const billable = examples.reduce((sum, e) => {
      const messages = [
        ['system', e.system!],
        ['user', e.user],
        ['assistant', e.assistant],
      ];
      return sum + 3 + messages.reduce((s, [role, content]) => s + 3 + count(role!) + count(content!), 0);
    }, 0);
    expect(job.trained_tokens).toBe(3 * billable);
  });

  it('counts gpt-3.5 examples with cl100k', async () => {
    const examples = invoiceExamples(34).map(({ user, assistant }) => ({ user, assistant }));
    const job = await runJob(toJsonl(examples), 'gpt-3.5-turbo-0125', { hyperparameters: { n_epochs: 1 } });
    const count = (text: string) => encodeCl100k(text).length;
    const billable = examples.reduce(
      (sum, e) =>
        sum + 3 + (3 + count('user') + count(e.user)) + (3 + count('assistant') + count(e.assistant)),
      0,
    );
    expect(job.trained_tokens).toBe(billable);
  });
});

describe('job endings', () => {
  it('fails or cancels a job on request through metadata.sim_outcome', async () => {
    const content = toJsonl(invoiceExamples(12));
    const failed = await runJob(content, 'gpt-4o-mini-2024-07-18', { metadata: { sim_outcome: 'fail' } });
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ code: 'simulated_failure', param: null });
    const cancelled = await runJob(content, 'gpt-4o-mini-2024-07-18', {
      metadata: { sim_outcome: 'cancel' },
    });
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.fine_tuned_model).toBeNull();
  });

  it('ends a job through the admin endpoint', async () => {
    const training_file = await upload(toJsonl(invoiceExamples(12)));
    const job = await sim.client.fineTuning.jobs.create({ model: 'gpt-4o-mini-2024-07-18', training_file });
    const res = await fetch(`${sim.baseUrl}/_sim/jobs/${job.id}/outcome`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outcome: 'fail' }),
    });
    expect(res.status).toBe(200);
    expect(await sim.client.fineTuning.jobs.retrieve(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'simulated_failure' },
    });
  });

  it('pauses and resumes a running job, which then succeeds; estimated_finish is set while running', async () => {
    // A slower simulator so the test reliably sees the running phase.
    await withSimulator({ seed: 5, speed: 100 }, async (slow, c) => {
      const job = await c.fineTuning.jobs.create({
        model: 'gpt-4o-mini-2024-07-18',
        training_file: await uploadTrainingFile(c),
      });
      const running = await waitForJob(c, job.id, ['running']);
      expect(running.estimated_finish).toBeGreaterThanOrEqual(running.created_at);
      const paused = await c.fineTuning.jobs.pause(job.id);
      expect(paused.status).toBe('paused');
      await sleep(50);
      expect((await c.fineTuning.jobs.retrieve(job.id)).status).toBe('paused');
      expect(await c.fineTuning.jobs.pause(job.id).catch((e: unknown) => e)).toBeInstanceOf(
        OpenAI.BadRequestError,
      );
      expect((await c.fineTuning.jobs.resume(job.id)).status).toBe('running');
      const done = await waitForJob(c, job.id);
      expect(done.status).toBe('succeeded');
      expect(done.estimated_finish).toBeNull();
      const messages = (await c.fineTuning.jobs.listEvents(job.id, { limit: 100 })).data.map(
        (e) => e.message,
      );
      expect(messages).toContain('Fine-tuning job paused');
      expect(messages).toContain('Fine-tuning job resumed');
      const { failures } = loadConformanceChecker().check(slow.recorded);
      expect(failures).toEqual([]);
    });
  });

  it('every JSON body returned in this file conforms to the OpenAPI document', () => {
    const { checked, failures } = loadConformanceChecker().check(sim.recorded);
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });
});
