// `stream: true` on chat completions, for every dialect: the answer as server-sent events (`data: {...}`
// per chunk, then `data: [DONE]`), with the fault injector's mid-stream break and per-chunk delay.
// OpenAI (and Azure OpenAI, with its content-filter chunks) opens each choice with a role-only delta and,
// when `stream_options.include_usage` asks, ends with a usage chunk without choices. Together (its
// `together-ai` SDK's ChatCompletionChunk, and recorded Together streams) sends OpenAI-compatible
// chunks whose choice repeats the role on every delta with the piece's `token_id`, carries `text` and
// `seed`, has `usage: null` throughout, and puts the usage on the last chunk, the one with the finish
// reason, whether asked or not.
import type { FastifyReply } from 'fastify';
import { logprobsOf, type SimCompletion } from './chat.ts';
import type { ChatParams } from './chat-params.ts';
import type { FaultInjector } from './faults.ts';
import { type EncodingName, tokenPieces } from './tokens.ts';

export type ChatDialect = 'openai' | 'azure' | 'together';

const SAFE = { filtered: false, severity: 'safe' };
const FILTERS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };

/** Pieces of the answer as they are "generated": words, runs of punctuation, spaces (lossless). */
function pieces(text: string): string[] {
  return text.match(/\s*(?:[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]+)|\s+$/gu) ?? [];
}

type Send = (data: unknown) => Promise<void>;

/** Hijacks the reply for server-sent events; `send` honours the stream faults (break, delay). */
function openEventStream(reply: FastifyReply, faults: FaultInjector): { send: Send; end(): void } {
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
  return {
    send,
    end: () => {
      if (!res.destroyed) res.end();
    },
  };
}

export async function streamCompletion(
  reply: FastifyReply,
  completion: SimCompletion,
  params: ChatParams,
  dialect: ChatDialect,
  faults: FaultInjector,
  /** The model's encoding (Together's token ids); OpenAI's models are o200k_base. */
  encoding: EncodingName = 'o200k_base',
): Promise<void> {
  const { send, end } = openEventStream(reply, faults);
  if (dialect === 'together') await sendTogetherChunks(send, completion, params, encoding);
  else await sendOpenAIChunks(send, completion, params, dialect === 'azure', encoding);
  await send('[DONE]');
  end();
}

async function sendOpenAIChunks(
  send: Send,
  completion: SimCompletion,
  params: ChatParams,
  azure: boolean,
  encoding: EncodingName,
): Promise<void> {
  const { id, created, model, system_fingerprint, service_tier } = completion;
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
}

async function sendTogetherChunks(
  send: Send,
  completion: SimCompletion,
  params: ChatParams,
  encoding: EncodingName,
): Promise<void> {
  const { id, created, model } = completion;
  const last = completion.choices.length - 1;
  const chunk = (
    index: number,
    text: string,
    delta: Record<string, unknown>,
    end?: { finishReason: string; usage: SimCompletion['usage'] | null },
  ) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [
      {
        index,
        text,
        logprobs: null,
        finish_reason: end?.finishReason ?? null,
        seed: end ? (params.seed ?? 0) : null,
        delta: { role: 'assistant', ...delta },
      },
    ],
    usage: end?.usage ?? null,
  });
  /** A piece that is one token carries its id; a longer one (or a partial character) has none. */
  const tokenId = (piece: string) => {
    const tokens = tokenPieces(piece, encoding);
    return tokens.length === 1 ? (tokens[0]?.id ?? null) : null;
  };
  for (const choice of completion.choices) {
    const index = choice.index;
    for (const [i, call] of (choice.message.tool_calls ?? []).entries()) {
      const fn = { name: call.function.name, arguments: call.function.arguments };
      await send(
        chunk(index, '', {
          content: null,
          tool_calls: [{ index: i, id: call.id, type: 'function', function: fn }],
        }),
      );
    }
    for (const piece of pieces(choice.message.content ?? ''))
      await send(chunk(index, piece, { token_id: tokenId(piece), content: piece }));
    await send(
      chunk(
        index,
        '',
        { token_id: null, content: '' },
        { finishReason: choice.finish_reason, usage: index === last ? completion.usage : null },
      ),
    );
  }
}
