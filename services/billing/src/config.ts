import { baseConfigSchema } from '@tuneline/runtime';
import type { z } from 'zod';

/** Billing needs only the settings every worker shares. */
export const configSchema = baseConfigSchema;
export type Config = z.infer<typeof configSchema>;
