import { type Kysely, sql } from 'kysely';

/**
 * Indexes for the paged lists of datasets and fine-tunes (issue 15.7): the lists run newest first in
 * the stable order (created_at DESC, id DESC) and start a page after the previous page's last row, so
 * each filter a list offers has an index in that order; a page reads about its own rows, however deep.
 * The license-only indexes of 0001 (license_id, created_at DESC) are replaced by the ones with the id.
 * A request's rows (the requestId filter) are found through the unique keys of 0001.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE INDEX datasets_license_page ON datasets (license_id, created_at DESC, id DESC);
    CREATE INDEX datasets_license_status_page ON datasets (license_id, status, created_at DESC, id DESC);
    CREATE INDEX datasets_license_model_page ON datasets (license_id, base_model, created_at DESC, id DESC);
    DROP INDEX datasets_license;
    CREATE INDEX fine_tunes_license_page ON fine_tunes (license_id, created_at DESC, id DESC);
    CREATE INDEX fine_tunes_license_status_page ON fine_tunes (license_id, status, created_at DESC, id DESC);
    CREATE INDEX fine_tunes_license_model_page ON fine_tunes (license_id, base_model, created_at DESC, id DESC);
    DROP INDEX fine_tunes_license;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE INDEX fine_tunes_license ON fine_tunes (license_id, created_at DESC);
    DROP INDEX fine_tunes_license_model_page, fine_tunes_license_status_page, fine_tunes_license_page;
    CREATE INDEX datasets_license ON datasets (license_id, created_at DESC);
    DROP INDEX datasets_license_model_page, datasets_license_status_page, datasets_license_page;
  `.execute(db);
}
