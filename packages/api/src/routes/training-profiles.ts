import { randomUUID } from 'node:crypto';
import { retrainCheckMessage, trainingProfileSchema } from '@tuneline/contracts';
import { findBaseModel } from '@tuneline/dataset';
import {
  inSnapshot,
  inTransaction,
  listProfileVersions,
  listTrainingProfiles,
  saveTrainingProfile,
  type TrainingProfileRecord,
  writeOutbox,
} from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { HttpError, type RouteTable } from '../http.ts';
import { ownTrainingProfile } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import {
  acceptedSchema,
  profileNameParams,
  trainingProfileDetailSchema,
  trainingProfileListSchema,
  trainingProfileViewSchema,
} from '../schemas.ts';
import { servingFineTune, versionView } from './promotion.ts';

const E404 = 'no such training profile for this license';

const profileView = (p: TrainingProfileRecord) => ({
  id: p.id,
  name: p.name,
  settings: p.settings,
  enabled: p.enabled,
  lastDecision: p.lastDecision
    ? { action: p.lastDecision, reason: p.lastDecisionReason, at: p.lastDecisionAt }
    : null,
  createdAt: p.createdAt,
  updatedAt: p.updatedAt,
});

export function registerTrainingProfileRoutes(table: RouteTable, deps: ApiDeps): void {
  const routes = routeGroup(table, 'license', 'training-profiles');
  routes.add(
    {
      method: 'POST',
      url: '/v1/training-profiles',
      summary:
        'Create a training profile, or replace the settings of the one with this name: which stored documents, ' +
        'how to train them, and the policy that decides when to re-train (its versions are kept)',
      body: trainingProfileSchema,
      responses: {
        201: { description: 'created', schema: trainingProfileViewSchema },
        200: { description: 'replaced', schema: trainingProfileViewSchema },
        400: 'invalid request; `fields` names each bad field',
      },
    },
    async ({ licenseId, body, reply }) => {
      const model = findBaseModel(body.baseModel, deps.catalogue);
      if (!model?.fineTunable) {
        const message = model ? 'is not fine-tunable' : 'is not in the model catalogue';
        throw new HttpError(400, `baseModel: "${body.baseModel}" ${message}`, [
          { field: 'baseModel', message },
        ]);
      }
      const { profile, created } = await saveTrainingProfile(deps.db, {
        licenseId,
        name: body.name,
        settings: body,
        enabled: body.enabled,
      });
      reply.code(created ? 201 : 200);
      return profileView(profile);
    },
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/training-profiles',
      summary: "The license's training profiles with each one's last decision",
      responses: { 200: { description: 'by name', schema: trainingProfileListSchema } },
    },
    async ({ licenseId }) => ({
      profiles: (await listTrainingProfiles(deps.db, licenseId)).map(profileView),
    }),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/training-profiles/:name',
      summary:
        'One profile with its versions: documents, added, removed, estimate, the dataset and model each built, ' +
        'what became of the model (promoted, kept, manual, with the reason) and which one the alias serves',
      params: profileNameParams,
      responses: {
        200: { description: 'the profile', schema: trainingProfileDetailSchema },
        404: E404,
      },
    },
    async ({ licenseId, params }) => {
      const profile = await ownTrainingProfile(deps, licenseId, params.name);
      const { serving, versions } = await inSnapshot(deps.db, async (tx) => ({
        serving: await servingFineTune(tx, profile),
        versions: await listProfileVersions(tx, profile),
      }));
      return { ...profileView(profile), versions: versions.map((v) => versionView(v, serving)) };
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/training-profiles/:name/retrain',
      summary:
        'Re-train now, whatever the counts and the interval (the monthly budget still applies; nothing is ' +
        "started when nothing changed). The decision appears as the profile's lastDecision.",
      params: profileNameParams,
      responses: { 202: { description: 'check queued', schema: acceptedSchema }, 404: E404 },
    },
    async ({ licenseId, params }) => {
      const profile = await ownTrainingProfile(deps, licenseId, params.name);
      const message = retrainCheckMessage({ profileId: profile.id, correlationId: randomUUID() });
      await inTransaction(deps.db, (tx) => writeOutbox(tx, message));
      await deps.flushOutbox();
      return { jobId: message.jobId, correlationId: message.payload.correlationId, duplicate: false };
    },
  );
}
