export * from './connection.ts';
export * from './migrate.ts';
export * from './repositories/datasets.ts';
export * from './repositories/fine-tunes.ts';
export * from './repositories/notifications.ts';
export * from './repositories/outbox.ts';
export * from './repositories/requests.ts';
export * from './schema.ts';
