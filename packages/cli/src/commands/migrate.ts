import { createDb, migrateToLatest } from '@tuneline/db';
import { loadConfig } from '@tuneline/runtime';
import { z } from 'zod';
import type { Command } from '../command.ts';
import { devStackUsage, withDevStack } from '../stack.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Migrate the database to the latest schema (safe to run from several processes at once)',
  usage: ['tuneline migrate', '', 'Uses DATABASE_URL.', devStackUsage()].join('\n'),
  async run() {
    const config = loadConfig(
      z.object({ DATABASE_URL: z.url({ message: 'must be a postgres:// URL' }) }),
      await withDevStack(process.env),
    );
    const db = createDb(config.DATABASE_URL, { max: 2, applicationName: 'tuneline-migrate' });
    try {
      const result = await migrateToLatest(db);
      const applied = (result.results ?? [])
        .filter((r) => r.status === 'Success')
        .map((r) => r.migrationName);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
