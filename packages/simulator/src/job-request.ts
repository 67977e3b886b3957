// Parsing of a create-fine-tuning-job request: each parameter's type and limits, with OpenAI's
// messages, in OpenAI's order of checks. What needs the state (does the model exist, is the file
// usable) is asked of the service through lookups, so this file holds no state and the lifecycle
// (jobs.ts) no request parsing.
import { badRequest } from './errors.ts';
import type { RequestedHyperparameters } from './hyperparameters.ts';
import type { BaseModel } from './models.ts';
import type { SimFile } from './state.ts';

export interface CreateJobBody {
  model?: unknown;
  training_file?: unknown;
  validation_file?: unknown;
  suffix?: unknown;
  seed?: unknown;
  metadata?: unknown;
  hyperparameters?: unknown;
  method?: unknown;
  integrations?: unknown;
}

/** A create request whose parameters all passed their checks. */
export interface CreateJobRequest {
  model: string;
  base: BaseModel;
  training: SimFile;
  validation: SimFile | null;
  suffix: string | null;
  metadata: Record<string, string> | null;
  requested: RequestedHyperparameters;
  /** The caller's seed, when given. */
  seed: number | undefined;
}

/** The checks of a create request that need the state. Each throws the API error when it fails. */
export interface CreateJobLookups {
  /** The base model a job on `model` trains: `model` itself, or the base of a fine-tuned model. */
  baseModel(model: string): BaseModel;
  /** A file a job may train on (it exists, its purpose is fine-tune, it is processed). */
  usableFile(id: string, param: 'training_file' | 'validation_file'): SimFile;
}

export function parseCreateJob(body: CreateJobBody, lookups: CreateJobLookups): CreateJobRequest {
  if (typeof body.model !== 'string' || !body.model)
    throw badRequest("Missing required parameter: 'model'.", 'model');
  const base = lookups.baseModel(body.model);
  const training = fileParameter(body.training_file, 'training_file', lookups);
  const validation =
    body.validation_file == null ? null : fileParameter(body.validation_file, 'validation_file', lookups);
  const suffix = parseSuffix(body.suffix);
  const metadata = parseMetadata(body.metadata);
  const requested = parseHyperparameters(body);
  if (body.seed !== undefined && body.seed !== null && !Number.isInteger(body.seed)) {
    throw badRequest("Invalid type for 'seed': expected an integer.", 'seed', 'invalid_type');
  }
  const seed = typeof body.seed === 'number' ? body.seed : undefined;
  return { model: body.model, base, training, validation, suffix, metadata, requested, seed };
}

function fileParameter(
  raw: unknown,
  param: 'training_file' | 'validation_file',
  lookups: CreateJobLookups,
): SimFile {
  if (typeof raw !== 'string' || !raw) throw badRequest(`Missing required parameter: '${param}'.`, param);
  return lookups.usableFile(raw, param);
}

/** OpenAI's suffix rules: up to 64 letters, digits, '-' and '_'. */
export function parseSuffix(raw: unknown): string | null {
  if (raw == null || raw === '') return null;
  if (typeof raw !== 'string')
    throw badRequest("Invalid type for 'suffix': expected a string.", 'suffix', 'invalid_type');
  if (raw.length > 64)
    throw badRequest(
      `Invalid 'suffix': string too long. Expected a maximum length of 64, but got ${raw.length}.`,
      'suffix',
      'string_above_max_length',
    );
  if (!/^[A-Za-z0-9_-]+$/.test(raw))
    throw badRequest(
      "Invalid 'suffix': only letters, digits, '-' and '_' are allowed.",
      'suffix',
      'invalid_value',
    );
  return raw;
}

/** OpenAI's metadata limits: at most 16 pairs, keys ≤ 64 characters, string values ≤ 512 characters. */
export function parseMetadata(raw: unknown): Record<string, string> | null {
  if (raw == null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw badRequest("Invalid type for 'metadata': expected an object.", 'metadata', 'invalid_type');
  const entries = Object.entries(raw);
  if (entries.length > 16)
    throw badRequest(
      `Invalid 'metadata': too many properties. Expected at most 16, got ${entries.length}.`,
      'metadata',
      'object_above_max_properties',
    );
  for (const [k, v] of entries) {
    if (k.length > 64)
      throw badRequest(
        `Invalid 'metadata': key '${k.slice(0, 20)}…' is longer than 64 characters.`,
        'metadata',
        'invalid_value',
      );
    if (typeof v !== 'string')
      throw badRequest(
        `Invalid type for 'metadata.${k}': expected a string.`,
        `metadata.${k}`,
        'invalid_type',
      );
    if (v.length > 512)
      throw badRequest(
        `Invalid 'metadata.${k}': string too long. Expected a maximum length of 512, but got ${v.length}.`,
        `metadata.${k}`,
        'string_above_max_length',
      );
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

const HP_LIMITS = {
  n_epochs: { min: 1, max: 50, integer: true },
  batch_size: { min: 1, max: 256, integer: true },
  learning_rate_multiplier: { min: Number.MIN_VALUE, max: Number.POSITIVE_INFINITY, integer: false },
} as const;

/** `method.supervised.hyperparameters` wins over the legacy top-level `hyperparameters`. */
export function parseHyperparameters(body: CreateJobBody): RequestedHyperparameters {
  const method = body.method as { type?: unknown; supervised?: { hyperparameters?: unknown } } | undefined;
  let raw: unknown = body.hyperparameters;
  let prefix = 'hyperparameters';
  if (method != null) {
    if (typeof method !== 'object' || method.type !== 'supervised') {
      throw badRequest(
        "Invalid 'method.type': the simulator supports 'supervised' fine-tuning only.",
        'method.type',
        'invalid_value',
      );
    }
    if (method.supervised?.hyperparameters !== undefined) {
      raw = method.supervised.hyperparameters;
      prefix = 'method.supervised.hyperparameters';
    }
  }
  if (raw == null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw badRequest(`Invalid type for '${prefix}': expected an object.`, prefix, 'invalid_type');
  const out: RequestedHyperparameters = {};
  for (const [key, value] of Object.entries(raw)) {
    const limits = HP_LIMITS[key as keyof typeof HP_LIMITS];
    if (!limits)
      throw badRequest(
        `Unrecognized hyperparameter '${prefix}.${key}'.`,
        `${prefix}.${key}`,
        'unknown_parameter',
      );
    if (value === 'auto' || value == null) continue;
    const ok =
      typeof value === 'number' &&
      (!limits.integer || Number.isInteger(value)) &&
      value >= limits.min &&
      value <= limits.max;
    if (!ok) {
      throw badRequest(
        `Invalid '${prefix}.${key}': expected 'auto' or a number from ${limits.min === Number.MIN_VALUE ? '>0' : limits.min}${Number.isFinite(limits.max) ? ` to ${limits.max}` : ''}, got ${JSON.stringify(value)}.`,
        `${prefix}.${key}`,
        'invalid_value',
      );
    }
    out[key as keyof RequestedHyperparameters] = value as number;
  }
  return out;
}
