import { UsageError } from './command.ts';
import { commandLoaders, loadCommands } from './commands/index.ts';

async function help(): Promise<string> {
  const commands = await loadCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'tuneline — fine-tuning pipeline for document-capture apps',
    '',
    'Usage: tuneline <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run `tuneline <command> --help` for a command's options.",
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${await help()}\n`);
    return name ? 0 : 2;
  }
  const load = commandLoaders.get(name);
  if (!load) {
    process.stderr.write(`tuneline: unknown command "${name}"\n\n${await help()}\n`);
    return 2;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tuneline ${name}: ${err.message}\n\n${command.usage}\n`);
      return 2;
    }
    // Both are the environment's fault: EX_CONFIG, as every process exits on a bad setting. The
    // runtime (BullMQ, pino, prom-client) and devstack are loaded only once a command has failed.
    const [{ ConfigError }, { StackError }] = await Promise.all([
      import('@tuneline/runtime'),
      import('@tuneline/devstack'),
    ]);
    if (err instanceof ConfigError || err instanceof StackError) {
      process.stderr.write(`tuneline ${name}: ${err.message}\n`);
      return 78;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
