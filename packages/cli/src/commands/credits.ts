import { randomUUID } from 'node:crypto';
import { createDb } from '@tuneline/db';
import { getBalance, grantCredits, LedgerConflictError, MAX_GRANT_CREDITS, usageLog } from '@tuneline/ledger';
import { loadConfig } from '@tuneline/runtime';
import { z } from 'zod';
import { type Command, parseOptions, UsageError } from '../command.ts';
import { devStackUsage, withDevStack } from '../stack.ts';

const configSchema = z.object({ DATABASE_URL: z.url({ message: 'must be a postgres:// URL' }) });

const USAGE = [
  'tuneline credits grant --license L --amount N [--id ID] [--memo TEXT]',
  'tuneline credits show --license L [--json]',
  '',
  'grant: tops up a license with N whole credits. --id makes the grant idempotent: running it again with',
  '       the same id and amount changes nothing; the same id with another amount is refused (exit 1).',
  '       Without --id a fresh id is used (printed).',
  'show:  the balance (posted, pending, available, overage block) and the usage log.',
  '',
  'Uses DATABASE_URL.',
  devStackUsage(),
].join('\n');

const json = (value: unknown) =>
  JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2);

export const creditsCommand: Command = {
  name: 'credits',
  summary: 'Grant credits to a license, or show its balance and usage log',
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'grant' && sub !== 'show') throw new UsageError('expected "grant" or "show"');
    const { values } = parseOptions(rest, {
      license: { type: 'string' },
      amount: { type: 'string' },
      id: { type: 'string' },
      memo: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const license = values.license?.trim();
    if (!license) throw new UsageError('--license is required');
    const config = loadConfig(configSchema, await withDevStack(process.env, { schema: true }));
    const db = createDb(config.DATABASE_URL, { max: 2, applicationName: 'tuneline-credits' });
    try {
      if (sub === 'grant') {
        if (
          !values.amount ||
          !/^\d+$/.test(values.amount) ||
          BigInt(values.amount) <= 0n ||
          BigInt(values.amount) > MAX_GRANT_CREDITS
        ) {
          throw new UsageError(`--amount must be a whole number of credits from 1 to ${MAX_GRANT_CREDITS}`);
        }
        const id = values.id ?? randomUUID();
        if (!/^[A-Za-z0-9._-]{1,100}$/.test(id))
          throw new UsageError('--id: letters, digits, ".", "_", "-" only');
        const license_ = await db
          .selectFrom('licenses')
          .select('id')
          .where('id', '=', license)
          .executeTakeFirst();
        if (!license_) process.stderr.write(`warning: no license "${license}" in the licenses table\n`);
        try {
          await db.transaction().execute((tx) =>
            grantCredits(tx, {
              grantId: id,
              licenseId: license,
              amount: BigInt(values.amount as string),
              memo: values.memo,
            }),
          );
        } catch (err) {
          if (err instanceof LedgerConflictError) {
            process.stderr.write(`tuneline credits: ${err.message}\n`);
            return 1;
          }
          throw err;
        }
        const balance = await getBalance(db, license);
        process.stdout.write(
          `grant-${id}: ${values.amount} credits to ${license}; available ${balance.available}\n`,
        );
        return 0;
      }
      const balance = await getBalance(db, license);
      const log = await usageLog(db, license);
      if (values.json) {
        process.stdout.write(`${json({ license, balance, usage: log })}\n`);
        return 0;
      }
      const lines = [
        `license ${license}`,
        `  posted ${balance.posted}  pending ${balance.pending}  available ${balance.available}${balance.overageBlocked ? '  OVERAGE BLOCKED' : ''}`,
        '',
        `${'when'.padEnd(24)} ${'entry'.padEnd(12)} ${'credits'.padStart(10)} ${'available'.padStart(10)}  fine-tune / model / tokens`,
        ...log.map((e) =>
          [
            e.at.toISOString().padEnd(24),
            e.kind.padEnd(12),
            `${e.kind === 'grant' || e.kind === 'release' ? '+' : '-'}${e.amount}`.padStart(10),
            String(e.available).padStart(10),
            ` ${[e.fineTuneId, e.model, e.tokens === null ? null : `${e.tokens} tokens`, e.memo].filter(Boolean).join(' / ')}`,
          ].join(' '),
        ),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
