import { type Executor, findActiveFineTuneByModelOrAlias, findApiKeyHolder } from '@tuneline/db';
import type { FastifyInstance } from 'fastify';

/**
 * Short-lived caches of the two look-ups every gateway call made before its hold (issue 19, the
 * benchmark): the API key's holder and the (license, model name) → active fine-tune resolution. Each
 * was one Postgres round trip per call; a hot license asks the same questions hundreds of times a second.
 *
 * How stale an answer can be (the invalidation argument, docs/GATEWAY.md "Caches"):
 * - An entry is kept `ttlMs` from the moment its read *started*, so a change committed at time T
 *   (a key revoked, a model deactivated, an alias switched, from any process) is seen by every call
 *   that starts after T + ttlMs, on every API process.
 * - On the process that made the change through the API (alias switch or rollback, activation,
 *   deactivation, discard: any non-GET request other than a chat completion), it is seen at once:
 *   such a request clears the model cache before its answer is sent, and a read that started before
 *   the clear is not stored.
 * - Only positive answers are kept: an unknown key, or a model not found, is asked again every call, so
 *   a newly activated model or a new key works at once.
 * - Entries are bounded (`maxEntries`, oldest dropped first), so a flood of distinct names cannot grow
 *   the process.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  /** Bumped by clear(): a read that began before it must not store its (possibly old) answer. */
  private generation = 0;

  constructor(
    readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  /** The cached answer for `key`, else `load()`'s (kept when it is not undefined and `keep` agrees). */
  async get(
    key: string,
    load: () => Promise<V | undefined>,
    keep: (value: V) => boolean = () => true,
  ): Promise<V | undefined> {
    if (this.ttlMs <= 0) return load();
    const started = performance.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > started) return hit.value;
    const generation = this.generation;
    const value = await load();
    if (value !== undefined && generation === this.generation && keep(value)) {
      this.entries.delete(key);
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
      this.entries.set(key, { value, until: started + this.ttlMs });
    }
    return value;
  }

  clear(): void {
    this.entries.clear();
    this.generation++;
  }

  get size(): number {
    return this.entries.size;
  }
}

type KeyHolder = NonNullable<Awaited<ReturnType<typeof findApiKeyHolder>>>;
export type ResolvedFineTune = NonNullable<Awaited<ReturnType<typeof findActiveFineTuneByModelOrAlias>>>;

/** The gateway's two caches (one per API process). */
export class GatewayCaches {
  readonly keys: TtlCache<KeyHolder>;
  readonly models: TtlCache<ResolvedFineTune>;

  constructor(
    private readonly db: Executor,
    ttlMs: number,
  ) {
    this.keys = new TtlCache(ttlMs);
    this.models = new TtlCache(ttlMs);
  }

  /** Who holds the key with this hash. License keys are cached; admin keys are read every time. */
  keyHolder = (keyHash: string): Promise<KeyHolder | undefined> =>
    this.keys.get(
      keyHash,
      () => findApiKeyHolder(this.db, keyHash),
      (holder) => holder.role === 'license',
    );

  /** The license's active fine-tune named `model`, or the one its alias `model` points at. */
  fineTune(licenseId: string, model: string): Promise<ResolvedFineTune | undefined> {
    return this.models.get(`${licenseId}\u0000${model}`, () =>
      findActiveFineTuneByModelOrAlias(this.db, licenseId, model),
    );
  }
}

/**
 * Clears the model cache before the answer of any write that is not a chat completion goes out: an
 * alias switch, an activation, a discard through this process take effect on its next call.
 */
export function clearModelsOnWrites(app: FastifyInstance, caches: GatewayCaches): void {
  if (caches.models.ttlMs <= 0) return;
  app.addHook('onSend', (request, _reply, payload, done) => {
    if (
      request.method !== 'GET' &&
      request.method !== 'HEAD' &&
      request.routeOptions.url !== '/v1/chat/completions'
    )
      caches.models.clear();
    done(null, payload);
  });
}
