import { findLicense, inferenceUsageByDay } from '@tuneline/db';
import { getBalance, type UsageEntry, usageLog } from '@tuneline/ledger';
import type { ApiDeps } from '../app.ts';
import { csvText, sendCsv, wantsCsv } from '../csv.ts';
import { HttpError, orNotFound, type RouteTable, toJson } from '../http.ts';
import { estimateTraining } from '../pricing.ts';
import { routeGroup } from '../route-group.ts';
import {
  balanceSchema,
  estimateQuerySchema,
  estimateSchema,
  licenseSchema,
  modelUsageQuerySchema,
  modelUsageSchema,
  usageLogSchema,
  usageQuerySchema,
} from '../schemas.ts';
import { licenseView } from '../views.ts';

const CSV_COLUMNS = [
  'at',
  'kind',
  'transferId',
  'fineTuneId',
  'model',
  'tokens',
  'amount',
  'posted',
  'available',
  'memo',
] as const;

export const usageCsv = (entries: UsageEntry[]): string =>
  csvText(CSV_COLUMNS, entries, {
    text: (v) => (v instanceof Date ? v.toISOString() : String(v)),
    negativeNumber: /^-\d+$/,
  });

export function registerCreditRoutes(table: RouteTable, deps: ApiDeps): void {
  const routes = routeGroup(table, 'license', 'credits');
  routes.add(
    {
      method: 'GET',
      url: '/v1/license',
      summary: 'The license the key belongs to (the hub signs in with it)',
      responses: { 200: { description: 'the license', schema: licenseSchema } },
    },
    async ({ licenseId }) => licenseView(orNotFound(await findLicense(deps.db, licenseId), 'license')),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/credits',
      summary: 'Credit balance: posted, held by reservations, and available',
      responses: { 200: { description: 'the balance', schema: balanceSchema } },
    },
    async ({ licenseId }) => ({ licenseId, ...(await getBalance(deps.db, licenseId)) }),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/credits/usage',
      summary: 'The credit usage log with running balance (`?format=csv` or `Accept: text/csv` for CSV)',
      query: usageQuerySchema,
      responses: {
        200: { description: 'the log in write order', schema: usageLogSchema },
        400: 'invalid query',
      },
    },
    async ({ licenseId, query, request, reply }) => {
      const entries = await usageLog(deps.db, licenseId);
      if (wantsCsv(query.format, request))
        return sendCsv(reply, `tuneline-usage-${licenseId}.csv`, usageCsv(entries));
      return { licenseId, data: toJson(entries) };
    },
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/credits/usage/models',
      summary:
        'Inference per model and UTC day over the last `days` days (default 30): calls, prompt and completion tokens, credits',
      query: modelUsageQuerySchema,
      responses: {
        200: {
          description: 'per day and model, oldest first, and totals per model',
          schema: modelUsageSchema,
        },
        400: 'invalid query',
      },
    },
    async ({ licenseId, query }) => {
      const days = query.days ?? 30;
      const today = new Date(new Date().toISOString().slice(0, 10));
      const since = new Date(today.getTime() - (days - 1) * 86_400_000);
      const rows = await inferenceUsageByDay(deps.db, licenseId, since);
      const totals = new Map<string, (typeof rows)[number]>();
      for (const r of rows) {
        const t = totals.get(r.fineTuneId);
        if (!t) totals.set(r.fineTuneId, { ...r });
        else {
          t.calls += r.calls;
          t.promptTokens += r.promptTokens;
          t.completionTokens += r.completionTokens;
          t.credits += r.credits;
        }
      }
      return toJson({
        licenseId,
        from: since.toISOString().slice(0, 10),
        to: today.toISOString().slice(0, 10),
        days: rows,
        models: [...totals.values()]
          .sort((a, b) => (b.credits > a.credits ? 1 : b.credits < a.credits ? -1 : 0))
          .map(({ day: _day, ...t }) => t),
      });
    },
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/pricing/estimate',
      summary:
        'Training credits for a base model and a token count (tokens of one pass; epochs given, or resolved like `auto` from `examples`, else 3), plus the inference prices',
      query: estimateQuerySchema,
      responses: {
        200: { description: 'the estimate', schema: estimateSchema },
        400: 'invalid query or unknown model',
      },
    },
    async ({ query }) => {
      const estimate = estimateTraining(deps.catalogue, query);
      if ('error' in estimate)
        throw new HttpError(400, `model: ${estimate.error}`, [{ field: 'model', message: estimate.error }]);
      return estimate;
    },
  );
}
