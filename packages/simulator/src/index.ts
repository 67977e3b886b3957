export { BASE_INVALID_JSON_RATE, BASE_SNAKE_CASE_RATE } from './base-model.ts';
export type { ReceivedChatRequest } from './chat-routes.ts';
export { type Clock, systemClock } from './clock.ts';
export { ApiError } from './errors.ts';
export { type FaultConfig, type FaultConfigInput, type FaultLogEntry, faultConfigSchema } from './faults.ts';
export {
  MAX_DEFAULT_EPOCHS,
  MAX_TARGET_EXAMPLES,
  MIN_DEFAULT_EPOCHS,
  MIN_TARGET_EXAMPLES,
  resolveAutoEpochs,
  TARGET_EPOCHS,
} from './hyperparameters.ts';
export { DURATIONS } from './jobs.ts';
export { LEARNING_SCALE, type LearnedModel } from './learned-model.ts';
export { BASE_MODELS, type BaseModel } from './models.ts';
export {
  DEFAULT_MAX_FILE_BYTES,
  type RecordedResponse,
  type RunningSimulator,
  type SimulatorAdmin,
  type SimulatorOptions,
  type SimulatorStateSnapshot,
  startSimulator,
} from './server.ts';
export { ORGANIZATION } from './state.ts';
export { TOGETHER_STATUSES, type TogetherStatus } from './together.ts';
export { countChatTokens, countTextTokens } from './tokens.ts';
export {
  baseModelAnswer,
  type ChatTurn,
  type FineTunedSource,
  fineTunedAnswer,
  jaccard,
  learnFineTuned,
  nearestAnswer,
} from './toy-model.ts';
export { MIN_EXAMPLES, validateTrainingFile } from './validation.ts';
export { signWebhook } from './webhooks.ts';
