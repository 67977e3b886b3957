import type { Executor } from '../connection.ts';
import { TERMINAL_STATUSES } from '../lifecycle/statuses.ts';
import { type FineTuneRecord, toFineTuneRecord } from './fine-tunes.ts';
import { firstRecord } from './records.ts';

/** A dataset whose provider files may go: every fine-tune on it has ended. */
export interface ProviderFilesToDelete {
  datasetId: string;
  fileIds: string[];
  /** The license keeps its provider files (`keepProviderFiles`): nothing is deleted. */
  keep: boolean;
}

/**
 * The provider files of a fine-tune's dataset, once no fine-tune on that dataset is still unfinished
 * and the files were not deleted yet; undefined otherwise.
 */
export async function findProviderFilesToDelete(
  db: Executor,
  fineTuneId: string,
): Promise<ProviderFilesToDelete | undefined> {
  const row = await db
    .selectFrom('fine_tunes as f')
    .innerJoin('datasets as d', 'd.id', 'f.dataset_id')
    .innerJoin('licenses as l', 'l.id', 'f.license_id')
    .select(['d.id as datasetId', 'd.train_file_id', 'd.test_file_id', 'l.keep_provider_files'])
    .where('f.id', '=', fineTuneId)
    .where('d.provider_files_deleted_at', 'is', null)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('fine_tunes as o')
            .select('o.id')
            .whereRef('o.dataset_id', '=', 'd.id')
            .where('o.status', 'not in', TERMINAL_STATUSES),
        ),
      ),
    )
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    datasetId: row.datasetId,
    fileIds: [row.train_file_id, row.test_file_id].filter((id): id is string => id !== null),
    keep: row.keep_provider_files,
  };
}

/** Records that the dataset's provider files were deleted. */
export async function markProviderFilesDeleted(db: Executor, datasetId: string): Promise<void> {
  await db
    .updateTable('datasets')
    .set({ provider_files_deleted_at: new Date() })
    .where('id', '=', datasetId)
    .where('provider_files_deleted_at', 'is', null)
    .execute();
}

/** Whether the license keeps its files at the provider after training. */
export async function setLicenseKeepProviderFiles(
  db: Executor,
  licenseId: string,
  keep: boolean,
): Promise<void> {
  await db.updateTable('licenses').set({ keep_provider_files: keep }).where('id', '=', licenseId).execute();
}

/**
 * Marks a finished fine-tune of this license discarded: not available, not active, the row (and its
 * ledger entries) kept. Discarding twice keeps the first time. Undefined if no such finished fine-tune.
 */
export async function discardFineTune(
  db: Executor,
  licenseId: string,
  id: string,
): Promise<FineTuneRecord | undefined> {
  return firstRecord(
    db
      .updateTable('fine_tunes')
      .set((eb) => ({
        discarded_at: eb.fn.coalesce('discarded_at', eb.val(new Date())),
        available: false,
        active: false,
        updated_at: new Date(),
      }))
      .where('id', '=', id)
      .where('license_id', '=', licenseId)
      .where('status', 'in', TERMINAL_STATUSES)
      .returningAll(),
    toFineTuneRecord,
  );
}
