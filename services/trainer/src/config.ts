import { providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema, pollMinIntervalConfig } from '@tuneline/runtime';
import { z } from 'zod';

export const configSchema = baseConfigSchema
  .extend(providerEnvSchema.shape)
  .extend(pollMinIntervalConfig)
  .extend({
    /** The reservation is the dataset's credit estimate plus this percentage (overage stays rare). */
    RESERVATION_MARGIN_PERCENT: z.coerce.number().min(0).max(1_000).default(10),
  });
export type Config = z.infer<typeof configSchema>;
