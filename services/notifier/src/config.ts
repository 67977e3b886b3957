import { join } from 'node:path';
import { baseConfigSchema } from '@tuneline/runtime';
import { z } from 'zod';

const REPO_ROOT = join(import.meta.dirname, '../../..');

export const configSchema = baseConfigSchema.extend({
  /** smtp://user:pass@host:port (or smtps://). Unset: messages are written as .eml files instead. */
  SMTP_URL: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined))
    .pipe(z.url({ protocol: /^smtps?$/, message: 'must be an smtp:// or smtps:// URL' }).optional()),
  MAIL_FROM: z
    .string()
    .default('Tuneline <no-reply@tuneline.local>')
    .refine((v) => !/[\r\n]/.test(v), 'must not contain line breaks'),
  MAIL_OUTBOX_DIR: z
    .string()
    .min(1)
    .default(join(REPO_ROOT, '.tuneline', 'mail')),
  /** Where the hub is served (e.g. https://tuneline.example.com): e-mails link each fine-tune there. */
  PUBLIC_URL: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined))
    .pipe(z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).optional()),
  SMTP_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** SMTP connections kept open and reused (0: a new connection per message). */
  SMTP_MAX_CONNECTIONS: z.coerce.number().int().min(0).max(100).default(5),
  /** How often the lifecycle sweep records and sends due warnings (issue 21.3); 0 turns it off. */
  LIFECYCLE_SWEEP_INTERVAL_MS: z.coerce.number().int().min(0).default(3_600_000),
  /** JSON file merged over the built-in base model catalogue (its lifecycle dates). */
  MODEL_CATALOGUE_FILE: z.string().min(1).optional(),
});
export type Config = z.infer<typeof configSchema>;
