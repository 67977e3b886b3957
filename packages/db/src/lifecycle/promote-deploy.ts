import { azureDeploymentName, processClock } from '@tuneline/contracts';
import type { Executor } from '../connection.ts';
import { startDeployment } from '../repositories/deployments.ts';
import type { FineTuneRecord } from '../repositories/fine-tunes.ts';

/**
 * Deploy, then promote: the one way a promotion (a migration's, a training-profile version's by the
 * policy or by hand) reaches a model its provider serves only once deployed (Azure). The promotion
 * starts the model's deployment (or finds it) here; its alias moves when the poller finds the
 * deployment serving (`deploymentServes`), and not at all when it ends first (`deploymentEnds`).
 */

/** Where a model serves only once deployed, and at what fee; null: its provider serves it at once. */
export type PromotionHosting = { provider: string; creditsPerHour: bigint } | null;

export type PromotionDeployment =
  /** Nothing to wait for (served at once, or already deployed and active): promote now. */
  | { state: 'serving' }
  /** Its deployment is under way (started now, or already): promote when it serves. */
  | { state: 'deploying'; note: string }
  /** No deployment could start (its deletion is under way, or the model is unavailable). */
  | { state: 'refused'; why: string };

/**
 * Starts (or reuses: one deployment however often) the deployment a promotion of `fineTune` needs,
 * in the caller's transaction. `note` says so in a decision's reason.
 */
export async function deployForPromotion(
  tx: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'licenseId' | 'active'>,
  hosting: PromotionHosting,
): Promise<PromotionDeployment> {
  if (!hosting || fineTune.active) return { state: 'serving' };
  const started = await startDeployment(tx, {
    fineTuneId: fineTune.id,
    licenseId: fineTune.licenseId,
    provider: hosting.provider,
    name: azureDeploymentName(fineTune.id),
    creditsPerHour: hosting.creditsPerHour,
    now: processClock().now(),
  });
  if (started.outcome === 'existing' && started.deployment.state === 'active') return { state: 'serving' };
  if (started.outcome === 'started' || started.outcome === 'existing')
    return {
      state: 'deploying',
      note: `deploying the new model at ${hosting.provider} (${hosting.creditsPerHour} credits per started hour)`,
    };
  return { state: 'refused', why: started.outcome };
}
