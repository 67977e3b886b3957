import type { Hyperparameters } from '@tuneline/contracts';
import {
  chooseTrainingProvider,
  estimateEvaluation,
  findBaseModel,
  trainingClosed,
  trainingClosedMessage,
  trainingPriceAt,
} from '@tuneline/dataset';
import {
  checkJobOptions,
  createFineTune,
  type DatasetRecord,
  findLicense,
  findOpenDeadLettersBySubject,
  getFineTune,
  inTransaction,
  pageDatasets,
  requestedFineTuneId,
  requestUpload,
} from '@tuneline/db';
import { creditShortfall, fineTuneEstimate, getBalance, insufficientCreditsMessage } from '@tuneline/ledger';
import { ProviderNotConfiguredError } from '@tuneline/provider';
import type { ApiDeps } from '../app.ts';
import { HttpError, type RouteTable } from '../http.ts';
import { DATASET_STATUSES, listQuerySchema, pageRequest, pageView } from '../listing.ts';
import { ownDataset } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import {
  acceptedSchema,
  apiFineTuneRequestSchema,
  createFineTuneBodySchema,
  datasetListSchema,
  datasetSchema,
  fineTuneSchema,
  idParams,
} from '../schemas.ts';
import { datasetView, fineTuneView } from '../views.ts';

const E400 = 'invalid request; `fields` names each bad field';
const E404 = 'no such dataset for this license';
const datasetListQuery = listQuerySchema(DATASET_STATUSES);
const E409 = 'the dataset is not in a state that allows this';

/**
 * Refuses at once (402) a fine-tune the trainer would end `insufficient_credits`: its own estimate
 * (its epochs, not necessarily the dataset's) plus the held-out evaluation's (the testing examples, capped
 * by its `evaluation.maxExamples`, × the compared models; none with `evaluate: false` or no testing
 * file), plus the margin, against the available credits: what the trainer reserves. Only an early
 * answer: the trainer's reservation stays the authority (credits may move in between).
 */
async function refuseWithoutCredits(
  deps: ApiDeps,
  licenseId: string,
  dataset: DatasetRecord,
  job: {
    hyperparameters: Hyperparameters;
    creditsPerMillionTokens: bigint;
    /** The request's evaluation options (defaults: evaluate, at most 200 examples). */
    evaluation: { evaluate: boolean; maxExamples: number } | undefined;
  },
): Promise<void> {
  const estimate = fineTuneEstimate(dataset, {
    hyperparameters: job.hyperparameters === 'auto' ? undefined : job.hyperparameters,
    creditsPerMillionTokens: job.creditsPerMillionTokens,
  });
  if (!estimate) return; // no estimate: the trainer ends it with `no_estimate`
  const evaluation = estimateEvaluation({
    baseModel: dataset.baseModel,
    testExamples: dataset.testExamples,
    testTokens: dataset.testTokens,
    ...job.evaluation,
  });
  await refuseUnlessCredits(deps, licenseId, { training: estimate.credits, evaluation });
}

/** What a credit check weighs: the training estimate and the held-out evaluation's. */
export interface CreditNeed {
  training: bigint;
  evaluation: { credits: bigint; examples: number; models: number };
}

/**
 * Refuses (402) training and evaluation estimated at `need` when that plus the trainer's margin does not
 * fit the license's available credits (the fine-tunes route, and a migration: issue 21.4).
 */
export async function refuseUnlessCredits(deps: ApiDeps, licenseId: string, need: CreditNeed): Promise<void> {
  const { training, evaluation } = need;
  const short = creditShortfall(
    { training, evaluation: evaluation.credits },
    deps.reservationMarginPercent,
    await getBalance(deps.db, licenseId),
  );
  if (!short) return;
  throw new HttpError(402, insufficientCreditsMessage(short), undefined, undefined, {
    code: short.reason,
    credits: {
      estimate: short.estimate.toString(),
      training: training.toString(),
      evaluation: evaluation.credits.toString(),
      evaluationExamples: evaluation.examples,
      evaluationModels: evaluation.models,
      marginPercent: short.marginPercent,
      required: short.required.toString(),
      available: short.available.toString(),
      shortfall: short.shortfall.toString(),
    },
  });
}

export function registerDatasetRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'requests').add(
    {
      method: 'POST',
      url: '/v1/fine-tune-requests',
      summary:
        'Enqueue a fine-tune request (same schema as the queue). The same requestId with the same content is the same request.',
      body: apiFineTuneRequestSchema,
      responses: {
        202: { description: 'queued (or already queued: `duplicate`)', schema: acceptedSchema },
        400: E400,
        409: 'requestId already used with different content',
      },
    },
    async ({ licenseId, body }) => {
      if (body.licenseId !== undefined && body.licenseId !== licenseId) {
        throw new HttpError(400, 'licenseId: must be your own license (or omitted)', [
          { field: 'licenseId', message: 'must be your own license (or omitted)' },
        ]);
      }
      await checkProviderAndDates(deps, licenseId, body);
      const result = await deps.producer.enqueue({ ...body, licenseId });
      if (!result.ok)
        throw new HttpError(
          result.errors.some((e) => e.field === 'requestId') ? 409 : 400,
          result.message,
          result.errors,
        );
      return { jobId: result.jobId, correlationId: result.correlationId, duplicate: result.duplicate };
    },
  );

  const routes = routeGroup(table, 'license', 'datasets');
  routes.add(
    {
      method: 'GET',
      url: '/v1/datasets',
      summary:
        'The datasets grid: counts, tokens, estimated billed tokens and credits, file ids, status. Newest first, paged by cursor, filtered by status, base model, creation time or requestId',
      query: datasetListQuery,
      responses: {
        200: { description: 'one page, newest first', schema: datasetListSchema },
        400: 'a bad parameter, named in `fields`',
      },
    },
    async ({ licenseId, query }) =>
      pageView(await pageDatasets(deps.db, licenseId, pageRequest(query)), (r) =>
        datasetView(r, r.deadLetter, deps.catalogue),
      ),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/datasets/:id',
      summary: 'One dataset',
      params: idParams,
      responses: {
        200: { description: 'the dataset', schema: datasetSchema },
        400: E400,
        404: E404,
      },
    },
    async ({ licenseId, params }) => {
      const dataset = await ownDataset(deps, licenseId, params.id);
      const dead = await findOpenDeadLettersBySubject(deps.db, [dataset.id]);
      return datasetView(dataset, dead.get(dataset.id), deps.catalogue);
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/datasets/:id/upload',
      summary: 'Upload the training and testing files to the provider (queued; asking twice is harmless)',
      params: idParams,
      responses: {
        202: { description: 'upload queued, running or done', schema: datasetSchema },
        400: E400,
        404: E404,
        409: E409,
      },
    },
    async ({ licenseId, params }) => {
      const dataset = await ownDataset(deps, licenseId, params.id);
      if (dataset.status === 'ready') {
        if (await requestUpload(deps.db, dataset)) await deps.flushOutbox();
      } else if (!['uploading', 'uploaded'].includes(dataset.status)) {
        throw new HttpError(409, `dataset is ${dataset.status}: only a ready dataset can be uploaded`);
      }
      return datasetView(await ownDataset(deps, licenseId, params.id), undefined, deps.catalogue);
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/datasets/:id/fine-tunes',
      summary:
        "Create a fine-tune job from an uploaded dataset. Its own estimate (its epochs, plus the held-out evaluation's when the dataset has a testing file and `evaluate` is not false) plus the trainer's margin must fit the available credits, or 402; the trainer reserves them before the provider job is created",
      params: idParams,
      body: createFineTuneBodySchema,
      responses: {
        201: { description: 'created (200 when the idempotencyKey was seen before)', schema: fineTuneSchema },
        400: E400,
        402: 'not enough credits for the estimate (training plus evaluation) plus margin (or an unpaid overage blocks the license); `credits` gives the amounts',
        404: E404,
        409: E409,
      },
    },
    async ({ licenseId, params, body, reply }) => {
      const dataset = await ownDataset(deps, licenseId, params.id);
      const { idempotencyKey, ...jobOptions } = body;
      const id = idempotencyKey ? requestedFineTuneId(dataset.id, idempotencyKey) : undefined;
      if (id) {
        const existing = await getFineTune(deps.db, id);
        if (existing) {
          reply.code(200);
          return fineTuneView(existing, undefined, deps.catalogue);
        }
      }
      if (dataset.status !== 'uploaded') {
        throw new HttpError(
          409,
          `dataset is ${dataset.status}: upload it first (POST /v1/datasets/{id}/upload)`,
        );
      }
      const checked = checkJobOptions(jobOptions);
      if (!checked.ok) throw new HttpError(400, checked.message);
      const base = findBaseModel(dataset.baseModel, deps.catalogue);
      if (!base) throw new HttpError(409, `base model "${dataset.baseModel}" is not in the catalogue`);
      // Past trainingClosesAt at the dataset's provider (the one clock), no new job there: refuse at once.
      if (trainingClosed(base, dataset.provider, deps.clock.now()))
        throw new HttpError(409, trainingClosedMessage(base, dataset.provider));
      await refuseWithoutCredits(deps, licenseId, dataset, {
        hyperparameters: checked.options.hyperparameters,
        creditsPerMillionTokens: base.creditsPerMillionTrainingTokens,
        evaluation: checked.options.evaluation,
      });
      const { fineTune, created } = await inTransaction(deps.db, (tx) =>
        createFineTune(tx, dataset, {
          ...(id ? { id } : {}),
          options: checked.options,
          creditsPerMillionTokens:
            trainingPriceAt(base, dataset.provider) ?? base.creditsPerMillionTrainingTokens,
        }),
      );
      if (created) await deps.flushOutbox();
      reply.code(created ? 201 : 200);
      return fineTuneView(fineTune, undefined, deps.catalogue);
    },
  );
}

/**
 * A request whose provider (its own, else its license's, else its model's) cannot train its model, takes
 * no new jobs on it any more (past that provider's `trainingClosesAt`, by the one clock), or is not
 * configured in this deployment, fails here at once with the reason, not later in a worker.
 */
export async function checkProviderAndDates(
  deps: ApiDeps,
  licenseId: string,
  body: { baseModel?: unknown; provider?: string | undefined },
): Promise<void> {
  const base = typeof body.baseModel === 'string' ? findBaseModel(body.baseModel, deps.catalogue) : undefined;
  if (!base) return; // the builder reports an unknown model on the dataset
  const license = await findLicense(deps.db, licenseId);
  const choice = chooseTrainingProvider(base, { request: body.provider, license: license?.provider });
  if ('error' in choice)
    throw new HttpError(400, `provider: ${choice.error}`, [{ field: 'provider', message: choice.error }]);
  if (trainingClosed(base, choice.provider, deps.clock.now())) {
    const message = trainingClosedMessage(base, choice.provider);
    throw new HttpError(400, `baseModel: ${message}`, [{ field: 'baseModel', message }]);
  }
  if (choice.provider && deps.providers && !deps.providers.includes(choice.provider)) {
    const message = new ProviderNotConfiguredError(choice.provider).message;
    throw new HttpError(400, `provider: ${message}`, [{ field: 'provider', message }]);
  }
}
