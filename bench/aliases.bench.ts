// Gateway model resolution with aliases (issue 21.1): the one statement `resolveModel` now runs
// (`findActiveFineTuneByModelOrAlias`: ft: name UNION ALL alias joined to its fine-tune), called with an
// ft: name and with an alias, against the statement it replaced (`findActiveFineTuneByModel`, ft: names
// only) as the same-run baseline. 40 licenses × 25 fine-tunes (half active) and 5 aliases each; 8 at a
// time over one pool. Target: both new lookups ≥ 0.7× the baseline's rate (one round trip each, index
// lookups only; the baseline is the floor of what a lookup costs here).
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { findActiveFineTuneByModel, findActiveFineTuneByModelOrAlias, pointAlias } from '@tuneline/db';
import { sql } from 'kysely';
import { makeDataset, makeFineTune, makeLicense } from '../test/api/fixtures.ts';
import { requireDatabaseUrl, scratchDatabase } from './support.ts';

const CONCURRENCY = 8;
const LOOKUPS = Number(process.env.ALIASES_BENCH_LOOKUPS ?? 6_000);
const LICENSES = 40;
const FINE_TUNES = 25;
const TARGET_RATIO = 0.7;

const baseUrl = requireDatabaseUrl('aliases.bench');

const { db, drop } = await scratchDatabase(baseUrl, 'aliases', CONCURRENCY + 2);
try {
  const models: { licenseId: string; model: string }[] = [];
  const aliases: { licenseId: string; alias: string; model: string }[] = [];
  for (let l = 0; l < LICENSES; l++) {
    const licenseId = `bench-${l}`;
    await makeLicense(db, licenseId, 0n);
    const datasetId = await makeDataset(db, licenseId, 'uploaded');
    const active: { id: string; model: string }[] = [];
    for (let f = 0; f < FINE_TUNES; f++) {
      const model = `ft:gpt-4o-mini-2024-07-18:bench:${l}-${f}:${randomUUID().slice(0, 8)}`;
      const id = await makeFineTune(db, licenseId, datasetId, { model, active: f % 2 === 0 });
      if (f % 2 === 0) {
        active.push({ id, model });
        models.push({ licenseId, model });
      }
    }
    for (let a = 0; a < 5; a++) {
      const target = active[a] as { id: string; model: string };
      await pointAlias(db, { licenseId, name: `use-${a}`, fineTuneId: target.id, actor: 'system' });
      aliases.push({ licenseId, alias: `use-${a}`, model: target.model });
    }
  }
  await sql`ANALYZE`.execute(db);

  async function rate(task: (i: number) => Promise<void>): Promise<number> {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < LOOKUPS; i = next++) await task(i);
      }),
    );
    return LOOKUPS / ((performance.now() - started) / 1000);
  }
  const pick = <T>(list: T[], i: number) => list[(i * 7919) % list.length] as T;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`aliases.bench: wrong resolution (${what})`);
  };
  const baseline = () =>
    rate(async (i) => {
      const m = pick(models, i);
      check(
        (await findActiveFineTuneByModel(db, m.licenseId, m.model))?.fineTunedModel === m.model,
        'baseline',
      );
    });
  const byName = () =>
    rate(async (i) => {
      const m = pick(models, i);
      const r = await findActiveFineTuneByModelOrAlias(db, m.licenseId, m.model);
      check(r?.fineTunedModel === m.model && r.viaAlias === null, 'ft: name');
    });
  const byAlias = () =>
    rate(async (i) => {
      const a = pick(aliases, i);
      const r = await findActiveFineTuneByModelOrAlias(db, a.licenseId, a.alias);
      check(r?.fineTunedModel === a.model && r.viaAlias === a.alias, 'alias');
    });

  await baseline(); // warm-up: connections, plans
  // Interleaved rounds, so other load on the machine falls on all three alike; the best round each.
  const best = { baseline: 0, name: 0, alias: 0 };
  for (let round = 0; round < 3; round++) {
    best.baseline = Math.max(best.baseline, await baseline());
    best.name = Math.max(best.name, await byName());
    best.alias = Math.max(best.alias, await byAlias());
  }
  const ratio = (x: number) => (x / best.baseline).toFixed(2);
  console.log(
    `aliases.bench: ${LOOKUPS} lookups per run, ${CONCURRENCY} at a time, load ${loadavg()[0]?.toFixed(1)}`,
  );
  console.log(`  baseline (ft: names only, the old statement): ${best.baseline.toFixed(0)}/s`);
  console.log(
    `  resolveModel by ft: name:                     ${best.name.toFixed(0)}/s (${ratio(best.name)}×)`,
  );
  console.log(
    `  resolveModel by alias:                        ${best.alias.toFixed(0)}/s (${ratio(best.alias)}×)`,
  );
  for (const [what, value] of [
    ['ft: name', best.name],
    ['alias', best.alias],
  ] as const)
    if (value / best.baseline < TARGET_RATIO)
      console.log(`  TARGET MISSED: ${what} at ${ratio(value)}× the baseline (target ≥ ${TARGET_RATIO}×)`);
} finally {
  await drop();
}
