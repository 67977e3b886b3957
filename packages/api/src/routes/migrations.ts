import {
  type FineTuneRecord,
  findMigration,
  getFineTune,
  listMigratableFineTunes,
  listMigrations,
} from '@tuneline/db';
import type { z } from 'zod';
import type { ApiDeps } from '../app.ts';
import { actorOf, licenseOf } from '../auth.ts';
import { errorSchema, HttpError, notFound, type RouteTable } from '../http.ts';
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
import { idParams } from '../schemas.ts';

// One-call migration (issue 21.4): docs/LIFECYCLE.md, "One-call migration".

const E400 = { description: 'a bad parameter or target, named in `fields`', schema: errorSchema };
const E401 = { description: 'missing or invalid API key', schema: errorSchema };
const E402 = {
  description: "not enough credits for the new training's estimate plus margin; `credits` gives the amounts",
  schema: errorSchema,
};

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
  const ownFineTune = async (licenseId: string, id: string): Promise<FineTuneRecord> => {
    const row = await getFineTune(deps.db, id);
    if (!row || row.licenseId !== licenseId) throw notFound('fine-tune');
    return row;
  };

  table.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/migrate',
      auth: 'license',
      tag: 'migrations',
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
        401: E401,
        402: E402,
        404: { description: 'no such fine-tune for this license', schema: errorSchema },
        409: {
          description: 'the fine-tune has no trained model, or its request is not stored in full',
          schema: errorSchema,
        },
        422: { description: 'this Idempotency-Key was used for another migration', schema: errorSchema },
      },
    },
    async ({ caller, params, body, request, reply }) => {
      const licenseId = licenseOf(caller);
      const fineTune = await ownFineTune(licenseId, params.id);
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

  table.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/migrate',
      auth: 'license',
      tag: 'migrations',
      summary:
        "Migrate every trained fine-tune of the license on a base model (optionally at one provider, or only the active ones) to a target, each as POST /v1/fine-tunes/{id}/migrate would; the new migrations' estimates are checked together (402 before any starts), earlier migrations to the same target are returned, not repeated",
      body: bulkMigrateBodySchema,
      responses: {
        200: { description: 'the migrations of the selection', schema: bulkMigrationSchema },
        400: E400,
        401: E401,
        402: E402,
      },
    },
    async ({ caller, body }) => {
      const licenseId = licenseOf(caller);
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

  table.add(
    {
      method: 'GET',
      url: '/v1/fine-tunes/:id/migrations',
      auth: 'license',
      tag: 'migrations',
      summary: 'The migrations of a fine-tune: those from it, and the one that trained it; newest first',
      params: idParams,
      responses: {
        200: { description: 'newest first', schema: migrationListSchema },
        400: E400,
        401: E401,
        404: { description: 'no such fine-tune for this license', schema: errorSchema },
      },
    },
    async ({ caller, params }) => {
      const licenseId = licenseOf(caller);
      await ownFineTune(licenseId, params.id);
      const rows = await listMigrations(deps.db, licenseId, { fineTuneId: params.id });
      return { data: rows.map(migrationView) };
    },
  );

  table.add(
    {
      method: 'GET',
      url: '/v1/migrations',
      auth: 'license',
      tag: 'migrations',
      summary: "The license's migrations, newest first (at most 500)",
      responses: { 200: { description: 'newest first', schema: migrationListSchema }, 401: E401 },
    },
    async ({ caller }) => ({ data: (await listMigrations(deps.db, licenseOf(caller))).map(migrationView) }),
  );

  table.add(
    {
      method: 'GET',
      url: '/v1/migrations/:id',
      auth: 'license',
      tag: 'migrations',
      summary:
        'One migration: from, target, where its new model is (request, dataset, fine-tune), and once it ended the decision, why, and the aliases moved',
      params: idParams,
      responses: {
        200: { description: 'the migration', schema: migrationSchema },
        400: E400,
        401: E401,
        404: { description: 'no such migration for this license', schema: errorSchema },
      },
    },
    async ({ caller, params }) => {
      const migration = await findMigration(deps.db, licenseOf(caller), params.id);
      if (!migration) throw notFound('migration');
      return migrationView(migration);
    },
  );

  table.add(
    {
      method: 'POST',
      url: '/v1/admin/migrations',
      auth: 'admin',
      tag: 'admin',
      summary:
        'The bulk migration for every license (or one): per license as POST /v1/fine-tunes/migrate; a license whose credits do not cover its estimate is reported as refused and the others go ahead',
      body: adminBulkMigrateBodySchema,
      responses: {
        200: { description: 'per license', schema: adminBulkMigrationSchema },
        400: E400,
        401: { description: 'missing or non-admin key', schema: errorSchema },
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
