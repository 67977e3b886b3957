import type { Command } from '../command.ts';
import { migrateCommand } from './migrate.ts';
import { workersCommand } from './workers.ts';

/** Every subcommand, in the order `tuneline --help` lists them. */
export const commands: Command[] = [migrateCommand, workersCommand];
