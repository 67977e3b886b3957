import type { Mailer, OutgoingMail } from '@tuneline/notifier';

/** A mailer that keeps what it is given: the notifier's messages as built, without SMTP. */
export function memoryMailer(): Mailer & { sent: OutgoingMail[] } {
  const sent: OutgoingMail[] = [];
  return {
    describe: 'memory',
    sent,
    async send(mail) {
      sent.push(mail);
    },
    close() {},
  };
}
