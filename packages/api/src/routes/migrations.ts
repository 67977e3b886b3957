import { type FineTuneRecord, findMigration, listMigratableFineTunes, listMigrations } from '@tuneline/db';
import type { z } from 'zod';
import type { ApiDeps } from '../app.ts';
import { actorOf } from '../auth.ts';
import { HttpError, orNotFound, type RouteTable } from '../http.ts';
import { atFromProvider, type BulkResult, startBulkMigration, startMigration } from '../migration.ts';
import {
  adminBulkMigrateBodySchema,
  adminBulkMigrationSchema,
  bulkMigrateBodySchema,
  bulkMigrationSchema,
  migrateBodySchema,
  migrationListSchema,
  migrationSchema,
  migrationView,
} from '../migration-schemas.ts';
import { ownFineTune } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import { idParams } from '../schemas.ts';

// One-call migration (issue 21.4): docs/LIFECYCLE.md, "One-call migration".

const E400 = 'a bad parameter or target, named in `fields`';
const E402 = "not enough credits for the new training's estimate plus margin; `credits` gives the amounts";
const E404 = 'no such fine-tune for this license';

const idempotencyKeyOf = (header: unknown): string | null => {
  if (header === undefined) return null;
  if (typeof header !== 'string' || header.length === 0 || header.length > 255)
    throw new HttpError(400, 'Idempotency-Key must be 1-255 characters', [
      { field: 'Idempotency-Key', message: 'must be 1-255 characters' },
    ]);
  return header;
};

const bulkView = (r: BulkResult) => ({
  data: r.data.map(migrationView),
  created: r.created,
  estimate: r.estimate.toString(),
  skipped: r.skipped,
});

export function registerMigrationRoutes(table: RouteTable, deps: ApiDeps): void {
  const routes = routeGroup(table, 'license', 'migrations');
  routes.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/migrate',
      summary:
        "Migrate a trained fine-tune to another base model or provider in one call: its request's documents " +
        '(or document-store source) and split are rebuilt for the target (new estimate; 402 when the credits ' +
        'do not cover it), trained there, evaluated against this model on the same testing documents, and the ' +
        "model's aliases are pointed at the new one when `promote` holds. This fine-tune is never changed. The " +
        'same fine-tune and target is the same migration; with an Idempotency-Key header, the key is.',
      params: idParams,
      body: migrateBodySchema,
      responses: {
        202: { description: 'started', schema: migrationSchema },
        200: {
          description: 'this migration exists already (same target, or same Idempotency-Key)',
          schema: migrationSchema,
        },
        400: E400,
        402: E402,
        404: E404,
        409: 'the fine-tune has no trained model, or its request is not stored in full',
        422: 'this Idempotency-Key was used for another migration',
      },
    },
    async ({ licenseId, caller, params, body, request, reply }) => {
      const fineTune = await ownFineTune(deps, licenseId, params.id);
      const { migration, created } = await startMigration(deps, {
        fineTune,
        target: body,
        idempotencyKey: idempotencyKeyOf(request.headers['idempotency-key']),
        actor: actorOf(caller),
      });
      reply.code(created ? 202 : 200);
      return migrationView(migration);
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/migrate',
      summary:
        "Migrate every trained fine-tune of the license on a base model (optionally at one provider, or only the active ones) to a target, each as POST /v1/fine-tunes/{id}/migrate would; the new migrations' estimates are checked together (402 before any starts), earlier migrations to the same target are returned, not repeated",
      body: bulkMigrateBodySchema,
      responses: {
        200: { description: 'the migrations of the selection', schema: bulkMigrationSchema },
        400: E400,
        402: E402,
      },
    },
    async ({ licenseId, caller, body }) => {
      const { fromBaseModel, fromProvider, activeOnly, ...target } = body;
      const fineTunes = await listMigratableFineTunes(deps.db, {
        licenseId,
        baseModel: fromBaseModel,
        activeOnly,
      });
      const result = await startBulkMigration(deps, {
        licenseId,
        fineTunes: atFromProvider(deps, fineTunes, fromProvider),
        target,
        actor: actorOf(caller),
      });
      return bulkView(result);
    },
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/fine-tunes/:id/migrations',
      summary: 'The migrations of a fine-tune: those from it, and the one that trained it; newest first',
      params: idParams,
      responses: {
        200: { description: 'newest first', schema: migrationListSchema },
        400: E400,
        404: E404,
      },
    },
    async ({ licenseId, params }) => {
      await ownFineTune(deps, licenseId, params.id);
      const rows = await listMigrations(deps.db, licenseId, { fineTuneId: params.id });
      return { data: rows.map(migrationView) };
    },
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/migrations',
      summary: "The license's migrations, newest first (at most 500)",
      responses: { 200: { description: 'newest first', schema: migrationListSchema } },
    },
    async ({ licenseId }) => ({ data: (await listMigrations(deps.db, licenseId)).map(migrationView) }),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/migrations/:id',
      summary:
        'One migration: from, target, where its new model is (request, dataset, fine-tune), and once it ended the decision, why, and the aliases moved',
      params: idParams,
      responses: {
        200: { description: 'the migration', schema: migrationSchema },
        400: E400,
        404: 'no such migration for this license',
      },
    },
    async ({ licenseId, params }) =>
      migrationView(orNotFound(await findMigration(deps.db, licenseId, params.id), 'migration')),
  );

  routeGroup(table, 'admin', 'admin').add(
    {
      method: 'POST',
      url: '/v1/admin/migrations',
      summary:
        'The bulk migration for every license (or one): per license as POST /v1/fine-tunes/migrate; a license whose credits do not cover its estimate is reported as refused and the others go ahead',
      body: adminBulkMigrateBodySchema,
      responses: {
        200: { description: 'per license', schema: adminBulkMigrationSchema },
        400: E400,
      },
    },
    async ({ body, caller }) => {
      const { fromBaseModel, fromProvider, activeOnly, licenseId, ...target } = body;
      const all = await listMigratableFineTunes(deps.db, {
        baseModel: fromBaseModel,
        activeOnly,
        limit: 10_000,
        ...(licenseId ? { licenseId } : {}),
      });
      const byLicense = new Map<string, FineTuneRecord[]>();
      for (const f of atFromProvider(deps, all, fromProvider))
        byLicense.set(f.licenseId, [...(byLicense.get(f.licenseId) ?? []), f]);
      const licenses: z.infer<typeof adminBulkMigrationSchema>['licenses'] = [];
      for (const [license, fineTunes] of byLicense) {
        try {
          const result = await startBulkMigration(deps, {
            licenseId: license,
            fineTunes,
            target,
            actor: actorOf(caller),
          });
          licenses.push({ licenseId: license, ...bulkView(result), refused: null });
        } catch (err) {
          if (!(err instanceof HttpError) || err.status !== 402) throw err;
          licenses.push({
            licenseId: license,
            data: [],
            created: 0,
            estimate: '0',
            skipped: [],
            refused: err.message,
          });
        }
      }
      return { licenses };
    },
  );
}
