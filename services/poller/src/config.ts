import { providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema, pollMinIntervalConfig } from '@tuneline/runtime';
import { z } from 'zod';

const ms = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

export const configSchema = baseConfigSchema
  .extend(providerEnvSchema.shape)
  .extend(pollMinIntervalConfig)
  .extend({
    /**
     * The longest gap between two polls of one job (webhooks make most polls unnecessary). The shortest
     * (POLL_MIN_INTERVAL_MS: right after a change, or near the provider's estimated finish) is shared
     * with the trainer.
     */
    POLL_INTERVAL_MS: ms(20 * 60_000),
    POLL_FINISH_GRACE_MS: ms(5_000),
    /** A list snapshot younger than this answers scheduled polls without calling the provider again. */
    POLL_SWEEP_MAX_AGE_MS: ms(30_000),
    /** Pages of the provider's job list one sweep may read (100 jobs a page). */
    POLL_SWEEP_MAX_PAGES: z.coerce.number().int().min(1).default(20),
    /** Gap between two reads of a deployment that is provisioning (Azure: minutes in all). */
    DEPLOYMENT_POLL_INTERVAL_MS: ms(10_000),
    /** A deployment still provisioning after this long is deleted and failed. */
    DEPLOYMENT_TIMEOUT_MS: ms(3_600_000),
    /**
     * How often the deployment sweep runs: notices deployments the provider deleted (Azure, after 15
     * idle days) and charges started hosting hours; 0 turns it off.
     */
    DEPLOYMENT_SWEEP_INTERVAL_MS: ms(5 * 60_000),
    /** Port of the provider webhook endpoint (`POST /webhooks/provider`); unset: no endpoint. */
    WEBHOOK_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  });
export type Config = z.infer<typeof configSchema>;
