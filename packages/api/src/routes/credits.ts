import { findLicense, inferenceUsageByDay } from '@tuneline/db';
import { getBalance, type UsageEntry, usageLog } from '@tuneline/ledger';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { errorSchema, HttpError, notFound, type RouteTable, toJson } from '../http.ts';
import { estimateTraining } from '../pricing.ts';
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

const E401 = { description: 'missing or invalid API key', schema: errorSchema };

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

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = value instanceof Date ? value.toISOString() : String(value);
  // Quote when needed; a leading = + - @ is neutralised so spreadsheets never run it as a formula.
  const safe = /^[=+@\t\r]/.test(text) || (/^-/.test(text) && !/^-\d+$/.test(text)) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function usageCsv(entries: UsageEntry[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const e of entries) lines.push(CSV_COLUMNS.map((c) => csvCell(e[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function registerCreditRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'GET',
      url: '/v1/license',
      auth: 'license',
      tag: 'credits',
      summary: 'The license the key belongs to (the hub signs in with it)',
      responses: { 200: { description: 'the license', schema: licenseSchema }, 401: E401 },
    },
    async ({ caller }) => {
      const license = await findLicense(deps.db, licenseOf(caller));
      if (!license) throw notFound('license');
      return licenseView(license);
    },
  );

  table.add(
    {
      method: 'GET',
      url: '/v1/credits',
      auth: 'license',
      tag: 'credits',
      summary: 'Credit balance: posted, held by reservations, and available',
      responses: { 200: { description: 'the balance', schema: balanceSchema }, 401: E401 },
    },
    async ({ caller }) => {
      const licenseId = licenseOf(caller);
      return { licenseId, ...(await getBalance(deps.db, licenseId)) };
    },
  );

  table.add(
    {
      method: 'GET',
      url: '/v1/credits/usage',
      auth: 'license',
      tag: 'credits',
      summary: 'The credit usage log with running balance (`?format=csv` or `Accept: text/csv` for CSV)',
      query: usageQuerySchema,
      responses: {
        200: { description: 'the log in write order', schema: usageLogSchema },
        400: { description: 'invalid query', schema: errorSchema },
        401: E401,
      },
    },
    async ({ caller, query, request, reply }) => {
      const licenseId = licenseOf(caller);
      const entries = await usageLog(deps.db, licenseId);
      const wantsCsv =
        query.format === 'csv' ||
        (query.format === undefined && /\btext\/csv\b/.test(request.headers.accept ?? ''));
      if (wantsCsv) {
        return reply
          .code(200)
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="tuneline-usage-${licenseId}.csv"`)
          .send(usageCsv(entries));
      }
      return { licenseId, data: toJson(entries) };
    },
  );

  table.add(
    {
      method: 'GET',
      url: '/v1/credits/usage/models',
      auth: 'license',
      tag: 'credits',
      summary:
        'Inference per model and UTC day over the last `days` days (default 30): calls, prompt and completion tokens, credits',
      query: modelUsageQuerySchema,
      responses: {
        200: {
          description: 'per day and model, oldest first, and totals per model',
          schema: modelUsageSchema,
        },
        400: { description: 'invalid query', schema: errorSchema },
        401: E401,
      },
    },
    async ({ caller, query }) => {
      const licenseId = licenseOf(caller);
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

  table.add(
    {
      method: 'GET',
      url: '/v1/pricing/estimate',
      auth: 'license',
      tag: 'credits',
      summary:
        'Training credits for a base model and a token count (tokens of one pass; epochs given, or resolved like `auto` from `examples`, else 3), plus the inference prices',
      query: estimateQuerySchema,
      responses: {
        200: { description: 'the estimate', schema: estimateSchema },
        400: { description: 'invalid query or unknown model', schema: errorSchema },
        401: E401,
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
