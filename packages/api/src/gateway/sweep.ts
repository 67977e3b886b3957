import {
  advanceHoldSweep,
  type Executor,
  expireHold,
  findExpiredHolds,
  forgetIdempotencyKeys,
} from '@tuneline/db';
import type { FastifyBaseLogger } from 'fastify';
import type { ApiMetrics } from './metrics.ts';
import type { GatewaySettings } from './settings.ts';

/**
 * The gateway's sweep (issue 19, after the benchmark), run by every API process every
 * `sweepIntervalMs`:
 *
 * 1. **Expired holds.** A hold neither settled nor released `holdExpiryMs` after it was taken (its
 *    API process died between hold and settle, or lost its usage) is released: `release-<callId>`,
 *    memo "hold expired", recorded in `inference_expired_holds`. Exactly once: the release is the
 *    hold's one resolution, so a settle, a release or another process's sweep racing it leaves one.
 *    Should the call's usage still arrive afterwards (a deferred settlement applied late), it is
 *    charged directly (migration 0055): expiry gives credits back early, it never drops a charge.
 * 2. **Old Idempotency-Keys.** Keys claimed more than `idempotencyRetentionMs` ago are forgotten (a
 *    retry after that is a new call), except one whose call still holds credits.
 *
 * The cutoffs come from this process's system clock, the hold times from the database's: the bound
 * (an hour by default, at least a minute) dwarfs any skew between the two.
 */

export interface SweepResult {
  expiredHolds: number;
  forgottenKeys: number;
}

const BATCH = 1_000;

export async function sweepGateway(
  db: Executor,
  settings: Pick<GatewaySettings, 'holdExpiryMs' | 'idempotencyRetentionMs'>,
  now: Date = new Date(),
): Promise<SweepResult> {
  let expiredHolds = 0;
  const holdCutoff = new Date(now.getTime() - settings.holdExpiryMs);
  const afterSeconds = Math.round(settings.holdExpiryMs / 1_000);
  for (;;) {
    const found = await findExpiredHolds(db, { cutoff: holdCutoff, limit: BATCH });
    for (const callId of found.calls) {
      if ((await expireHold(db, callId, afterSeconds)) === 'released') expiredHolds++;
    }
    // The mark moves only once every hold up to it is resolved: a sweep that dies on the way leaves
    // the rest to the next one.
    if (found.through !== null) await advanceHoldSweep(db, found.through);
    if (!found.more) break;
  }
  let forgottenKeys = 0;
  const keyCutoff = new Date(now.getTime() - settings.idempotencyRetentionMs);
  for (;;) {
    const deleted = await forgetIdempotencyKeys(db, { cutoff: keyCutoff, limit: BATCH });
    forgottenKeys += deleted;
    if (deleted < BATCH) break;
  }
  return { expiredHolds, forgottenKeys };
}

/** Runs `sweepGateway` every `sweepIntervalMs` (not at all when 0), one sweep at a time. */
export class GatewaySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Executor,
    private readonly settings: GatewaySettings,
    private readonly log?: FastifyBaseLogger,
    private readonly metrics?: ApiMetrics,
  ) {}

  start(): void {
    if (this.settings.sweepIntervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.runOnce().finally(() => (this.running = undefined));
    }, this.settings.sweepIntervalMs);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    try {
      const result = await sweepGateway(this.db, this.settings);
      this.metrics?.expiredHolds.inc(result.expiredHolds);
      if (result.expiredHolds > 0)
        this.log?.warn(
          { expiredHolds: result.expiredHolds },
          'released inference holds nobody settled within the expiry bound',
        );
      if (result.forgottenKeys > 0)
        this.log?.info({ forgottenKeys: result.forgottenKeys }, 'forgot old Idempotency-Keys');
    } catch (err) {
      this.log?.warn({ err }, 'gateway sweep failed; the next one retries');
    }
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
