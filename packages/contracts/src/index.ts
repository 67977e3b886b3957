export * from './documents.ts';
export * from './emails.ts';
export * from './errors.ts';
export * from './fine-tune-request.ts';
export * from './messages.ts';
export * from './producer.ts';
export * from './queues.ts';
export * from './training-profiles.ts';
