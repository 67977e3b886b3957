import type { Command } from '../command.ts';
import { apiCommand } from './api.ts';
import { buildDatasetCommand } from './build-dataset.ts';
import { creditsCommand } from './credits.ts';
import { ledgerCommand } from './ledger.ts';
import { migrateCommand } from './migrate.ts';
import { simCommand } from './sim.ts';
import { validateCommand } from './validate.ts';
import { workersCommand } from './workers.ts';

/** Every subcommand, in the order `tuneline --help` lists them. */
export const commands: Command[] = [
  migrateCommand,
  workersCommand,
  buildDatasetCommand,
  validateCommand,
  apiCommand,
  creditsCommand,
  ledgerCommand,
  simCommand,
];
