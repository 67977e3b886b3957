import type { Executor } from '../connection.ts';

/**
 * Records a provider webhook delivery by its `webhook-id`. Returns false when that id was recorded
 * before: a repeated delivery changes nothing.
 */
export async function recordWebhookDelivery(
  tx: Executor,
  delivery: { webhookId: string; eventType: string; providerJobId: string | null },
): Promise<boolean> {
  const row = await tx
    .insertInto('webhook_deliveries')
    .values({
      webhook_id: delivery.webhookId,
      event_type: delivery.eventType,
      provider_job_id: delivery.providerJobId,
    })
    .onConflict((oc) => oc.column('webhook_id').doNothing())
    .returning('webhook_id')
    .executeTakeFirst();
  return row !== undefined;
}
