import {
  isTokenCountEstimate,
  lifecycleOf,
  NOTICE_DAYS,
  shutDown,
  trainingClosed,
  trainingOffers,
} from '@tuneline/dataset';
import { listAliases, listLicenseBaseModels } from '@tuneline/db';
import { z } from 'zod';
import type { ApiDeps } from '../app.ts';
import type { RouteTable } from '../http.ts';
import { lifecycleNotices, lifecycleNoticesSchema } from '../lifecycle-notices.ts';
import { routeGroup } from '../route-group.ts';
import { modelLifecycleSchema } from '../schemas.ts';

// The catalogue's base models with each provider's dates (issue 21.2), and the license's lifecycle
// notices (21.3): what the hub's banners show. Statements: @tuneline/db.

const baseModelsSchema = z
  .object({
    asOf: z.string().describe("the API's clock when `trainingClosed` and `shutDown` were judged"),
    data: z.array(
      z.object({
        name: z.string(),
        fineTunable: z.boolean(),
        provider: z.string().describe("the model's own provider (what a request without one trains at)"),
        tokenCount: z.enum(['exact', 'estimate']),
        providers: z.array(
          z.object({
            provider: z.string(),
            creditsPerMillionTrainingTokens: z.string(),
            hostingCreditsPerHour: z
              .string()
              .nullable()
              .describe('a deployed fine-tune there, per started hour'),
            trainingClosed: z.boolean().describe('on or after trainingClosesAt: no new jobs there'),
            shutDown: z.boolean().describe('on or after shutdownAt: its fine-tunes there serve nothing'),
            lifecycle: modelLifecycleSchema,
          }),
        ),
      }),
    ),
  })
  .meta({ id: 'BaseModels' });

export function registerLifecycleRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'activation').add(
    {
      method: 'GET',
      url: '/v1/models/base',
      summary:
        "The catalogue's base models: each provider that trains one, its price and its own lifecycle dates " +
        '(training closes, shutdown, successor, source)',
      responses: { 200: { description: 'by name', schema: baseModelsSchema } },
    },
    async () => {
      const now = deps.clock.now();
      return {
        asOf: now.toISOString(),
        data: Object.values(deps.catalogue)
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((m) => ({
            name: m.name,
            fineTunable: m.fineTunable,
            provider: m.provider,
            tokenCount: isTokenCountEstimate(m) ? ('estimate' as const) : ('exact' as const),
            providers: trainingOffers(m).map((o) => ({
              provider: o.provider,
              creditsPerMillionTrainingTokens: o.creditsPerMillionTrainingTokens.toString(),
              hostingCreditsPerHour: o.hostingCreditsPerHour?.toString() ?? null,
              trainingClosed: trainingClosed(m, o.provider, now),
              shutDown: shutDown(m, o.provider, now),
              lifecycle: lifecycleOf(m, o.provider),
            })),
          })),
      };
    },
  );

  routeGroup(table, 'license', 'aliases').add(
    {
      method: 'GET',
      url: '/v1/lifecycle/notices',
      summary:
        'Base models (per provider) the license has fine-tunes on, and aliases, whose training close or ' +
        `shutdown is within ${NOTICE_DAYS} days or past, with the date and the successor (the hub's banners)`,
      responses: { 200: { description: 'most urgent first', schema: lifecycleNoticesSchema } },
    },
    async ({ licenseId }) => {
      const now = deps.clock.now();
      const [baseModels, aliases] = await Promise.all([
        listLicenseBaseModels(deps.db, licenseId),
        listAliases(deps.db, licenseId),
      ]);
      return {
        asOf: now.toISOString(),
        noticeDays: NOTICE_DAYS,
        notices: lifecycleNotices(deps.catalogue, baseModels, aliases, now),
      };
    },
  );
}
