// The chat-completions endpoint in both dialects: the answer whole, or streamed as server-sent events
// the way OpenAI (and Azure OpenAI, with its content-filter chunks) stream it. Every request body is
// recorded as received, so a test can check what reached the provider.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { chatCompletion, logprobsOf, type SimCompletion } from './chat.ts';
import type { ChatParams } from './chat-params.ts';
import type { Clock } from './clock.ts';
import type { FaultInjector } from './faults.ts';
import type { FineTuningService } from './jobs.ts';
import type { SeededRandom } from './random.ts';
import type { ToyModels } from './toy-model.ts';

/** One chat-completions request as the simulator received it. */
export interface ReceivedChatRequest {
  seq: number;
  dialect: 'openai' | 'azure' | 'together';
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

const SAFE = { filtered: false, severity: 'safe' };
const FILTERS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };

/** Pieces of the answer as they are "generated": words, runs of punctuation, spaces (lossless). */
function pieces(text: string): string[] {
  return text.match(/\s*(?:[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]+)|\s+$/gu) ?? [];
}

async function streamCompletion(
  reply: FastifyReply,
  completion: SimCompletion,
  params: ChatParams,
  dialect: 'openai' | 'azure',
  faults: FaultInjector,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = String(v);
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  let gone = false;
  res.on('close', () => {
    gone = !res.writableFinished;
  });
  let sent = 0;
  const send = async (data: unknown) => {
    if (gone) return;
    const breakAfter = faults.config.streamBreakAfter;
    if (breakAfter > 0 && sent >= breakAfter) {
      gone = true;
      res.destroy();
      return;
    }
    sent++;
    res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    const delay = faults.config.streamDelayMs;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  };
  const { id, created, model, system_fingerprint, service_tier } = completion;
  const azure = dialect === 'azure';
  // What every chunk of the stream opens with, in this order.
  const head = { id, object: 'chat.completion.chunk', created, model, service_tier, system_fingerprint };
  const chunk = (choice: Record<string, unknown>) => ({
    ...head,
    choices: [
      { logprobs: null, finish_reason: null, ...choice, ...(azure ? { content_filter_results: {} } : {}) },
    ],
    ...(params.includeUsage ? { usage: null } : {}),
  });
  if (azure) {
    // Azure OpenAI opens with the prompt's content-filter results, in a chunk without choices.
    await send({
      choices: [],
      created: 0,
      id: '',
      model: '',
      object: '',
      prompt_filter_results: [{ prompt_index: 0, content_filter_results: FILTERS }],
    });
  }
  const encoding = 'o200k_base';
  for (const choice of completion.choices) {
    const index = choice.index;
    const message = choice.message;
    await send(
      chunk({ index, delta: { role: 'assistant', content: message.tool_calls ? null : '', refusal: null } }),
    );
    for (const [i, call] of (message.tool_calls ?? []).entries()) {
      await send(
        chunk({
          index,
          delta: {
            tool_calls: [
              {
                index: i,
                id: call.id,
                type: 'function',
                function: { name: call.function.name, arguments: '' },
              },
            ],
          },
        }),
      );
      for (const piece of pieces(call.function.arguments))
        await send(chunk({ index, delta: { tool_calls: [{ index: i, function: { arguments: piece } }] } }));
    }
    for (const piece of pieces(message.content ?? '')) {
      await send(
        chunk({
          index,
          delta: { content: piece },
          ...(params.logprobs ? { logprobs: logprobsOf(piece, params, encoding) } : {}),
          ...(azure ? { content_filter_results: FILTERS } : {}),
        }),
      );
    }
    await send(chunk({ index, delta: {}, finish_reason: choice.finish_reason }));
  }
  if (params.includeUsage) {
    await send({ ...head, choices: [], usage: completion.usage });
  }
  await send('[DONE]');
  if (!res.destroyed) res.end();
}
