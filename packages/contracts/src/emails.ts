import { z } from 'zod';

export const MAX_NOTIFY_EMAILS = 10;

const emailSchema = z.email();

export type EmailListResult = { ok: true; emails: string[] } | { ok: false; message: string };

/**
 * Parses the `;`-separated list users type ("a@x.com; b@y.com;"): trimmed, empty entries dropped,
 * de-duplicated case-insensitively (first spelling kept), each address valid, at most 10.
 * CR/LF anywhere is refused outright: these strings end up in mail headers.
 */
export function parseEmailList(input: string): EmailListResult {
  if (/[\r\n]/.test(input)) return { ok: false, message: 'must not contain line breaks (CR/LF)' };
  const seen = new Set<string>();
  const emails: string[] = [];
  for (const raw of input.split(';')) {
    const address = raw.trim();
    if (!address) continue;
    if (!emailSchema.safeParse(address).success) {
      return { ok: false, message: `"${address}" is not a valid e-mail address` };
    }
    const key = address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    emails.push(address);
  }
  if (emails.length > MAX_NOTIFY_EMAILS) {
    return { ok: false, message: `at most ${MAX_NOTIFY_EMAILS} addresses (got ${emails.length})` };
  }
  return { ok: true, emails };
}

/** The `;` list as a zod string that validates in place and keeps the user's text. */
export const notifyEmailsSchema = z.string().superRefine((value, ctx) => {
  const parsed = parseEmailList(value);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message });
});
