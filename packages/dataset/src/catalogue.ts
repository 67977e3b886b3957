import { readFileSync } from 'node:fs';
import { formatZodError, type Hyperparameters, resolveEpochs } from '@tuneline/contracts';
import { z } from 'zod';

/**
 * The base model catalogue: what Tuneline knows about each provider base model. Kept as data so ops can
 * override it (env `MODEL_CATALOGUE_FILE`: a JSON object `{ "<model>": {...} }` merged over these
 * defaults, entry by entry and field by field).
 *
 * Credits: 1 credit = USD 0.001, so `creditsPerMillionTrainingTokens` is the provider's training price per
 * 1M tokens × 1000 (gpt-4o-mini: $3.00 → 3000). Integers only; money never goes through floats.
 *
 * Inference prices are OpenAI's published prices for fine-tuned models (standard tier), per 1M input /
 * output tokens: gpt-4o-mini $0.30 / $1.20, gpt-4o $3.75 / $15.00, gpt-4.1 $3.00 / $12.00, gpt-4.1-mini
 * $0.80 / $3.20, gpt-4.1-nano $0.20 / $0.80, gpt-3.5-turbo $3.00 / $6.00.
 */

export const encodingSchema = z.enum(['o200k_base', 'cl100k_base']);
export type Encoding = z.infer<typeof encodingSchema>;

/** The providers a model can be trained at (the provider profiles' kinds, the simulator aside). */
export const trainingProviderSchema = z.enum(['openai', 'azure', 'together']);
export type TrainingProvider = z.infer<typeof trainingProviderSchema>;

/** Non-negative integer credits, given in JSON as a number or a decimal string (bigint-safe). */
const creditsSchema = z
  .union([
    z.int().min(0, 'must be a non-negative integer'),
    z.string().regex(/^\d+$/, 'must be a non-negative integer'),
    z.bigint().min(0n, 'must be a non-negative integer'),
  ])
  .transform((v) => BigInt(v));

const isoDay = z.iso.date('must be an ISO date (YYYY-MM-DD)');

/** A model's lifecycle (issue 21.2) at a provider, UTC days. */
const lifecycleShape = {
  /** From this day on, no new fine-tuning jobs on this model there. */
  trainingClosesAt: isoDay.optional(),
  /** From this day on, the model and its fine-tunes there serve nothing (the gateway answers 410). */
  shutdownAt: isoDay.optional(),
  /** What Tuneline suggests instead (a base model, or `<provider>:<model>`); named in the errors. */
  successor: z.string().min(1).optional(),
  /** Where the dates come from (the provider's page), for people reading the catalogue. */
  source: z.string().min(1).optional(),
};

const entryShape = {
  encoding: encodingSchema,
  /** Tokens one training example may hold (longer examples are truncated by the provider). */
  maxTokensPerExample: z.int().min(1, 'must be at least 1'),
  creditsPerMillionTrainingTokens: creditsSchema,
  /**
   * Legacy name of `trainingClosesAt` (the day from which the provider takes no new fine-tuning jobs):
   * still read, and copied into `trainingClosesAt` when that is not given.
   */
  shutdownDate: isoDay.optional(),
  /**
   * Lifecycle (issue 21.2) of the model at its own `provider` (the flat form, kept for override files
   * written before the dates were per provider; `providers.<name>` holds each provider's own).
   */
  ...lifecycleShape,
  fineTunable: z.boolean(),
  /**
   * Inference on a fine-tune of this model, in credits per 1M input / output tokens (the provider's
   * fine-tuned-model prices × 1000). The gateway holds and charges calls at these prices; a model
   * without them is charged the catalogue's most expensive prices (logged and counted).
   */
  inferenceInputCreditsPerMillion: creditsSchema.optional(),
  inferenceOutputCreditsPerMillion: creditsSchema.optional(),
  /** Most completion tokens one answer may have (the gateway's worst case without max_tokens). */
  maxOutputTokens: z.int().min(1, 'must be at least 1').optional(),
  /** The provider that trains this model (default openai). */
  provider: trainingProviderSchema,
  /**
   * `exact`: `encoding` is the model's own tokenizer, counts are exact. `approximate`: the model's
   * tokenizer is not available in JavaScript and `encoding` stands in for it (open models at Together:
   * Llama 3's vocabulary extends cl100k_base's, Qwen 2.5's is its own BPE of similar granularity), so
   * token counts and estimates are estimates; billing always uses the provider's figure.
   */
  tokenizer: z.enum(['exact', 'approximate']),
  /** How the provider resolves `n_epochs: auto` when it is not OpenAI's rule (Together: 1). */
  defaultEpochs: z.int().min(1).optional(),
  /**
   * For a provider that reports a job's price rather than its tokens: credits per unit of the
   * provider's reported price (Together's `total_price` is in USD: 1000 credits per unit). Billed
   * tokens are then the price in credits over `creditsPerMillionTrainingTokens` (see
   * `tokensFromProviderPrice`).
   */
  creditsPerProviderPriceUnit: creditsSchema.optional(),
  /**
   * Which providers train this model, each at its own price (default: the entry's) and with its own
   * lifecycle dates (`trainingClosesAt`, `shutdownAt`, `successor`, `source`): a provider's dates apply
   * to the jobs and fine-tunes at that provider only. When absent, only `provider` trains it.
   */
  providers: z
    .partialRecord(
      trainingProviderSchema,
      z
        .object({
          creditsPerMillionTrainingTokens: creditsSchema.optional(),
          /** Legacy: the last day this provider takes new jobs (read as `trainingClosesAt` the day after). */
          trainingUntil: isoDay.optional(),
          /** This provider's lifecycle dates for the model (issue 21.2). */
          ...lifecycleShape,
          /**
           * Hourly hosting fee of a deployed fine-tune of this model at this provider (Azure bills
           * every hour a fine-tuned deployment exists, used or not), in credits per started hour.
           */
          hostingCreditsPerHour: creditsSchema.optional(),
        })
        .strict(),
    )
    .optional(),
};

export const baseModelEntrySchema = z
  .object({
    ...entryShape,
    provider: entryShape.provider.default('openai'),
    tokenizer: entryShape.tokenizer.default('exact'),
  })
  .strict();

export type BaseModelEntry = z.output<typeof baseModelEntrySchema>;
export interface BaseModel extends BaseModelEntry {
  name: string;
}
export type Catalogue = Readonly<Record<string, BaseModel>>;

type EntryInput = z.input<typeof baseModelEntrySchema>;

// Together's open models: LoRA SFT prices per 1M processed tokens (up to 16B: $0.48; 70B class: $2.90).
const together = (credits: number, maxTokensPerExample: number): EntryInput => ({
  encoding: 'cl100k_base',
  tokenizer: 'approximate',
  maxTokensPerExample,
  creditsPerMillionTrainingTokens: credits,
  fineTunable: true,
  provider: 'together',
  defaultEpochs: 1,
  creditsPerProviderPriceUnit: 1_000,
});

// Lifecycle dates (issue 21.2), per provider: each provider's dates apply to the jobs and fine-tunes at
// that provider only.
//
// OpenAI, as its deprecations page (May 2026) states them: OpenAI's self-serve fine-tuning takes no new
// jobs after 2027-01-06; the gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini snapshots and the fine-tunes
// built on them shut down on 2027-01-14. The page names no successor (all of OpenAI's self-serve
// fine-tuning closes): `successor` is Tuneline's suggestion, the same base model through the Azure OpenAI
// profile (issue 20), overridable like everything here.
const OPENAI_TRAINING_SOURCE =
  'OpenAI deprecations page (May 2026): no new self-serve fine-tuning jobs after 2027-01-06; successor: Tuneline suggestion';
const OPENAI_SHUTDOWN_SOURCE =
  'OpenAI deprecations page (May 2026): no new self-serve fine-tuning jobs after 2027-01-06; gpt-4o, gpt-4o-mini, ' +
  'gpt-4.1, gpt-4.1-mini snapshots and their fine-tunes shut down 2027-01-14; successor: Tuneline suggestion';
const openaiDates = (successor: string, shutdown = true) => ({
  trainingClosesAt: '2027-01-06',
  ...(shutdown ? { shutdownAt: '2027-01-14' } : {}),
  successor,
  source: shutdown ? OPENAI_SHUTDOWN_SOURCE : OPENAI_TRAINING_SOURCE,
});

// Azure OpenAI, as Microsoft's "Model retirement schedule" (learn.microsoft.com/azure/foundry/openai/
// concepts/model-retirement-schedule, updated 2026-09-02), table "Fine-tuned models", states them: fine-
// tuned models retire in two phases, training (no new fine-tuning) and deployment (inference and
// deployment return errors). gpt-4o 2024-08-06 and gpt-4o-mini 2024-07-18: training "no earlier than
// 2027-04-01" (existing customers; otherwise at the base model's retirement), deployment 2027-10-01;
// gpt-4.1, gpt-4.1-mini, gpt-4.1-nano 2025-04-14: training "no earlier than 2027-04-14", deployment
// 2027-10-14. `trainingClosesAt` takes the earliest announced training day. Microsoft names no
// fine-tunable replacement: `successor` is Tuneline's suggestion (the 4.1 snapshot of the same size,
// which Azure listed as gpt-4o's replacement before), none for the 4.1 family.
const AZURE_SOURCE =
  'Azure OpenAI model retirement schedule (Microsoft Learn, 2026-09-02), fine-tuned models: training retirement ' +
  '"no earlier than" the date given (existing customers), deployment retirement; successor: Tuneline suggestion';
const azureDates = (trainingClosesAt: string, shutdownAt: string, successor?: string) => ({
  hostingCreditsPerHour: 1_700,
  trainingClosesAt,
  shutdownAt,
  ...(successor ? { successor } : {}),
  source: AZURE_SOURCE,
});

const defaults: Record<string, EntryInput> = {
  'gpt-4o-mini-2024-07-18': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 3_000,
    fineTunable: true,
    inferenceInputCreditsPerMillion: 300,
    inferenceOutputCreditsPerMillion: 1_200,
    maxOutputTokens: 16_384,
    // OpenAI and Azure OpenAI both train it (Azure needs a deployment to serve it), each until its own dates.
    providers: {
      openai: openaiDates('azure:gpt-4o-mini-2024-07-18'),
      azure: azureDates('2027-04-01', '2027-10-01', 'azure:gpt-4.1-mini-2025-04-14'),
    },
  },
  'gpt-4o-2024-08-06': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 25_000,
    fineTunable: true,
    inferenceInputCreditsPerMillion: 3_750,
    inferenceOutputCreditsPerMillion: 15_000,
    maxOutputTokens: 16_384,
    providers: {
      openai: openaiDates('azure:gpt-4o-2024-08-06'),
      azure: azureDates('2027-04-01', '2027-10-01', 'azure:gpt-4.1-2025-04-14'),
    },
  },
  // Listed so requests naming it get "not fine-tunable" rather than "unknown".
  'gpt-4o-2024-05-13': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 25_000,
    fineTunable: false,
    maxOutputTokens: 4_096,
    providers: {
      openai: {
        shutdownAt: '2027-01-14',
        successor: 'azure:gpt-4o-2024-08-06',
        source: OPENAI_SHUTDOWN_SOURCE,
      },
    },
  },
  'gpt-4.1-2025-04-14': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 25_000,
    fineTunable: true,
    inferenceInputCreditsPerMillion: 3_000,
    inferenceOutputCreditsPerMillion: 12_000,
    maxOutputTokens: 32_768,
    providers: {
      openai: openaiDates('azure:gpt-4.1-2025-04-14'),
      azure: azureDates('2027-04-14', '2027-10-14'),
    },
  },
  'gpt-4.1-mini-2025-04-14': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 5_000,
    fineTunable: true,
    inferenceInputCreditsPerMillion: 800,
    inferenceOutputCreditsPerMillion: 3_200,
    maxOutputTokens: 32_768,
    providers: {
      openai: openaiDates('azure:gpt-4.1-mini-2025-04-14'),
      azure: azureDates('2027-04-14', '2027-10-14'),
    },
  },
  'gpt-4.1-nano-2025-04-14': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 1_500,
    fineTunable: true,
    inferenceInputCreditsPerMillion: 200,
    inferenceOutputCreditsPerMillion: 800,
    maxOutputTokens: 32_768,
    providers: {
      // OpenAI's page lists no shutdown for the nano snapshot: training closes only.
      openai: openaiDates('azure:gpt-4.1-mini-2025-04-14', false),
      azure: azureDates('2027-04-14', '2027-10-14'),
    },
  },
  'gpt-3.5-turbo-0125': {
    encoding: 'cl100k_base',
    maxTokensPerExample: 16_385,
    creditsPerMillionTrainingTokens: 8_000,
    fineTunable: true,
    inferenceInputCreditsPerMillion: 3_000,
    inferenceOutputCreditsPerMillion: 6_000,
    maxOutputTokens: 4_096,
    providers: { openai: openaiDates('azure:gpt-4.1-mini-2025-04-14', false) },
  },
  // The seed's recommended base model (issue 16.5). Looked up, not guessed:
  // - Shut down at OpenAI on 2026-10-23 with the other legacy GPT-3.5 snapshots and their fine-tunes:
  //   OpenAI's deprecations page, "2026-04-22: Legacy GPT model snapshots"
  //   (https://developers.openai.com/api/docs/deprecations; the 2026-04-22 revision of its deprecations.md,
  //   https://spybara.com/openai/api/history/docs/en/2026-04-22-0555..2026-04-23-0556/, lists the
  //   gpt-3.5-turbo family at 2026-10-23, substitute gpt-4.1-mini), and
  //   https://codersera.com/blog/gpt-3-5-turbo-shutdown-2026-what-to-use-instead/ ("gpt-3.5-turbo-1106 |
  //   Deprecated | October 23, 2026"; "Fine-tuned gpt-3.5-turbo models | Deprecated | October 23, 2026").
  //   So it takes no fine-tuning jobs and serves no calls any more: fineTunable false, shutdownDate set.
  // - Before that it was fine-tunable (https://just4o.chat/models/gpt-3.5-turbo-1106: endpoints include
  //   v1/fine-tuning; 16,385-token context, 4,096 output tokens), priced like the rest of the
  //   gpt-3.5-turbo family: training $0.008 / 1K tokens (https://openai.com/blog/gpt-3-5-turbo-fine-tuning-and-api-updates,
  //   https://www.theregister.com/2023/08/23/openai_finetuning_gpt/), fine-tuned inference $3 / $6 per
  //   1M input / output tokens (the same as gpt-3.5-turbo-0125 above). Kept so that existing fine-tunes and
  //   estimates are priced; the price lookups are secondary sources, flagged as such.
  'gpt-3.5-turbo-1106': {
    encoding: 'cl100k_base',
    maxTokensPerExample: 16_385,
    creditsPerMillionTrainingTokens: 8_000,
    shutdownDate: '2026-10-23',
    shutdownAt: '2026-10-23',
    successor: 'gpt-4.1-mini-2025-04-14',
    source: 'OpenAI deprecations page, 2026-04-22: legacy GPT model snapshots (see above)',
    fineTunable: false,
    inferenceInputCreditsPerMillion: 3_000,
    inferenceOutputCreditsPerMillion: 6_000,
    maxOutputTokens: 4_096,
  },
  'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference': together(480, 131_072),
  'meta-llama/Meta-Llama-3.1-70B-Instruct-Reference': together(2_900, 131_072),
  'Qwen/Qwen2.5-7B-Instruct': together(480, 32_768),
};

// Without the defaults: an override names only what it changes.
const overrideFileSchema = z.record(z.string().min(1), z.object(entryShape).strict().partial());

type ProviderEntry = NonNullable<NonNullable<EntryInput['providers']>[TrainingProvider]>;
const FLAT_DATES = ['trainingClosesAt', 'shutdownAt', 'successor', 'source'] as const;
const dayAfter = (day: string) =>
  new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

/**
 * An entry (or an override of one) in the per-provider form: its flat lifecycle fields are the dates at
 * its own provider `own` and move to `providers[own]` (fields that entry gives itself win); the legacy
 * `shutdownDate` (the entry's) and `trainingUntil` (a provider's last day) become `trainingClosesAt`.
 */
function perProvider(entry: Partial<EntryInput>, own: TrainingProvider): Partial<EntryInput> {
  const flat: Partial<Record<(typeof FLAT_DATES)[number], string>> = {};
  for (const k of FLAT_DATES) if (entry[k] !== undefined) flat[k] = entry[k];
  if (flat.trainingClosesAt === undefined && entry.shutdownDate !== undefined)
    flat.trainingClosesAt = entry.shutdownDate;
  const out: Partial<EntryInput> = Object.fromEntries(
    Object.entries(entry).filter(
      ([k, v]) => v !== undefined && !(FLAT_DATES as readonly string[]).includes(k),
    ),
  );
  const providers: Partial<Record<TrainingProvider, ProviderEntry>> = { ...entry.providers };
  if (Object.keys(flat).length) providers[own] = { ...flat, ...providers[own] };
  for (const [name, offer] of Object.entries(providers) as [TrainingProvider, ProviderEntry][]) {
    if (offer.trainingUntil !== undefined && offer.trainingClosesAt === undefined)
      providers[name] = { ...offer, trainingClosesAt: dayAfter(offer.trainingUntil) };
  }
  if (Object.keys(providers).length) out.providers = providers;
  return out;
}

/** `patch` over `entry`, field by field; `providers` provider by provider, field by field. */
function mergeEntry(entry: Partial<EntryInput> | undefined, patch: Partial<EntryInput>): Partial<EntryInput> {
  const merged = { ...entry, ...patch };
  if (entry?.providers && patch.providers) {
    const providers: Partial<Record<TrainingProvider, ProviderEntry>> = { ...entry.providers };
    for (const [name, offer] of Object.entries(patch.providers) as [TrainingProvider, ProviderEntry][])
      providers[name] = { ...providers[name], ...offer };
    merged.providers = providers;
  }
  return merged;
}

const ownProvider = (entry: Partial<EntryInput> | undefined): TrainingProvider => entry?.provider ?? 'openai';

function build(entries: Record<string, Partial<EntryInput>>, source: string): Catalogue {
  const out: Record<string, BaseModel> = {};
  for (const [name, entry] of Object.entries(entries)) {
    const parsed = baseModelEntrySchema.safeParse(entry);
    if (!parsed.success)
      throw new Error(`model catalogue (${source}) entry "${name}": ${formatZodError(parsed.error)}`);
    const data = parsed.data;
    // The flat fields show the dates at the model's own provider (what they meant before issue 21.2's
    // per-provider dates); every date rule reads a provider's own (lifecycle.ts).
    const own = data.providers?.[data.provider] ?? {};
    const flat = Object.fromEntries(FLAT_DATES.filter((k) => own[k] !== undefined).map((k) => [k, own[k]]));
    out[name] = Object.freeze({ name, ...data, ...flat });
  }
  return Object.freeze(out);
}

const normalisedDefaults: Record<string, Partial<EntryInput>> = Object.fromEntries(
  Object.entries(defaults).map(([name, entry]) => [name, perProvider(entry, ownProvider(entry))]),
);

/** The built-in catalogue (no overrides). */
export const defaultCatalogue: Catalogue = build(normalisedDefaults, 'defaults');

/**
 * The catalogue in effect: the defaults, with `MODEL_CATALOGUE_FILE` (when set) merged over them. A new
 * model in the file must give every field; a known one may override only some. Flat lifecycle fields in
 * the file are the dates at the model's own `provider` (as before the dates were per provider);
 * `providers.<name>.trainingClosesAt` (and the other dates) set one provider's.
 */
export function loadCatalogue(env: Record<string, string | undefined> = process.env): Catalogue {
  const file = env.MODEL_CATALOGUE_FILE;
  if (!file) return defaultCatalogue;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`MODEL_CATALOGUE_FILE ${file}: ${(err as Error).message}`);
  }
  const parsed = overrideFileSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`MODEL_CATALOGUE_FILE ${file}: ${formatZodError(parsed.error)}`);
  const merged = { ...normalisedDefaults };
  for (const [name, override] of Object.entries(parsed.data)) {
    const existing = merged[name];
    const patch = perProvider(override as Partial<EntryInput>, override.provider ?? ownProvider(existing));
    merged[name] = mergeEntry(existing, patch);
  }
  return build(merged, file);
}

export function findBaseModel(name: string, catalogue: Catalogue = defaultCatalogue): BaseModel | undefined {
  return Object.hasOwn(catalogue, name) ? catalogue[name] : undefined;
}

/** Credits for `tokens` training tokens at `creditsPerMillion`, rounded up to whole credits. */
export function trainingCredits(tokens: bigint, creditsPerMillion: bigint): bigint {
  if (tokens < 0n || creditsPerMillion < 0n) throw new RangeError('tokens and price must be non-negative');
  const product = tokens * creditsPerMillion;
  return (product + 999_999n) / 1_000_000n;
}

/** Epochs the provider will train for (in contracts, beside the hyperparameters: the ledger uses it too). */
export { resolveEpochs } from '@tuneline/contracts';

export interface TrainingOffer {
  provider: TrainingProvider;
  creditsPerMillionTrainingTokens: bigint;
  /** Credits per started hour a deployed fine-tune costs there (Azure), if any. */
  hostingCreditsPerHour: bigint | undefined;
  /** The day from which this provider takes no new jobs on this model, if announced. */
  trainingClosesAt: string | undefined;
}

/** Who trains this model, at what price, until when (the catalogue's `providers`, else its `provider`). */
export function trainingOffers(model: BaseModel): TrainingOffer[] {
  const listed = model.providers ?? { [model.provider]: {} };
  return Object.entries(listed).map(([provider, offer]) => ({
    provider: provider as TrainingProvider,
    creditsPerMillionTrainingTokens:
      offer?.creditsPerMillionTrainingTokens ?? model.creditsPerMillionTrainingTokens,
    hostingCreditsPerHour: offer?.hostingCreditsPerHour,
    trainingClosesAt: offer?.trainingClosesAt,
  }));
}

/** What `provider` offers for `model` (undefined: it does not train it). */
export function trainingOffer(model: BaseModel, provider: string): TrainingOffer | undefined {
  return trainingOffers(model).find((o) => o.provider === provider);
}

/**
 * Credits per 1M training tokens of `model` at `provider`; the model's own price when no provider is
 * named (the deployment default); undefined when that provider does not train it.
 */
export function trainingPriceAt(
  model: BaseModel,
  provider: string | null | undefined,
): TrainingOffer['creditsPerMillionTrainingTokens'] | undefined {
  if (!provider) return model.creditsPerMillionTrainingTokens;
  return trainingOffer(model, provider)?.creditsPerMillionTrainingTokens;
}

/**
 * The provider a dataset is trained at and its price: the request's, else the license's, else the
 * model's own. `provider: null` in the answer means "the deployment default" (an OpenAI model nobody
 * chose a provider for). An error names why the choice cannot train this model. Whether that provider
 * still takes jobs is a date rule (`trainingClosed` in lifecycle.ts), judged by the one clock.
 */
export function chooseTrainingProvider(
  model: BaseModel,
  chosen: { request?: string | null | undefined; license?: string | null | undefined },
): { provider: TrainingProvider | null; offer: TrainingOffer } | { error: string } {
  const offers = trainingOffers(model);
  const named = chosen.request ?? chosen.license ?? null;
  const wanted = named ?? model.provider;
  const offer = trainingOffer(model, wanted);
  if (!offer) {
    return {
      error: `base model "${model.name}" is not trained by provider "${wanted}" (trained by: ${offers.map((o) => o.provider).join(', ')})`,
    };
  }
  return {
    provider: named !== null ? offer.provider : model.provider === 'openai' ? null : model.provider,
    offer,
  };
}

/** The fee per started hour of a deployed fine-tune of `model` at `provider` (Azure), if the catalogue has one. */
export function hostingFeeOf(model: BaseModel | undefined, provider: string): bigint | undefined {
  if (!model) return undefined;
  return trainingOffer(model, provider)?.hostingCreditsPerHour;
}

/** Credits for hosting a deployed fine-tune from `from` to `to`: per started hour, as Azure bills. */
export function hostingCredits(creditsPerHour: bigint, from: Date, to: Date): bigint {
  const ms = to.getTime() - from.getTime();
  if (ms <= 0) return 0n;
  return BigInt(Math.ceil(ms / 3_600_000)) * creditsPerHour;
}

/** Whether token counts for this model are estimates (its tokenizer is approximated). */
export function isTokenCountEstimate(model: Pick<BaseModel, 'tokenizer'>): boolean {
  return model.tokenizer === 'approximate';
}

/**
 * Billed tokens for a provider that reports a price instead of tokens: the price in credits
 * (`price × creditsPerProviderPriceUnit`, rounded to whole credits) over the model's credits per 1M
 * tokens, so `trainingCredits(tokens, price)` charges the provider's figure.
 */
export function tokensFromProviderPrice(price: number, model: BaseModel): bigint {
  if (model.creditsPerProviderPriceUnit === undefined)
    throw new Error(`model catalogue: ${model.name} has no creditsPerProviderPriceUnit`);
  if (!(price >= 0)) throw new RangeError('price must be non-negative');
  // Prices come as decimal numbers: scale to millionths before going integer.
  const micro = BigInt(Math.round(price * 1_000_000));
  const credits = (micro * model.creditsPerProviderPriceUnit) / 1_000_000n;
  if (model.creditsPerMillionTrainingTokens === 0n) return 0n;
  return (credits * 1_000_000n) / model.creditsPerMillionTrainingTokens;
}

/** `resolveEpochs` with the model's own `auto` rule when its provider has one (Together: 1). */
export function resolveEpochsFor(
  model: Pick<BaseModel, 'defaultEpochs'> | undefined,
  nExamples: number,
  hyperparameters?: Hyperparameters | null,
): number {
  const explicit =
    hyperparameters && hyperparameters !== 'auto' && typeof hyperparameters.n_epochs === 'number';
  if (!explicit && model?.defaultEpochs !== undefined) return model.defaultEpochs;
  return resolveEpochs(nExamples, hyperparameters);
}
