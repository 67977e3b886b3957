import { findLicense } from '@tuneline/db';
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
