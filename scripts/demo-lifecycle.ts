// `npm run demo -- --lifecycle` (issue 21): after the demo's model is trained at OpenAI, give it a stable
// name (the alias `invoices`), show the lifecycle warning for a simulated training close a few days
// ahead, move the clock of the workers and the API past that day, show that OpenAI takes no new job on
// the model any more (naming the successor), and migrate the model to Azure in one call: a new job on
// the same documents and split, evaluated against the old model, the alias moved when it is not worse.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { utcDay } from '@tuneline/contracts';
import { type Db, listLifecycleWarnings } from '@tuneline/db';
import { type EvaluationSummary, formatEvaluationTable } from '@tuneline/evaluation';

const DAY_MS = 86_400_000;
export const LIFECYCLE_MODEL = 'gpt-4o-mini-2024-07-18';
/** The simulated training close is this many days after the demo's start; the clock then moves past it. */
const CLOSES_IN_DAYS = 5;
const MOVE_DAYS = CLOSES_IN_DAYS + 1;

/**
 * A `MODEL_CATALOGUE_FILE` with dates near `now` (the demo's clock), so the demo assumes nothing about
 * the real dates: OpenAI stops training the model in 5 days and shuts it down in 20; Azure trains it for
 * another year.
 */
export function writeLifecycleCatalogue(
  path: string,
  now: Date,
): { trainingClosesAt: string; shutdownAt: string } {
  const day = (days: number) => utcDay(new Date(now.getTime() + days * DAY_MS));
  const dates = { trainingClosesAt: day(CLOSES_IN_DAYS), shutdownAt: day(20) };
  const source = 'npm run demo -- --lifecycle: simulated dates near the demo clock';
  writeFileSync(
    path,
    JSON.stringify(
      {
        [LIFECYCLE_MODEL]: {
          providers: {
            openai: { ...dates, successor: `azure:${LIFECYCLE_MODEL}`, source },
            azure: { trainingClosesAt: day(365), shutdownAt: day(545), source },
          },
        },
      },
      null,
      2,
    ),
  );
  return dates;
}

export interface LifecycleDemo {
  db: Db;
  licenseId: string;
  say(line?: string): void;
  stamp(): string;
  apiUrl(): string;
  licenseKey: string;
  fineTuneId: string;
  mailDir: string;
  dates: { trainingClosesAt: string; shutdownAt: string };
  /** The clock offset the demo started with (TUNELINE_CLOCK_OFFSET_MS, 0 without one). */
  baseOffsetMs: number;
  /** Restarts the workers and the API with the clock moved to `offsetMs`. */
  restart(offsetMs: number): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: the demo reads the API's JSON answers loosely
type Json = any;

async function api(ctx: LifecycleDemo, method: 'GET' | 'POST', path: string, body?: unknown) {
  const send = () =>
    fetch(`${ctx.apiUrl()}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ctx.licenseKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  // A kept-alive connection to the API from before its restart fails once: ask again on a new one.
  const res = await send().catch(() => new Promise((r) => setTimeout(r, 200)).then(send));
  return { status: res.status, json: (await res.json()) as Json };
}

/** The `.eml` files the notifier wrote, newest first, with their (unfolded) subjects and text. */
export function mails(dir: string): { path: string; subject: string; raw: string }[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.eml'))
      .map((f) => join(dir, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
      .map((path) => {
        const raw = readFileSync(path, 'utf8');
        const head = raw.slice(0, raw.search(/\r?\n\r?\n/)).replace(/\r?\n[ \t]+/g, ' ');
        // Quoted-printable soft line breaks undone, so a long model name reads whole.
        return { path, subject: /^Subject: (.*)$/m.exec(head)?.[1] ?? '', raw: raw.replace(/=\r?\n/g, '') };
      });
  } catch {
    return [];
  }
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const banners = async (ctx: LifecycleDemo) => {
  const notices = (await api(ctx, 'GET', '/v1/lifecycle/notices')).json;
  ctx.say(`  hub banners on ${notices.asOf.slice(0, 10)}:`);
  for (const n of notices.notices)
    ctx.say(`    [${n.events.map((e: Json) => `${e.event} ${e.state}`).join(', ')}] ${n.message}`);
};

/** Runs the lifecycle part; true when the migration ended with a new model. */
export async function runLifecycleDemo(ctx: LifecycleDemo): Promise<boolean> {
  const { say, stamp } = ctx;
  say(
    `\nLifecycle (simulated catalogue: ${LIFECYCLE_MODEL} at openai takes no new jobs from ${ctx.dates.trainingClosesAt}, shuts down ${ctx.dates.shutdownAt})`,
  );
  await api(ctx, 'POST', `/v1/fine-tunes/${ctx.fineTuneId}/activate`);
  const alias = await api(ctx, 'POST', '/v1/aliases/invoices', { fineTuneId: ctx.fineTuneId });
  say(`${stamp()} alias invoices → ${alias.json.alias?.model} (the app calls "invoices", not the ft: name)`);

  // The sweep (every second in the demo) e-mails the warning: 7 days or less before the close.
  const warning = await until('the lifecycle warning e-mail', 60_000, async () => {
    const sent = (await listLifecycleWarnings(ctx.db, ctx.licenseId)).find(
      (w) => w.event === 'training_closes' && w.status === 'sent',
    );
    return sent ? mails(ctx.mailDir).find((m) => m.raw.includes(`lifecycle-${sent.id}@`)) : undefined;
  });
  say(`${stamp()} notifier  warning e-mail: "${warning.subject}"`);
  say(`  ${warning.path}`);
  await banners(ctx);

  // Move the clock of every worker and the API past the close.
  const offset = ctx.baseOffsetMs + MOVE_DAYS * DAY_MS;
  say(
    `\n${stamp()} moving the clock ${MOVE_DAYS} days ahead (TUNELINE_CLOCK_OFFSET_MS=${offset}): restarting the workers and the API`,
  );
  await ctx.restart(offset);
  await banners(ctx);
  const refused = await api(ctx, 'POST', '/v1/fine-tune-requests', {
    requestId: `after-close-${Date.now()}`,
    documentStore: { configuration: 'invoices' },
    modelConfig: { systemPrompt: 'x', userPromptTemplate: '{{text}}' },
    baseModel: LIFECYCLE_MODEL,
  });
  say(
    `${stamp()} a new request on ${LIFECYCLE_MODEL} at openai: ${refused.status} ${refused.json.error?.message ?? ''}`,
  );

  // One call: the same documents and split, trained at Azure, evaluated against the old model.
  const started = await api(ctx, 'POST', `/v1/fine-tunes/${ctx.fineTuneId}/migrate`, {
    provider: 'azure',
    baseModel: LIFECYCLE_MODEL,
  });
  if (started.status !== 202) {
    say(`migration refused: ${started.status} ${JSON.stringify(started.json)}`);
    return false;
  }
  const id = started.json.id as string;
  say(
    `\n${stamp()} POST /v1/fine-tunes/${ctx.fineTuneId}/migrate {provider: azure, baseModel: ${LIFECYCLE_MODEL}}: migration ${id}`,
  );
  let stage = '';
  const done = await until('the migration', 5 * 60_000, async () => {
    const m = (await api(ctx, 'GET', `/v1/migrations/${id}`)).json;
    const now = `${m.stage}${m.newFineTune ? ` (fine-tune ${m.newFineTune.status})` : ''}`;
    if (now !== stage) {
      stage = now;
      say(`${stamp()} migration ${stage}`);
    }
    // deploying: promoted, and the Azure deployment provisions before the alias moves.
    return m.status === 'running' || m.status === 'deploying' ? undefined : m;
  });
  say('\nMigration');
  say(`  ${done.from.model} (${done.from.baseModel} at ${done.from.provider ?? 'openai'})`);
  say(`  → ${done.newFineTune?.model ?? '—'} (${done.target.baseModel} at ${done.target.provider})`);
  say(`  status ${done.status}, rule ${done.promote}, decision ${done.decision ?? '—'}`);
  say(`  reason: ${done.reason}`);
  if (done.aliases.length) say(`  aliases moved: ${done.aliases.map((a: Json) => a.name).join(', ')}`);
  const served = (await api(ctx, 'GET', '/v1/aliases/invoices')).json;
  say(`  alias invoices now serves ${served.model}`);
  if (done.newFineTune) {
    const e = (await api(ctx, 'GET', `/v1/fine-tunes/${done.newFineTune.fineTuneId}/evaluation?limit=1`))
      .json;
    if (e.summary) {
      const table = formatEvaluationTable(e.summary as EvaluationSummary);
      say('  the new model against the old one (champion) on the same testing invoices:');
      for (const line of table.split('\n')) say(line ? `    ${line}` : '');
    }
    const mail = await until("the new model's e-mail", 60_000, async () =>
      mails(ctx.mailDir).find((m) => m.raw.includes(done.newFineTune.fineTuneId)),
    );
    say(`  e-mail: ${mail.path}`);
  }
  return done.status === 'succeeded';
}
