import {
  type EvaluationRunRecord,
  findDataset,
  getEvaluationRunByFineTune,
  getFineTune,
  listEvaluationAnswers,
  pageEvaluationAnswers,
} from '@tuneline/db';
import { type EvaluationSummary, evaluationTable } from '@tuneline/evaluation';
import { evaluationCharges } from '@tuneline/ledger';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import {
  answerView,
  datasetEvaluationEstimate,
  evaluationCsv,
  evaluationQuerySchema,
  evaluationSchema,
} from '../evaluation-views.ts';
import { errorSchema, notFound, type RouteTable } from '../http.ts';
import { idParams } from '../schemas.ts';
import { fineTuneVersionView } from './promotion.ts';

const E401 = { description: 'missing or invalid API key', schema: errorSchema };

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

export function registerEvaluationRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'GET',
      url: '/v1/fine-tunes/:id/evaluation',
      auth: 'license',
      tag: 'fine-tunes',
      summary:
        'The held-out evaluation of a fine-tune: per-field table (base, champion, fine-tuned), verdicts, and per-example answers with paging (`offset`, `limit`); `?format=csv` gives one line per example, model and field',
      params: idParams,
      query: evaluationQuerySchema,
      responses: {
        200: {
          description: 'the evaluation (status `none` with the reason when there is none)',
          schema: evaluationSchema,
        },
        400: { description: 'invalid request', schema: errorSchema },
        401: E401,
        404: { description: 'no such fine-tune for this license', schema: errorSchema },
      },
    },
    async ({ caller, params, query, request, reply }) => {
      const fineTune = await getFineTune(deps.db, params.id);
      if (!fineTune || fineTune.licenseId !== licenseOf(caller)) throw notFound('fine-tune');
      const run: EvaluationRunRecord | undefined = await getEvaluationRunByFineTune(deps.db, fineTune.id);
      const wantsCsv =
        query.format === 'csv' ||
        (query.format === undefined && /\btext\/csv\b/.test(request.headers.accept ?? ''));
      if (wantsCsv) {
        const answers = run ? await listEvaluationAnswers(deps.db, run.id) : [];
        return reply
          .code(200)
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="tuneline-evaluation-${fineTune.id}.csv"`)
          .send(evaluationCsv(answers));
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
