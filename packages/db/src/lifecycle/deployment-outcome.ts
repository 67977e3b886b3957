import type { Executor } from '../connection.ts';
import { endDeployment, markDeploymentActive } from '../repositories/deployments.ts';
import { inTransaction } from '../repositories/outbox.ts';
import { migrationDeploymentEnded, migrationDeploymentServes } from './migration.ts';
import { versionDeploymentEnded, versionDeploymentServes } from './version-promotion.ts';

/**
 * The second half of deploy-then-promote (`deployForPromotion`): what waits for a deployment, a
 * migration's promotion or a training-profile version's, learns here that it serves or ended, in the
 * transaction that records it. The poller's deployment chain and sweep call these.
 */

/**
 * The provider serves a deployment (the poller): it becomes active with its fine-tune
 * (`markDeploymentActive`), and a promotion waiting for that model moves its aliases, in one transaction.
 * A repeated link finds the deployment active already and changes nothing.
 */
export function deploymentServes(db: Executor, id: string, now: Date) {
  return inTransaction(db, async (tx) => {
    const done = await markDeploymentActive(tx, id, now);
    if (done?.fineTune) {
      await migrationDeploymentServes(tx, done.fineTune);
      await versionDeploymentServes(tx, done.fineTune);
    }
    return done;
  });
}

/**
 * A deployment ends (`endDeployment`: failed, deleted, gone at the provider); a promotion still waiting
 * for that model to serve keeps the aliases where they are, in the same transaction.
 */
export function deploymentEnds(db: Executor, input: Parameters<typeof endDeployment>[1]) {
  return inTransaction(db, async (tx) => {
    const ended = await endDeployment(tx, input);
    if (ended) {
      const why = ended.reason ?? input.reason;
      await migrationDeploymentEnded(tx, ended.fineTuneId, why);
      await versionDeploymentEnded(tx, ended.fineTuneId, why);
    }
    return ended;
  });
}
