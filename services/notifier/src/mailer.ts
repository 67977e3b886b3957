import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';

export interface OutgoingMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  /** The HTML alternative of `text` (multipart/alternative). */
  html?: string;
  /** `<...@tuneline>`: the same for every attempt of one notification. */
  messageId: string;
  headers: Record<string, string>;
}

export interface Mailer {
  /** Where mail goes, for logs: `smtp://host:port` or the .eml folder. */
  describe: string;
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

export interface SmtpOptions {
  /** Connection, greeting and socket timeout. */
  timeoutMs?: number;
  /**
   * Connections kept open and reused, so a message costs the envelope and DATA instead of a TCP (and
   * TLS) handshake, EHLO and QUIT each. A rejected message is RSET on its connection and does not
   * affect the next; a broken connection is replaced. 0: one connection per message.
   */
  maxConnections?: number;
}

/** Over SMTP (SMTP_URL). */
export function smtpMailer(url: string, opts: SmtpOptions = {}): Mailer {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxConnections = opts.maxConnections ?? 5;
  const transport = nodemailer.createTransport({
    url,
    ...(maxConnections > 0 ? { pool: true, maxConnections } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  const target = new URL(url);
  return {
    describe: `${target.protocol}//${target.host}`,
    async send(mail) {
      await transport.sendMail({ ...mail, disableFileAccess: true, disableUrlAccess: true });
    },
    close: () => transport.close(),
  };
}

/**
 * No SMTP configured (the demo): nodemailer's stream transport renders the exact RFC 5322 message and
 * it is written to `<dir>/<name>.eml`. The name is the notification id, and the file is written to a
 * temporary name and renamed, so a retry replaces the file instead of adding a second one.
 */
export function fileMailer(dir: string): Mailer {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    describe: dir,
    async send(mail) {
      const info = await transport.sendMail({ ...mail, disableFileAccess: true, disableUrlAccess: true });
      const name = mail.headers['X-Tuneline-Notification'] ?? mail.messageId.replace(/[^A-Za-z0-9.-]/g, '_');
      await mkdir(dir, { recursive: true });
      const tmp = join(dir, `.${name}.${process.pid}.tmp`);
      await writeFile(tmp, info.message as Buffer);
      await rename(tmp, join(dir, `${name}.eml`));
    },
    close: () => transport.close(),
  };
}

/** An SMTP reply that rejects this address or message for good (5xx on RCPT or DATA). */
export function isPermanentSmtpRejection(err: unknown): boolean {
  const e = err as { code?: string; responseCode?: number };
  return (
    typeof e?.responseCode === 'number' &&
    e.responseCode >= 500 &&
    e.responseCode < 600 &&
    (e.code === 'EENVELOPE' || e.code === 'EMESSAGE')
  );
}
