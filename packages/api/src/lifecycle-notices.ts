import {
  type Catalogue,
  datesProvider,
  findBaseModel,
  type LifecycleEventState,
  lifecycleEvents,
  lifecycleOf,
  type ModelLifecycle,
  NOTICE_DAYS,
} from '@tuneline/dataset';
import type { AliasRecord, LicenseBaseModel } from '@tuneline/db';
import { z } from 'zod';

/**
 * The hub's lifecycle banners (issue 21.3), judged on the API's clock (21.5) so a moved clock moves
 * them: one notice per base model and provider the license has fine-tunes on whose training close or
 * shutdown there is within `NOTICE_DAYS` or past, and one per alias whose model shuts down within that
 * time or has. Each names the date and the successor.
 */

export interface LifecycleNotice {
  kind: 'model' | 'alias';
  /** The base model (kind `model`) or the alias name (kind `alias`). */
  name: string;
  baseModel: string;
  provider: string;
  /** The license's trained models on it (`model`), or the model the alias serves (`alias`). */
  models: string[];
  /** The alias's fine-tune (null for `model`). */
  fineTuneId: string | null;
  events: LifecycleEventState[];
  successor: string | null;
  source: string | null;
  message: string;
}

const days = (n: number) => (n === 1 ? '1 day' : `${n} days`);

function eventText(e: LifecycleEventState): string {
  if (e.event === 'training_closes')
    return e.state === 'past'
      ? `takes no new fine-tuning jobs since ${e.date}`
      : `takes no new fine-tuning jobs from ${e.date} (in ${days(e.daysLeft)})`;
  return e.state === 'past'
    ? `was shut down on ${e.date}: calls answer 410`
    : `shuts down on ${e.date} (in ${days(e.daysLeft)}): calls will answer 410`;
}

const successorText = (l: ModelLifecycle) =>
  l.successor ? `Suggested successor: ${l.successor}.` : 'No successor is named in the catalogue.';

const urgency = (n: LifecycleNotice) =>
  Math.min(...n.events.map((e) => (e.state === 'past' ? -1 : e.daysLeft)));

export function lifecycleNotices(
  catalogue: Catalogue,
  baseModels: LicenseBaseModel[],
  aliases: AliasRecord[],
  now: Date,
): LifecycleNotice[] {
  const out: LifecycleNotice[] = [];
  // Fine-tunes without a provider count as their model's own provider's: merge them.
  const groups = new Map<string, { base: string; provider: string; models: Set<string> }>();
  for (const b of baseModels) {
    const model = findBaseModel(b.baseModel, catalogue);
    if (!model) continue;
    const provider = datesProvider(model, b.provider);
    const key = `${b.baseModel}\u0000${provider}`;
    const group = groups.get(key) ?? { base: b.baseModel, provider, models: new Set<string>() };
    for (const m of b.models) group.models.add(m);
    groups.set(key, group);
  }
  for (const g of groups.values()) {
    const l = lifecycleOf(findBaseModel(g.base, catalogue), g.provider);
    // A shutdown concerns trained models only; the training close, anyone with fine-tunes there.
    const events = lifecycleEvents(l, now).filter((e) => e.event !== 'shutdown' || g.models.size > 0);
    if (!events.length) continue;
    out.push({
      kind: 'model',
      name: g.base,
      baseModel: g.base,
      provider: g.provider,
      models: [...g.models].sort(),
      fineTuneId: null,
      events,
      successor: l.successor,
      source: l.source,
      message: `Base model ${g.base} at ${g.provider} ${events.map(eventText).join('; ')}. ${successorText(l)}`,
    });
  }
  for (const a of aliases) {
    const l = lifecycleOf(findBaseModel(a.baseModel, catalogue), a.provider);
    const events = lifecycleEvents(l, now).filter((e) => e.event === 'shutdown');
    if (!events.length || l.provider === null) continue;
    out.push({
      kind: 'alias',
      name: a.name,
      baseModel: a.baseModel,
      provider: l.provider,
      models: a.model ? [a.model] : [],
      fineTuneId: a.fineTuneId,
      events,
      successor: l.successor,
      source: l.source,
      message:
        `Alias ${a.name} serves ${a.model ?? a.fineTuneId} (${a.baseModel} at ${l.provider}), which ` +
        `${events.map(eventText).join('; ')}. Point the alias at another model. ${successorText(l)}`,
    });
  }
  return out.sort(
    (x, y) => urgency(x) - urgency(y) || x.kind.localeCompare(y.kind) || x.name.localeCompare(y.name),
  );
}

const eventStateSchema = z.object({
  event: z.enum(['training_closes', 'shutdown']),
  date: z.string().describe('UTC day'),
  state: z.enum(['soon', 'past']).describe(`soon: within ${NOTICE_DAYS} days; past: on or after the day`),
  daysLeft: z.int().describe('whole days left (0 once the day has come)'),
});

export const lifecycleNoticesSchema = z
  .object({
    asOf: z.string().describe("the API's clock when the notices were judged"),
    noticeDays: z.int().describe('how many days ahead a date is announced'),
    notices: z.array(
      z.object({
        kind: z.enum(['model', 'alias']),
        name: z.string().describe('the base model, or the alias name'),
        baseModel: z.string(),
        provider: z.string().describe('the provider whose dates these are'),
        models: z.array(z.string()).describe("the license's trained models on it, or the alias's model"),
        fineTuneId: z.uuid().nullable().describe("the alias's fine-tune (null for a base model)"),
        events: z.array(eventStateSchema),
        successor: z.string().nullable(),
        source: z.string().nullable(),
        message: z.string().describe('one sentence naming the dates and the successor'),
      }),
    ),
  })
  .meta({ id: 'LifecycleNotices' });
