import { StackError } from '@tuneline/devstack';
import { ConfigError } from '@tuneline/runtime';
import { UsageError } from './command.ts';
import { commands } from './commands/index.ts';

function help(): string {
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
    process.stdout.write(`${help()}\n`);
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`tuneline: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
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
    // Both are the environment's fault: EX_CONFIG, as every process exits on a bad setting.
    if (err instanceof ConfigError || err instanceof StackError) {
      process.stderr.write(`tuneline ${name}: ${err.message}\n`);
      return 78;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
