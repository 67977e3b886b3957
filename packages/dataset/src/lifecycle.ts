import type { BaseModel, TrainingProvider } from './catalogue.ts';

/**
 * A base model's lifecycle dates (issue 21.2) are per provider: OpenAI's close and shutdown apply to jobs
 * and fine-tunes at OpenAI, Azure's to those at Azure. Every date rule reads them here, for the provider
 * of the request, dataset or fine-tune at hand, judged by the one clock (21.5). A row without a provider
 * (null: the deployment default) is judged by the model's own provider's dates (its catalogue `provider`).
 */

/** A base model's lifecycle at one provider, as the API shows it (null: no date known). */
export interface ModelLifecycle {
  /** The provider these dates are for (null: the model is not in the catalogue). */
  provider: string | null;
  trainingClosesAt: string | null;
  shutdownAt: string | null;
  successor: string | null;
  source: string | null;
}

/** The provider whose dates apply to a row: its own, else (null, the deployment default) the model's. */
export function datesProvider(model: BaseModel, provider: string | null | undefined): string {
  return provider ?? model.provider;
}

export function lifecycleOf(
  model: BaseModel | undefined,
  provider: string | null | undefined,
): ModelLifecycle {
  if (!model)
    return {
      provider: provider ?? null,
      trainingClosesAt: null,
      shutdownAt: null,
      successor: null,
      source: null,
    };
  const at = datesProvider(model, provider);
  const dates = model.providers?.[at as TrainingProvider];
  return {
    provider: at,
    trainingClosesAt: dates?.trainingClosesAt ?? null,
    shutdownAt: dates?.shutdownAt ?? null,
    successor: dates?.successor ?? null,
    source: dates?.source ?? null,
  };
}

/** Whether `now` is on or after `day` (a UTC day; null: never). */
const reached = (day: string | null, now: Date) => day !== null && day <= now.toISOString().slice(0, 10);

/** Whether `now` is on or after the model's `trainingClosesAt` at `provider` (UTC day). */
export const trainingClosed = (
  model: BaseModel | undefined,
  provider: string | null | undefined,
  now: Date,
) => reached(lifecycleOf(model, provider).trainingClosesAt, now);

/** Whether `now` is on or after the model's `shutdownAt` at `provider`: its fine-tunes there serve nothing. */
export const shutDown = (model: BaseModel | undefined, provider: string | null | undefined, now: Date) =>
  reached(lifecycleOf(model, provider).shutdownAt, now);

const successorText = (l: ModelLifecycle) =>
  l.successor ? `; successor: ${l.successor}` : '; no successor is named in the catalogue';

/** The error for a job on a model past `trainingClosesAt` at `provider`, naming the successor. */
export function trainingClosedMessage(model: BaseModel, provider: string | null | undefined): string {
  const l = lifecycleOf(model, provider);
  return `base model "${model.name}" takes no new fine-tuning jobs at ${l.provider} since ${l.trainingClosesAt}${successorText(l)}`;
}

/** The error for a call on a fine-tune of a model past `shutdownAt` at `provider`, naming the successor. */
export function shutdownMessage(
  model: BaseModel,
  provider: string | null | undefined,
  fineTunedModel: string,
): string {
  const l = lifecycleOf(model, provider);
  return `model "${fineTunedModel}" was shut down on ${l.shutdownAt} with its base model "${model.name}" at ${l.provider}${successorText(l)}`;
}

/** How many days ahead the hub and the API announce a date (the sweep's first e-mail goes out then too). */
export const NOTICE_DAYS = 30;

export type LifecycleEventName = 'training_closes' | 'shutdown';

/** One date of a lifecycle as seen on `now`: coming within `NOTICE_DAYS`, or passed. */
export interface LifecycleEventState {
  event: LifecycleEventName;
  date: string;
  state: 'soon' | 'past';
  /** Whole days from `now` to the date (0 on the day or after it). */
  daysLeft: number;
}

/**
 * The lifecycle's dates worth announcing on `now`: each within `NOTICE_DAYS` or passed; once the
 * shutdown has passed, only the shutdown (the training close says nothing more).
 */
export function lifecycleEvents(l: ModelLifecycle, now: Date): LifecycleEventState[] {
  const out: LifecycleEventState[] = [];
  for (const [event, date] of [
    ['training_closes', l.trainingClosesAt],
    ['shutdown', l.shutdownAt],
  ] as const) {
    if (!date) continue;
    const left = (Date.parse(`${date}T00:00:00Z`) - now.getTime()) / 86_400_000;
    if (left > NOTICE_DAYS) continue;
    out.push({ event, date, state: left <= 0 ? 'past' : 'soon', daysLeft: Math.max(0, Math.ceil(left)) });
  }
  return out.some((e) => e.event === 'shutdown' && e.state === 'past')
    ? out.filter((e) => e.event === 'shutdown')
    : out;
}
