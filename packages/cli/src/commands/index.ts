import type { Command } from '../command.ts';

/**
 * Every subcommand, in the order `tuneline --help` lists them, each loaded only when it runs (or for
 * the help): a command's module brings its whole dependency tree (fastify and bull-board, the simulator,
 * BullMQ, pg), and loading every command took ~120 MB of RSS before `build-dataset` read a document.
 */
export const commandLoaders = new Map<string, () => Promise<Command>>([
  ['migrate', async () => (await import('./migrate.ts')).migrateCommand],
  ['workers', async () => (await import('./workers.ts')).workersCommand],
  ['build-dataset', async () => (await import('./build-dataset.ts')).buildDatasetCommand],
  ['validate', async () => (await import('./validate.ts')).validateCommand],
  ['api', async () => (await import('./api.ts')).apiCommand],
  ['credits', async () => (await import('./credits.ts')).creditsCommand],
  ['ledger', async () => (await import('./ledger.ts')).ledgerCommand],
  ['sim', async () => (await import('./sim.ts')).simCommand],
]);

/** Every subcommand, loaded. */
export function loadCommands(): Promise<Command[]> {
  return Promise.all([...commandLoaders.values()].map((load) => load()));
}
