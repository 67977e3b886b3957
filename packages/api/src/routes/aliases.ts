import { findBaseModel, lifecycleOf, shutDown, shutdownMessage } from '@tuneline/dataset';
import {
  ALIAS_NAME,
  type AliasRecord,
  type AliasSwitch,
  findAlias,
  getFineTune,
  listAliases,
  pointAlias,
  rollbackAlias,
} from '@tuneline/db';
import { z } from 'zod';
import type { ApiDeps } from '../app.ts';
import { actorOf } from '../auth.ts';
import { HttpError, notFound, orNotFound, type RouteTable } from '../http.ts';
import { routeGroup } from '../route-group.ts';
import { modelLifecycleSchema } from '../schemas.ts';

// Model aliases (issue 21.1): a license's stable model name for a use. Statements: @tuneline/db aliases.ts.

const aliasParams = z.object({
  name: z
    .string()
    .regex(ALIAS_NAME, 'must be 1-64 lowercase letters, digits, _ or -, starting with a letter or digit'),
});

const aliasViewSchema = z
  .object({
    name: z.string(),
    fineTuneId: z.uuid(),
    model: z.string().nullable(),
    baseModel: z.string(),
    provider: z.string().nullable().describe('the provider that serves it; null: the deployment default'),
    active: z.boolean(),
    updatedAt: z.date(),
    lifecycle: modelLifecycleSchema,
  })
  .meta({ id: 'ModelAlias' });

const aliasChangeSchema = z
  .object({
    action: z.enum(['point', 'rollback']),
    fromFineTuneId: z.uuid().nullable(),
    toFineTuneId: z.uuid(),
    actor: z.string(),
    at: z.date(),
  })
  .meta({ id: 'ModelAliasChange' });

const aliasHistoryEntrySchema = aliasChangeSchema
  .extend({
    fromModel: z.string().nullable().describe('the fine-tuned model it pointed at before'),
    toModel: z.string().nullable().describe('the fine-tuned model it pointed at after'),
  })
  .meta({ id: 'ModelAliasHistoryEntry' });

const aliasDetailSchema = aliasViewSchema
  .extend({ history: z.array(aliasHistoryEntrySchema) })
  .meta({ id: 'ModelAliasDetail' });
const aliasSwitchSchema = z
  .object({ alias: aliasViewSchema, changed: z.boolean(), change: aliasChangeSchema.nullable() })
  .meta({ id: 'ModelAliasSwitch' });

function answer(view: (a: AliasRecord) => unknown, result: AliasSwitch) {
  switch (result.outcome) {
    case 'switched':
      return { alias: view(result.alias), changed: true, change: result.change };
    case 'unchanged':
      return { alias: view(result.alias), changed: false, change: null };
    case 'target_unusable':
      throw new HttpError(404, 'fine-tune not found among your available and active fine-tunes', [
        { field: 'fineTuneId', message: 'must be one of your available and active fine-tunes' },
      ]);
    case 'alias_not_found':
      throw notFound('alias');
    case 'pointed_before':
      throw new HttpError(409, 'the alias pointed at this fine-tune before');
    case 'no_previous':
      throw new HttpError(409, `nothing to roll back to: ${result.reason}`);
    case 'moved':
      throw new HttpError(409, `the alias was switched meanwhile (to ${result.currentFineTuneId})`);
  }
}

export function registerAliasRoutes(table: RouteTable, deps: ApiDeps): void {
  /** An alias with its model's base model dates at the provider that serves it (issue 21.2). */
  const view = (a: AliasRecord) => ({
    ...a,
    lifecycle: lifecycleOf(findBaseModel(a.baseModel, deps.catalogue), a.provider),
  });

  const routes = routeGroup(table, 'license', 'aliases');
  routes.add(
    {
      method: 'POST',
      url: '/v1/aliases/:name',
      summary:
        'Point an alias (created if new) at one of your available and active fine-tunes, atomically; the switch ' +
        'is recorded (who, when, from, to). Gateway calls with the alias as `model` are served by this fine-tune.',
      params: aliasParams,
      body: z.strictObject({ fineTuneId: z.uuid() }),
      responses: {
        200: { description: 'the alias and the recorded change', schema: aliasSwitchSchema },
        400: 'invalid name or body',
        404: 'no such available and active fine-tune for this license',
        409: "the fine-tune's base model is shut down (names the successor)",
      },
    },
    async ({ licenseId, params, body, caller }) => {
      const target = await getFineTune(deps.db, body.fineTuneId);
      const base =
        target?.licenseId === licenseId ? findBaseModel(target.baseModel, deps.catalogue) : undefined;
      if (target && base && shutDown(base, target.provider, deps.clock.now()))
        throw new HttpError(409, shutdownMessage(base, target.provider, target.fineTunedModel ?? target.id));
      return answer(
        view,
        await pointAlias(deps.db, {
          licenseId,
          name: params.name,
          fineTuneId: body.fineTuneId,
          actor: actorOf(caller),
        }),
      );
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/aliases/:name/rollback',
      summary: 'Point the alias back at the target it had before its last switch (recorded as a rollback)',
      params: aliasParams,
      responses: {
        200: { description: 'the alias and the recorded change', schema: aliasSwitchSchema },
        404: 'no such alias for this license',
        409: 'nothing to roll back to, or that model is no longer active',
      },
    },
    async ({ licenseId, params, caller }) =>
      answer(view, await rollbackAlias(deps.db, { licenseId, name: params.name, actor: actorOf(caller) })),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/aliases',
      summary: "The license's aliases and the model each serves",
      responses: { 200: { description: 'by name', schema: z.object({ aliases: z.array(aliasViewSchema) }) } },
    },
    async ({ licenseId }) => ({ aliases: (await listAliases(deps.db, licenseId)).map(view) }),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/aliases/:name',
      summary: 'One alias with its history of switches, newest first',
      params: aliasParams,
      responses: {
        200: { description: 'the alias', schema: aliasDetailSchema },
        404: 'no such alias for this license',
      },
    },
    async ({ licenseId, params }) => {
      const alias = orNotFound(await findAlias(deps.db, licenseId, params.name), 'alias');
      return { ...view(alias), history: alias.history };
    },
  );
}
