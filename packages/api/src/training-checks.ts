import type { Hyperparameters } from '@tuneline/contracts';
import {
  chooseTrainingProvider,
  findBaseModel,
  trainingClosed,
  trainingClosedMessage,
} from '@tuneline/dataset';
import { type DatasetRecord, findLicense } from '@tuneline/db';
import { creditShortfall, fineTuneEstimate, getBalance, insufficientCreditsMessage } from '@tuneline/ledger';
import { ProviderNotConfiguredError } from '@tuneline/provider';
import type { ApiDeps } from './app.ts';
import { HttpError } from './http.ts';

// What the API checks before it queues training (a fine-tune from a dataset, a request, a migration):
// the credits (402) and the provider and its dates (400), so a refusal comes at once, not from a worker.

/**
 * A fine-tune's own estimate on a dataset (its epochs, not necessarily the dataset's) at a price; null
 * when the dataset has none (the trainer then ends it with `no_estimate`).
 */
export function estimateOn(
  dataset: DatasetRecord,
  job: { hyperparameters: Hyperparameters; creditsPerMillionTokens: bigint },
): bigint | null {
  return (
    fineTuneEstimate(dataset, {
      hyperparameters: job.hyperparameters === 'auto' ? undefined : job.hyperparameters,
      creditsPerMillionTokens: job.creditsPerMillionTokens,
    })?.credits ?? null
  );
}

/**
 * Refuses (402) training estimated at `estimate` credits when that plus the trainer's margin does not fit
 * the license's available credits. Only an early answer: the trainer's reservation stays the authority
 * (credits may move in between).
 */
export async function refuseUnlessCredits(deps: ApiDeps, licenseId: string, estimate: bigint): Promise<void> {
  const short = creditShortfall(
    estimate,
    deps.reservationMarginPercent,
    await getBalance(deps.db, licenseId),
  );
  if (!short) return;
  throw new HttpError(402, insufficientCreditsMessage(short), undefined, undefined, {
    code: short.reason,
    credits: {
      estimate: short.estimate.toString(),
      marginPercent: short.marginPercent,
      required: short.required.toString(),
      available: short.available.toString(),
      shortfall: short.shortfall.toString(),
    },
  });
}

/** Refuses at once (402) a fine-tune on `dataset` the trainer would end `insufficient_credits`. */
export async function refuseWithoutCredits(
  deps: ApiDeps,
  licenseId: string,
  dataset: DatasetRecord,
  job: { hyperparameters: Hyperparameters; creditsPerMillionTokens: bigint },
): Promise<void> {
  const estimate = estimateOn(dataset, job);
  if (estimate !== null) await refuseUnlessCredits(deps, licenseId, estimate);
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
