import {
  type EvaluationRunRecord,
  findDataset,
  getEvaluationRunByFineTune,
  listEvaluationAnswers,
  listMigrations,
  pageEvaluationAnswers,
} from '@tuneline/db';
import { type EvaluationSummary, evaluationTable } from '@tuneline/evaluation';
import { evaluationCharges } from '@tuneline/ledger';
import type { ApiDeps } from '../app.ts';
import { sendCsv, wantsCsv } from '../csv.ts';
import {
  answerView,
  datasetEvaluationEstimate,
  evaluationCsv,
  evaluationQuerySchema,
  evaluationSchema,
} from '../evaluation-views.ts';
import type { RouteTable } from '../http.ts';
import { migrationView } from '../migration-schemas.ts';
import { ownFineTune } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import { idParams } from '../schemas.ts';
import { fineTuneVersionView } from './promotion.ts';

/** Why a fine-tune has no evaluation run. */
async function noRunReason(deps: ApiDeps, fineTune: { status: string; datasetId: string }): Promise<string> {
  if (fineTune.status !== 'succeeded')
    return `the fine-tune is ${fineTune.status}: only a succeeded one is evaluated`;
  const dataset = await findDataset(deps.db, fineTune.datasetId);
  if (dataset) {
    const estimate = datasetEvaluationEstimate(dataset);
    if (estimate.reason) return estimate.reason;
  }
  return 'not evaluated (settlement pending, or evaluation turned off)';
}

/** The migration that trained this fine-tune (issue 21.4), if any. */
async function trainedByMigration(deps: ApiDeps, fineTune: { id: string; licenseId: string }) {
  const rows = await listMigrations(deps.db, fineTune.licenseId, { fineTuneId: fineTune.id });
  const trained = rows.find((m) => m.progress.fineTuneId === fineTune.id);
  return trained ? migrationView(trained) : null;
}

export function registerEvaluationRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'fine-tunes').add(
    {
      method: 'GET',
      url: '/v1/fine-tunes/:id/evaluation',
      summary:
        'The held-out evaluation of a fine-tune: per-field table (base, champion, fine-tuned), verdicts, and per-example answers with paging (`offset`, `limit`); `?format=csv` gives one line per example, model and field',
      params: idParams,
      query: evaluationQuerySchema,
      responses: {
        200: {
          description: 'the evaluation (status `none` with the reason when there is none)',
          schema: evaluationSchema,
        },
        400: 'invalid request',
        404: 'no such fine-tune for this license',
      },
    },
    async ({ licenseId, params, query, request, reply }) => {
      const fineTune = await ownFineTune(deps, licenseId, params.id);
      const run: EvaluationRunRecord | undefined = await getEvaluationRunByFineTune(deps.db, fineTune.id);
      if (wantsCsv(query.format, request)) {
        const answers = run ? await listEvaluationAnswers(deps.db, run.id) : [];
        return sendCsv(reply, `tuneline-evaluation-${fineTune.id}.csv`, evaluationCsv(answers));
      }
      const page = run
        ? await pageEvaluationAnswers(deps.db, run.id, { offset: query.offset, limit: query.limit })
        : { rows: [], total: 0 };
      const charged = await evaluationCharges(deps.db, fineTune.id);
      const summary = run?.status === 'succeeded' ? (run.summary as EvaluationSummary) : null;
      const next = query.offset + page.rows.length;
      return {
        fineTuneId: fineTune.id,
        status: run?.status ?? 'none',
        reason: run ? run.reason : await noRunReason(deps, fineTune),
        models: run?.models ?? null,
        examplesTotal: run?.examplesTotal ?? null,
        examplesEvaluated: run?.exampleIds?.length ?? 0,
        charged: { credits: charged.credits.toString(), tokens: charged.tokens.toString() },
        table: summary ? evaluationTable(summary) : null,
        summary,
        profileVersion: await fineTuneVersionView(deps, fineTune.id),
        migration: await trainedByMigration(deps, fineTune),
        rows: page.rows.map(answerView),
        page: {
          offset: query.offset,
          limit: query.limit,
          total: page.total,
          nextOffset: next < page.total ? next : null,
        },
      };
    },
  );
}
