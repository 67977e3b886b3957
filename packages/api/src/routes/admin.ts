import { randomUUID } from 'node:crypto';
import { findLicense, insertLicense, setLicenseProvider } from '@tuneline/db';
import { getBalance, grantCredits, LedgerConflictError } from '@tuneline/ledger';
import type { ApiDeps } from '../app.ts';
import { createApiKey } from '../auth.ts';
import { HttpError, orNotFound, type RouteTable } from '../http.ts';
import { routeGroup } from '../route-group.ts';
import {
  balanceSchema,
  createdKeySchema,
  createLicenseSchema,
  grantSchema,
  licenseParams,
  licenseProviderSchema,
  licenseSchema,
} from '../schemas.ts';
import { licenseView } from '../views.ts';

const E400 = 'invalid request';
const E404 = 'no such license';

async function requireLicense(deps: ApiDeps, id: string): Promise<void> {
  orNotFound(await findLicense(deps.db, id), 'license');
}

export function registerAdminRoutes(table: RouteTable, deps: ApiDeps): void {
  const routes = routeGroup(table, 'admin', 'admin');
  routes.add(
    {
      method: 'POST',
      url: '/v1/admin/licenses',
      summary: 'Create a license (and its ledger account)',
      body: createLicenseSchema,
      responses: {
        201: { description: 'created', schema: licenseSchema },
        400: E400,
        409: 'a license with this id exists',
      },
    },
    async ({ body }) => {
      const id = body.id ?? `lic-${randomUUID()}`;
      const license = await insertLicense(deps.db, {
        id,
        name: body.name,
        ...(body.provider ? { provider: body.provider } : {}),
      });
      if (!license)
        throw new HttpError(409, `license "${id}" already exists`, [
          { field: 'id', message: 'already exists' },
        ]);
      return licenseView(license);
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/admin/licenses/:id/provider',
      summary: "Name the license's provider (null: the deployment default); its new requests train there",
      params: licenseParams,
      body: licenseProviderSchema,
      responses: {
        200: { description: 'the license', schema: licenseSchema },
        400: E400,
        404: E404,
      },
    },
    async ({ params, body }) =>
      licenseView(orNotFound(await setLicenseProvider(deps.db, params.id, body.provider), 'license')),
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/admin/licenses/:id/keys',
      summary: 'Create an API key for a license. The key is returned once; only its SHA-256 is stored.',
      params: licenseParams,
      responses: {
        201: { description: 'the new key', schema: createdKeySchema },
        400: E400,
        404: E404,
      },
    },
    async ({ params }) => {
      await requireLicense(deps, params.id);
      const created = await createApiKey(deps.db, params.id);
      return { id: created.id, licenseId: params.id, key: created.key, keyPrefix: created.keyPrefix };
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/admin/licenses/:id/credits',
      summary: 'Grant credits to a license (idempotent per grantId)',
      params: licenseParams,
      body: grantSchema,
      responses: {
        200: { description: 'the balance after the grant', schema: balanceSchema },
        400: E400,
        404: E404,
        409: 'grantId already used with other content',
      },
    },
    async ({ params, body }) => {
      await requireLicense(deps, params.id);
      try {
        await deps.db.transaction().execute((tx) =>
          grantCredits(tx, {
            grantId: body.grantId,
            licenseId: params.id,
            amount: BigInt(body.amount),
            memo: body.memo,
          }),
        );
      } catch (err) {
        if (err instanceof LedgerConflictError)
          throw new HttpError(409, err.message, [{ field: 'grantId', message: err.message }]);
        throw err;
      }
      return { licenseId: params.id, ...(await getBalance(deps.db, params.id)) };
    },
  );
}
