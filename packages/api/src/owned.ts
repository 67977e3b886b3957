import {
  type DatasetRecord,
  type FineTuneRecord,
  findDataset,
  findTrainingProfile,
  getFineTune,
  getFineTuneWithDeployment,
} from '@tuneline/db';
import type { ApiDeps } from './app.ts';
import { notFound, orNotFound } from './http.ts';

/** A license's own rows by id, or 404: another license's id looks exactly like a missing one. */

function own<T extends { licenseId: string }>(row: T | undefined, licenseId: string, what: string): T {
  if (!row || row.licenseId !== licenseId) throw notFound(what);
  return row;
}

export const ownFineTune = async (deps: ApiDeps, licenseId: string, id: string): Promise<FineTuneRecord> =>
  own(await getFineTune(deps.db, id), licenseId, 'fine-tune');

/** A license's own fine-tune with its latest deployment, read from one snapshot, or 404. */
export const ownFineTuneWithDeployment = async (deps: ApiDeps, licenseId: string, id: string) => {
  const found = await getFineTuneWithDeployment(deps.db, id);
  return { fineTune: own(found?.fineTune, licenseId, 'fine-tune'), deployment: found?.deployment };
};

export const ownDataset = async (deps: ApiDeps, licenseId: string, id: string): Promise<DatasetRecord> =>
  own(await findDataset(deps.db, id), licenseId, 'dataset');

/** The license's training profile of this name (names are per license). */
export const ownTrainingProfile = async (deps: ApiDeps, licenseId: string, name: string) =>
  orNotFound(await findTrainingProfile(deps.db, licenseId, name), 'training profile');
