import {
  type EvaluationModels,
  type EvaluationRole,
  type Executor,
  type FineTuneRecord,
  getFineTune,
} from '@tuneline/db';
import {
  type ChatCompletionInput,
  type ChatCompletionResult,
  ProviderError,
  type ProviderKind,
  type ProviderProfile,
} from '@tuneline/provider';

/** What the evaluator calls a model through: a profile's chat (its kind tells Azure apart). */
export type EvaluatorProvider = Pick<ProviderProfile, 'chatCompletion'> & { readonly kind?: ProviderKind };

/** Several providers: the profile for a fine-tune's provider (null: the deployment default). */
export interface EvaluatorProviders {
  for(provider: string | null): EvaluatorProvider;
}

/** Where one role's model is asked: its provider's chat, under the name that provider serves it by. */
export interface EvaluationTarget {
  ask(input: ChatCompletionInput): Promise<ChatCompletionResult>;
  /** The name sent to the provider (an Azure deployment's name, else the model's own). */
  servedAs: string;
}

/**
 * Each role's model at its own provider (issue 20.4): the fine-tuned and base models at the fine-tune's
 * provider (null: the deployment default), the champion at the champion fine-tune's. A model deployed on
 * Azure is called by its deployment's name. An Azure fine-tuned model without a deployment is called by
 * its model name (what the simulator serves); when the provider answers 404, the error says it is not
 * deployed, as real Azure serves nothing undeployed. Throws ProviderNotConfiguredError when a role's
 * provider is not configured here.
 */
export async function evaluationTargets(
  deps: { db: Executor; provider: EvaluatorProvider; providers?: EvaluatorProviders },
  fineTune: FineTuneRecord,
  models: EvaluationModels,
  championFineTuneId: string | null,
): Promise<Partial<Record<EvaluationRole, EvaluationTarget>>> {
  const at = (provider: string | null) => (deps.providers ? deps.providers.for(provider) : deps.provider);
  const own = at(fineTune.provider);
  const targets: Partial<Record<EvaluationRole, EvaluationTarget>> = {
    fine_tuned: modelTarget(own, models.fine_tuned, fineTune.deploymentName, '; activating it deploys it'),
    base: modelTarget(own, models.base, null, ''),
  };
  if (models.champion) {
    const champion = championFineTuneId ? await getFineTune(deps.db, championFineTuneId) : undefined;
    targets.champion = modelTarget(
      at(champion ? champion.provider : fineTune.provider),
      models.champion,
      champion?.deploymentName ?? null,
      '',
    );
  }
  return targets;
}

function modelTarget(
  provider: EvaluatorProvider,
  model: string,
  deploymentName: string | null,
  hint: string,
): EvaluationTarget {
  const servedAs = deploymentName ?? model;
  const undeployedAzure = provider.kind === 'azure' && deploymentName === null;
  return {
    servedAs,
    ask: (input) =>
      provider.chatCompletion({ ...input, model: servedAs }).catch((err: unknown) => {
        if (undeployedAzure && err instanceof ProviderError && err.kind === 'not_found')
          throw new ProviderError(
            'not_found',
            `Azure model "${model}" is not deployed (Azure serves a model only through a deployment${hint}): ${err.message}`,
            { cause: err },
          );
        throw err;
      }),
  };
}
