export { type ApiDeps, type ApiOptions, buildApi, DEFAULT_BODY_LIMIT } from './app.ts';
export { type Caller, createApiKey, generateKey, hashKey } from './auth.ts';
export { type ApiConfig, apiConfigSchema } from './config.ts';
export {
  type CallModel,
  countPromptTokens,
  holdWorstCase,
  promptTokenBound,
  rateLimitTokens,
  type WorstCase,
  worstCase,
} from './gateway/holds.ts';
export { type CallUsage, GatewayMeter, type HeldCall } from './gateway/metering.ts';
export { type ApiMetrics, createApiMetrics } from './gateway/metrics.ts';
export { type ChatRequestBody, chatRequestSchema } from './gateway/request.ts';
export { defaultGatewaySettings, type GatewaySettings } from './gateway/settings.ts';
export { type SweepResult, sweepGateway } from './gateway/sweep.ts';
export { HttpError } from './http.ts';
export { decodeCursor, encodeCursor } from './listing.ts';
export { runApi, startApi } from './main.ts';
export { buildOpenApiDocument } from './openapi.ts';
export {
  DEFAULT_MAX_OUTPUT_TOKENS,
  estimateTraining,
  fallbackInferencePrice,
  type InferencePrice,
  type InferenceTerms,
  inferenceCredits,
  inferenceTerms,
} from './pricing.ts';
export {
  type ChatCompletionBody,
  type ChatCompletionChunk,
  type ChatProvider,
  type ChatProviders,
  createChatProviders,
  profileChatProvider,
} from './provider.ts';
export { usageCsv } from './routes/credits.ts';
