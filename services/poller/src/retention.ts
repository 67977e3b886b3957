import { type Db, findProviderFilesToDelete, markProviderFilesDeleted } from '@tuneline/db';
import type { PollerProvider } from './provider.ts';

/**
 * After training, a dataset's uploaded files are deleted at the provider unless the license keeps
 * them (`keep_provider_files`), once no fine-tune on that dataset is unfinished. Runs after the ending
 * is committed; a failure leaves the files (and no record), for the next ending on the dataset or an
 * operator, and never undoes the ending. Deleting a file twice is harmless (already gone is fine).
 */
export async function applyRetention(
  db: Db,
  provider: PollerProvider,
  fineTuneId: string,
): Promise<string[]> {
  if (!provider.deleteFile) return [];
  const target = await findProviderFilesToDelete(db, fineTuneId);
  if (!target || target.keep) return [];
  for (const id of target.fileIds) await provider.deleteFile(id);
  await markProviderFilesDeleted(db, target.datasetId);
  return target.fileIds;
}
