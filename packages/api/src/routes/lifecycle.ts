import { NOTICE_DAYS } from '@tuneline/dataset';
import { listAliases, listLicenseBaseModels } from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { errorSchema, type RouteTable } from '../http.ts';
import { lifecycleNotices, lifecycleNoticesSchema } from '../lifecycle-notices.ts';

// The license's lifecycle notices (issue 21.3): what the hub's banners show. Statements: @tuneline/db.

export function registerLifecycleRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'GET',
      url: '/v1/lifecycle/notices',
      auth: 'license',
      tag: 'aliases',
      summary:
        'Base models (per provider) the license has fine-tunes on, and aliases, whose training close or ' +
        `shutdown is within ${NOTICE_DAYS} days or past, with the date and the successor (the hub's banners)`,
      responses: {
        200: { description: 'most urgent first', schema: lifecycleNoticesSchema },
        401: { description: 'missing or invalid API key', schema: errorSchema },
      },
    },
    async ({ caller }) => {
      const licenseId = licenseOf(caller);
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
