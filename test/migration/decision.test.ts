import { randomUUID } from 'node:crypto';
import {
  fineTuneRequestMessage,
  fineTuneRequestMessageSchema,
  fineTuneRequestSchema,
} from '@tuneline/contracts';
import { handleFineTuneRequest } from '@tuneline/dataset-builder';
import {
  type Db,
  deploymentEnds,
  deploymentServes,
  endFineTune,
  findAlias,
  findLiveDeployment,
  findMigration,
  insertMigration,
  inTransaction,
  type MigrationRule,
  migrationRequestId,
  pointAlias,
} from '@tuneline/db';
import { createLogger } from '@tuneline/runtime';
import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { request } from '../api/support.ts';
import { builderDeps } from '../retrain/support.ts';
import { it } from '../support/fixtures.ts';
import { newFineTune, outcome } from './support.ts';

// How a migration ends (packages/db/src/lifecycle/migration.ts), without the pipeline: where its new
// fine-tune's outcome becomes known, once, whichever way it ends. The trained-and-evaluated path runs
// end to end in pipeline.test.ts.

const log = createLogger('test', 'silent');

/** An active old model behind the alias `invoices`, and a migration from it with the given rule. */
async function migrationFrom(
  db: Db,
  licenseId: string,
  promote: MigrationRule,
  hostingCreditsPerHour: bigint | null = null,
) {
  const oldId = await makeFineTune(db, licenseId, await makeDataset(db, licenseId, 'uploaded'), {
    active: true,
  });
  await pointAlias(db, { licenseId, name: 'invoices', fineTuneId: oldId, actor: 'key:test' });
  const id = randomUUID();
  await inTransaction(db, (tx) =>
    insertMigration(tx, {
      id,
      licenseId,
      fromFineTuneId: oldId,
      championFineTuneId: oldId,
      provider: 'azure',
      baseModel: 'gpt-4o-mini-2024-07-18',
      hyperparameters: 'auto',
      promote,
      hostingCreditsPerHour,
      idempotencyKey: null,
      actor: 'key:test',
    }),
  );
  return { id, oldId };
}

describe('how a migration ends', () => {
  it('without an evaluation: `always` moves the aliases once, `if-not-worse` keeps them and says why', async ({
    db,
  }) => {
    const license = await makeLicense(db, 'lic-decide');
    const always = await migrationFrom(db, license.id, 'always');
    const trained = await newFineTune(db, license.id, always.id, 'succeeded');
    await outcome(db, trained);
    await outcome(db, trained); // a second outcome (a re-run) decides nothing more
    const m = await findMigration(db, license.id, always.id);
    expect(m).toMatchObject({
      status: 'succeeded',
      decision: 'promoted',
      aliases: [{ name: 'invoices', fromFineTuneId: always.oldId, toFineTuneId: trained.id }],
    });
    expect(m?.reason).toBe(
      'promoted (always): not evaluated: no evaluation ran: the dataset has no testing file',
    );
    const alias = await findAlias(db, license.id, 'invoices');
    expect(alias?.fineTuneId).toBe(trained.id);
    expect(alias?.history.filter((h) => h.actor === `migration:${always.id}`)).toHaveLength(1);

    const license2 = await makeLicense(db, 'lic-decide-2');
    const cautious = await migrationFrom(db, license2.id, 'if-not-worse');
    const unevaluated = await newFineTune(db, license2.id, cautious.id, 'succeeded');
    await outcome(db, unevaluated);
    expect(await findMigration(db, license2.id, cautious.id)).toMatchObject({
      status: 'succeeded',
      decision: 'kept',
      reason:
        'not promoted (if-not-worse): the new model was not evaluated (no evaluation ran: the dataset has no testing file)',
      aliases: [],
    });
    expect((await findAlias(db, license2.id, 'invoices'))?.fineTuneId).toBe(cautious.oldId);
  });

  it('a new fine-tune that fails ends the migration failed; the aliases stay', async ({ db }) => {
    const license = await makeLicense(db, 'lic-fail');
    const { id, oldId } = await migrationFrom(db, license.id, 'always');
    const running = await newFineTune(db, license.id, id, 'running');
    await inTransaction(db, (tx) =>
      endFineTune(tx, running.id, {
        by: 'provider',
        status: 'failed',
        errorCode: 'invalid_training_file',
        errorMessage: 'the provider refused the file',
      }),
    );
    // The provider's ending goes through billing; the outcome is known once it is settled.
    await db.updateTable('fine_tunes').set({ settled_at: new Date() }).where('id', '=', running.id).execute();
    await outcome(db, { ...running, status: 'failed' });
    expect(await findMigration(db, license.id, id)).toMatchObject({
      status: 'failed',
      decision: null,
      reason:
        'the new fine-tune ended failed: the provider refused the file; the old model and its aliases are unchanged',
    });
    expect((await findAlias(db, license.id, 'invoices'))?.fineTuneId).toBe(oldId);
  });

  it('to a provider that serves only deployed models: deploys the new model, moves the aliases when it serves', async ({
    db,
  }) => {
    const license = await makeLicense(db, 'lic-deploy');
    const { id, oldId } = await migrationFrom(db, license.id, 'always', 1_700n);
    const trained = await newFineTune(db, license.id, id, 'succeeded');
    await outcome(db, trained);
    const deploying = await findMigration(db, license.id, id);
    expect(deploying).toMatchObject({ status: 'deploying', decision: 'promoted', aliases: [] });
    expect(deploying?.reason).toMatch(
      /deploying the new model at azure \(1700 credits per started hour\): the aliases move when it serves$/,
    );
    const deployment = await findLiveDeployment(db, trained.id);
    expect(deployment).toMatchObject({
      state: 'deploying',
      name: `tl-${trained.id}`,
      creditsPerHour: 1_700n,
    });
    expect((await findAlias(db, license.id, 'invoices'))?.fineTuneId).toBe(oldId);
    await outcome(db, trained); // a second outcome deploys nothing more
    expect((await db.selectFrom('model_deployments').select('id').execute()).length).toBe(1);

    // The poller finds it serving: the model is active under its deployment's name, the alias moves.
    await deploymentServes(db, deployment?.id ?? '', new Date());
    await deploymentServes(db, deployment?.id ?? '', new Date()); // a repeated link changes nothing
    const served = await findMigration(db, license.id, id);
    expect(served).toMatchObject({
      status: 'succeeded',
      decision: 'promoted',
      aliases: [{ name: 'invoices', fromFineTuneId: oldId, toFineTuneId: trained.id }],
    });
    expect(served?.reason).toMatch(/: it serves$/);
    const alias = await findAlias(db, license.id, 'invoices');
    expect(alias?.fineTuneId).toBe(trained.id);
    expect(alias?.history.filter((h) => h.actor === `migration:${id}`)).toHaveLength(1);

    // Another whose deployment fails before serving: the aliases stay, and it says why.
    const other = await makeLicense(db, 'lic-deploy-fails');
    const failing = await migrationFrom(db, other.id, 'always', 1_700n);
    const second = await newFineTune(db, other.id, failing.id, 'succeeded');
    await outcome(db, second);
    const started = await findLiveDeployment(db, second.id);
    await deploymentEnds(db, {
      id: started?.id ?? '',
      from: ['deploying'],
      state: 'failed',
      reason: 'quota exceeded',
      now: new Date(),
    });
    expect(await findMigration(db, other.id, failing.id)).toMatchObject({
      status: 'succeeded',
      decision: 'kept',
      reason:
        "not promoted: the new model's deployment ended before it served (quota exceeded); the aliases stay on the old model",
    });
    expect((await findAlias(db, other.id, 'invoices'))?.fineTuneId).toBe(failing.oldId);
  });

  it("a migration whose dataset cannot be built for the target ends failed with the builder's reason", async ({
    db,
  }) => {
    const license = await makeLicense(db, 'lic-reject');
    const { id } = await migrationFrom(db, license.id, 'if-not-worse');
    const builder = builderDeps(db);
    try {
      // Half of 12 documents held out leaves 6 training examples: too few, the build is invalid.
      const input = fineTuneRequestSchema.parse({
        ...request(migrationRequestId(id)),
        licenseId: license.id,
        testPercent: 50,
        provider: 'azure',
      });
      const message = fineTuneRequestMessageSchema.parse(
        fineTuneRequestMessage({ request: input, correlationId: 'c' }).payload,
      );
      await expect(handleFineTuneRequest(message, { log }, builder.deps)).rejects.toThrow(/invalid dataset/);
      const m = await findMigration(db, license.id, id);
      expect(m?.status).toBe('failed');
      expect(m?.reason).toMatch(
        /^the dataset for the target could not be built \(invalid dataset: the training file would hold 6 examples/,
      );
      expect(m?.progress.requestStatus).toBe('rejected');
    } finally {
      builder.cleanup();
    }
  });
});
