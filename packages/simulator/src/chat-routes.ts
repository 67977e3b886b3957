// The chat-completions endpoint in the OpenAI and Azure dialects: the answer whole, or streamed as
// server-sent events (chat-stream.ts). Every request body, Together's too, is recorded as received, so a
// test can check what reached the provider.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { chatCompletion } from './chat.ts';
import { type ChatDialect, streamCompletion } from './chat-stream.ts';
import type { Clock } from './clock.ts';
import type { FaultInjector } from './faults.ts';
import type { FineTuningService } from './jobs.ts';
import type { SeededRandom } from './random.ts';
import type { ToyModels } from './toy-model.ts';

/** One chat-completions request as the simulator received it. */
export interface ReceivedChatRequest {
  seq: number;
  dialect: ChatDialect;
  /** The body's model, or the model an Azure deployment of the URL serves (else the deployment's name). */
  model: string;
  url: string;
  /** The JSON body, exactly as parsed. */
  body: Record<string, unknown>;
  at: number;
}

/** The last 1,000 chat requests. */
export class ChatRequestLog {
  private seq = 0;
  readonly entries: ReceivedChatRequest[] = [];

  record(entry: Omit<ReceivedChatRequest, 'seq'>): void {
    this.entries.push({ ...entry, seq: this.seq++ });
    if (this.entries.length > 1_000) this.entries.shift();
  }

  list(): ReceivedChatRequest[] {
    return this.entries.map((e) => structuredClone(e));
  }

  clear(): void {
    this.entries.length = 0;
  }
}

interface ChatDeps {
  service: FineTuningService;
  faults: FaultInjector;
  completionIds: SeededRandom;
  clock: Clock;
  toyModels: ToyModels;
  log: ChatRequestLog;
  /** The model an Azure deployment serves, when the name is an ARM deployment of the management API. */
  modelOfDeployment?(name: string): string | undefined;
}

type Req = FastifyRequest<{ Params: { deployment?: string }; Body: unknown }>;

export function registerChatRoutes(
  app: FastifyInstance,
  prefix: string,
  dialect: 'openai' | 'azure',
  deps: ChatDeps,
): void {
  const chatPath =
    dialect === 'azure' ? `${prefix}/deployments/:deployment/chat/completions` : `${prefix}/chat/completions`;
  app.post(chatPath, async (request: Req, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const deployment = request.params.deployment ?? '';
    const model = dialect === 'azure' ? (deps.modelOfDeployment?.(deployment) ?? deployment) : body.model;
    deps.log.record({
      dialect,
      model: typeof model === 'string' ? model : '',
      url: request.url,
      // Not cloned here (the hot path): nothing mutates a parsed body; list() hands out copies.
      body,
      at: deps.clock.now(),
    });
    const { completion, params } = chatCompletion(
      deps.service,
      model,
      body,
      deps.completionIds,
      deps.clock,
      deps.toyModels,
    );
    if (!params.stream) return completion;
    await streamCompletion(reply, completion, params, dialect, deps.faults);
    return reply;
  });
}
