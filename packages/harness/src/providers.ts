// A trial's fine-tunes spread over the three provider profiles, all served by the one simulator: which
// provider, license and base model each request trains at (and how it names that provider), the
// workers' credentials for every provider, and the provider jobs of each fine-tune counted in the
// simulator's own records, per dialect.
import type { RecordedResponse, RunningSimulator } from '@tuneline/simulator';

/** The provider profiles a trial spreads its fine-tunes over (the named providers of packages/provider). */
export const TRIAL_PROVIDERS = ['openai', 'azure', 'together'] as const;
export type TrialProvider = (typeof TRIAL_PROVIDERS)[number];

/** The deployment default of a trial's workers: a fine-tune whose row names no provider trains here. */
export const DEFAULT_PROVIDER: TrialProvider = 'openai';

/** Base models each provider trains (catalogue and simulator), used in turn by its requests. */
const BASE_MODELS: Record<TrialProvider, readonly string[]> = {
  openai: ['gpt-4o-mini-2024-07-18', 'gpt-4.1-nano-2025-04-14'],
  azure: ['gpt-4o-mini-2024-07-18', 'gpt-4.1-mini-2025-04-14'],
  together: ['meta-llama/Meta-Llama-3.1-8B-Instruct-Reference', 'Qwen/Qwen2.5-7B-Instruct'],
};

/**
 * How a request comes to its provider, one way per provider so that each way is exercised: the
 * deployment default (nothing named), the license's provider, the request's own `provider` field.
 */
const NAMED_BY: Record<TrialProvider, 'default' | 'license' | 'request'> = {
  openai: 'default',
  azure: 'license',
  together: 'request',
};

export interface ProviderPlan {
  providers: readonly TrialProvider[];
  /** The licenses of each provider (each license trains at one provider). */
  licenses: Map<TrialProvider, string[]>;
  /** The license rows that name their provider (the rest use the deployment default or the request's). */
  licenseProviders: { licenseId: string; provider: TrialProvider }[];
}

/** Licenses handed out round-robin over the providers (license j to provider j mod n). */
export function planProviders(
  licenseIds: readonly string[],
  providers: readonly TrialProvider[],
): ProviderPlan {
  if (providers.length === 0) throw new Error('a trial needs at least one provider');
  if (licenseIds.length < providers.length)
    throw new Error(
      `${providers.length} providers need at least as many licenses (got ${licenseIds.length})`,
    );
  const licenses = new Map<TrialProvider, string[]>(providers.map((p) => [p, []]));
  const licenseProviders: ProviderPlan['licenseProviders'] = [];
  licenseIds.forEach((licenseId, j) => {
    const provider = providers[j % providers.length] as TrialProvider;
    licenses.get(provider)?.push(licenseId);
    if (NAMED_BY[provider] === 'license') licenseProviders.push({ licenseId, provider });
  });
  return { providers, licenses, licenseProviders };
}

/** Request i: provider i mod n (round-robin), that provider's licenses and base models in turn. */
export function requestTarget(
  plan: ProviderPlan,
  i: number,
): { provider: TrialProvider; licenseId: string; baseModel: string; requestProvider?: TrialProvider } {
  const provider = plan.providers[i % plan.providers.length] as TrialProvider;
  const turn = Math.floor(i / plan.providers.length);
  const licenses = plan.licenses.get(provider) ?? [];
  const models = BASE_MODELS[provider];
  return {
    provider,
    licenseId: licenses[turn % licenses.length] as string,
    baseModel: models[turn % models.length] as string,
    ...(NAMED_BY[provider] === 'request' ? { requestProvider: provider } : {}),
  };
}

/**
 * The workers' provider settings: credentials and URLs for all three providers, each pointing at its
 * dialect of the one simulator (OpenAI at `/v1`, Azure OpenAI at the origin's `/openai/...`, Together at
 * `/together/v1`), as a deployment with three real accounts would configure them (README, Providers).
 */
export function providerEnv(sim: RunningSimulator): NodeJS.ProcessEnv {
  return {
    PROVIDER: DEFAULT_PROVIDER,
    OPENAI_API_KEY: sim.apiKey,
    OPENAI_BASE_URL: sim.url,
    AZURE_OPENAI_ENDPOINT: sim.baseUrl,
    AZURE_OPENAI_API_KEY: sim.apiKey,
    TOGETHER_API_KEY: sim.apiKey,
    TOGETHER_BASE_URL: `${sim.baseUrl}/together/v1`,
  };
}

/** A fine-tune's provider: its row's, else the deployment default. */
export const providerOf = (row: { provider: string | null }): string => row.provider ?? DEFAULT_PROVIDER;

/**
 * Which dialect touched each job of the simulator's OpenAI store. The OpenAI and Azure dialects share that
 * store, so a job's dialect is read off the answers: the create that returned it, the metadata lookup
 * that found it (after a lost create), and every call naming it in its path (retrieve, events, cancel).
 * Unfiltered lists (the poller's sweep) name every job and say nothing about who owns one.
 */
export class JobDialects {
  private readonly seen = new Map<string, Set<string>>();

  /** For the simulator's `onResponse`. */
  readonly record = (r: RecordedResponse): void => {
    if (r.dialect === 'admin') return;
    const path = r.url.split('?')[0] ?? '';
    if (!path.includes('/fine_tuning/jobs')) return;
    const ids = new Set(path.match(/ftjob-[A-Za-z0-9]+/g) ?? []);
    const created = r.method === 'POST' && path.endsWith('/fine_tuning/jobs');
    const found = r.method === 'GET' && /[?&]metadata/.test(r.url);
    if (r.status === 200 && (created || found))
      for (const m of r.body.matchAll(/"id":\s*"(ftjob-[A-Za-z0-9]+)"/g)) if (m[1]) ids.add(m[1]);
    for (const id of ids) {
      const dialects = this.seen.get(id) ?? new Set<string>();
      dialects.add(r.dialect);
      this.seen.set(id, dialects);
    }
  };

  /** The dialects that touched a job, e.g. `azure`, `openai+azure`; `unseen` if none did. */
  of(jobId: string): string {
    const dialects = this.seen.get(jobId);
    return dialects?.size ? [...dialects].sort().join('+') : 'unseen';
  }
}

export interface ProviderJobs {
  /** Per fine-tune of the trial, its provider jobs (in any dialect), each with the dialect(s) that touched it. */
  perFineTune: Map<string, { jobId: string; dialect: string }[]>;
  /** Provider jobs that name no fine-tune of the trial, per dialect. */
  orphans: Record<string, number>;
  /** Provider jobs per dialect. */
  perDialect: Record<string, number>;
}

/** Every provider job in the simulator, OpenAI/Azure store and Together's, mapped to its fine-tune. */
export function countProviderJobs(
  sim: RunningSimulator,
  dialects: JobDialects,
  fineTuneIds: ReadonlySet<string>,
): ProviderJobs {
  const out: ProviderJobs = { perFineTune: new Map(), orphans: {}, perDialect: {} };
  const add = (fineTuneId: string | undefined, jobId: string, dialect: string) => {
    out.perDialect[dialect] = (out.perDialect[dialect] ?? 0) + 1;
    if (!fineTuneId || !fineTuneIds.has(fineTuneId)) {
      out.orphans[dialect] = (out.orphans[dialect] ?? 0) + 1;
      return;
    }
    const jobs = out.perFineTune.get(fineTuneId) ?? [];
    jobs.push({ jobId, dialect });
    out.perFineTune.set(fineTuneId, jobs);
  };
  for (const job of sim.admin.state().jobs) add(job.metadata?.fine_tune_id, job.id, dialects.of(job.id));
  // Together jobs carry no metadata: the trainer's tag rides at the end of the suffix (`...tl-<id>`).
  for (const job of sim.admin.together().jobs)
    add(/tl-([0-9a-f-]{36})$/.exec(job.suffix ?? '')?.[1], job.id, 'together');
  return out;
}

/** The dialect a simulator path belongs to (fault log entries); webhooks are the OpenAI store's. */
export function dialectOfPath(method: string, path: string): string {
  if (method === 'WEBHOOK') return 'webhooks';
  if (path.startsWith('/together/')) return 'together';
  if (path.startsWith('/openai/')) return 'azure';
  return 'openai';
}
