import { createDb } from '@tuneline/db';
import { AUDITED_INVARIANTS, auditLedger } from '@tuneline/ledger';
import { loadConfig } from '@tuneline/runtime';
import { z } from 'zod';
import { type Command, parseOptions, UsageError } from '../command.ts';
import { devStackUsage, withDevStack } from '../stack.ts';

export const ledgerCommand: Command = {
  name: 'ledger',
  summary: 'Audit the credit ledger against its invariants (exit 1 on any violation)',
  usage: [
    'tuneline ledger audit [--json]',
    '',
    'Checks every ledger invariant (postings sum to zero, cached balances equal their entries, each',
    'reservation of a settled fine-tune resolved once, charges equal trained tokens × price, ...).',
    'Exit code 0 when clean, 1 when any invariant is violated.',
    'Uses DATABASE_URL.',
    devStackUsage(),
  ].join('\n'),
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'audit') throw new UsageError('expected "audit"');
    const { values } = parseOptions(rest, { json: { type: 'boolean', default: false } });
    const config = loadConfig(
      z.object({ DATABASE_URL: z.url({ message: 'must be a postgres:// URL' }) }),
      await withDevStack(process.env, { schema: true }),
    );
    const db = createDb(config.DATABASE_URL, { max: 2, applicationName: 'tuneline-ledger-audit' });
    try {
      const { violations } = await auditLedger(db);
      if (values.json) {
        process.stdout.write(
          `${JSON.stringify({ ok: violations.length === 0, invariants: AUDITED_INVARIANTS, violations }, null, 2)}\n`,
        );
      } else if (violations.length === 0) {
        process.stdout.write(
          `ledger audit: ${AUDITED_INVARIANTS.length} invariants checked, no violations\n`,
        );
      } else {
        process.stdout.write(`ledger audit: ${violations.length} violation(s)\n`);
        for (const v of violations) process.stdout.write(`  [${v.invariant}] ${v.detail}\n`);
      }
      return violations.length === 0 ? 0 : 1;
    } finally {
      await db.destroy();
    }
  },
};
