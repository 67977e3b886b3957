import { billingSettleMessage } from '@tuneline/contracts';
import {
  afterSettlement,
  type Executor,
  type FineTuneStatus,
  inTransaction,
  isTerminalStatus,
  listFineTunesAwaitingSettlement,
  lockFineTune,
  recordSettlement,
} from '@tuneline/db';
import {
  creditsForTokens,
  findReservation,
  LedgerConflictError,
  LedgerNotFoundError,
  postReservation,
  voidReservation,
} from '@tuneline/ledger';
import { defineStage, PermanentError, type StageDeps } from '@tuneline/runtime';

export interface BillingDeps extends StageDeps {
  /** Told of each settlement this worker committed (the credits-charged metric). */
  onSettled?(status: FineTuneStatus, charged: bigint): void;
}

export type SettleOutcome =
  | { settled: false; reason: 'already_settled' }
  | {
      settled: true;
      status: FineTuneStatus;
      charged: bigint;
      released: bigint;
      /** Kept held until the evaluation is charged (the reservation's unused part), else 0. */
      heldForEvaluation: bigint;
      /** Outcome notifications queued now (none while an evaluation runs first). */
      notifications: number;
      /** An evaluation of the testing file was queued; its end queues the notifications. */
      evaluation: boolean;
    };

/**
 * Settles one finished fine-tune in ONE transaction, under the fine-tune's row lock: the ledger entry
 * (post the charge for the trained tokens, or void the reservation; when an evaluation follows, the
 * reservation's unused part is held for it rather than released), the row (credits_charged,
 * settled_at, available) and what follows it (lifecycle `afterSettlement`): the evaluation run with its
 * `evaluate` message, or the outcome notifications with their outbox messages. `settled_at` makes a
 * second run (redelivery, two workers, a crash between commit and acknowledgement) a no-op, and the
 * ledger's deterministic transfer ids would refuse a second charge even without it.
 */
export async function settleFineTune(tx: Executor, fineTuneId: string): Promise<SettleOutcome> {
  const ft = await lockFineTune(tx, fineTuneId);
  if (!ft) throw new PermanentError(`fine-tune ${fineTuneId} does not exist`);
  if (ft.settledAt) return { settled: false, reason: 'already_settled' };
  // The poller commits the terminal status with this message, so this only happens on a stray message.
  if (!isTerminalStatus(ft.status))
    throw new PermanentError(`fine-tune ${fineTuneId} is not finished (${ft.status})`);

  const tokens = ft.trainedTokens;
  const price = ft.creditsPerMillionTokens;
  const reservation = await findReservation(tx, ft.id);
  // What the ledger will do: succeeded → post the trained tokens; failed / cancelled → post what the
  // provider says it trained, if anything, else void; anything else with a reservation → void.
  let plan: { op: 'post'; amount: bigint; tokens: bigint } | { op: 'void' } | { op: 'none' };
  if (ft.status === 'succeeded') {
    if (tokens === null) throw new PermanentError(`fine-tune ${ft.id} succeeded without trained_tokens`);
    if (!reservation) throw new PermanentError(`fine-tune ${ft.id} succeeded without a credit reservation`);
    plan = { op: 'post', amount: creditsForTokens(tokens, price), tokens };
  } else if (!reservation) {
    plan = { op: 'none' };
  } else if (tokens !== null && tokens > 0n && ft.status !== 'insufficient_credits') {
    plan = { op: 'post', amount: creditsForTokens(tokens, price), tokens };
  } else {
    plan = { op: 'void' };
  }
  const charged = plan.op === 'post' ? plan.amount : 0n;

  await recordSettlement(tx, ft.id, { charged, available: ft.status === 'succeeded' });
  // Then what follows (lifecycle): the evaluation when there is a testing file, else the e-mails.
  const { notifications, evaluation } = await afterSettlement(tx, ft);

  // The ledger goes last: its UPDATE locks the license's account row until commit, and a license
  // with many fine-tunes settling at once should wait on that lock for as short a time as possible.
  let released = 0n;
  let heldForEvaluation = 0n;
  try {
    if (plan.op === 'post') {
      // The evaluation that runs next is paid from the reservation: its unused part stays held until
      // the evaluation is charged (the evaluator's end releases what is left), not released now.
      const result = await postReservation(tx, {
        fineTuneId: ft.id,
        amount: plan.amount,
        tokens: plan.tokens,
        model: ft.baseModel,
        holdRestForEvaluation: evaluation,
      });
      released = result.released;
      heldForEvaluation = result.heldForEvaluation ?? 0n;
    } else if (plan.op === 'void') {
      released = (await voidReservation(tx, { fineTuneId: ft.id })).released;
    }
  } catch (err) {
    // The ledger holds something else for this fine-tune: retrying cannot change that.
    if (err instanceof LedgerConflictError || err instanceof LedgerNotFoundError) {
      throw new PermanentError(`ledger refused settlement of ${ft.id}: ${err.message}`);
    }
    throw err;
  }
  return {
    settled: true,
    status: ft.status,
    charged,
    released,
    heldForEvaluation,
    notifications,
    evaluation,
  };
}

/** Stage 5: consumes `billing-settle`. */
export const billingStage = defineStage<'billing-settle', BillingDeps>({
  queue: 'billing-settle',
  async handle(message, ctx, deps) {
    const outcome = await inTransaction(deps.db, (tx) => settleFineTune(tx, message.fineTuneId));
    if (!outcome.settled) {
      ctx.log.info({ fineTuneId: message.fineTuneId }, 'already settled: nothing to do');
      return;
    }
    deps.onSettled?.(outcome.status, outcome.charged);
    ctx.log.info(
      {
        fineTuneId: message.fineTuneId,
        status: outcome.status,
        charged: outcome.charged.toString(),
        released: outcome.released.toString(),
        heldForEvaluation: outcome.heldForEvaluation.toString(),
        notifications: outcome.notifications,
        evaluation: outcome.evaluation,
      },
      'fine-tune settled',
    );
  },
  /** Finished fine-tunes not settled yet (their message may have been lost with Redis). */
  async recover(deps) {
    const rows = await listFineTunesAwaitingSettlement(deps.db);
    return rows.map((f) => billingSettleMessage({ fineTuneId: f.id, correlationId: f.correlationId }));
  },
});

export { inferenceUsageStage } from './inference-usage.ts';
