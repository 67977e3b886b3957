import type { Migration } from 'kysely';
import * as core from './0001_core.ts';
import * as ledger from './0002_ledger.ts';
import * as stages from './0005_stages.ts';
import * as ledgerFunctions from './0006_ledger_functions.ts';
import * as providers from './0025_providers.ts';
import * as retention from './0026_retention.ts';
import * as discard from './0027_discard.ts';

/** Every migration, by name; the inline provider hands these to Kysely's Migrator in name order. */
export const migrations: Record<string, Migration> = {
  '0001_core': core,
  '0002_ledger': ledger,
  '0005_stages': stages,
  '0006_ledger_functions': ledgerFunctions,
  '0025_providers': providers,
  '0026_retention': retention,
  '0027_discard': discard,
};
