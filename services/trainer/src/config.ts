import { providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema, pollMinIntervalConfig, reservationMarginConfig } from '@tuneline/runtime';
import type { z } from 'zod';

export const configSchema = baseConfigSchema
  .extend(providerEnvSchema.shape)
  .extend(pollMinIntervalConfig)
  /** The reservation is the fine-tune's credit estimate plus this percentage (overage stays rare). */
  .extend(reservationMarginConfig);
export type Config = z.infer<typeof configSchema>;
