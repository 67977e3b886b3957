/** The value `cache` holds for `key`, made by `make` (and kept) the first time it is asked for. */
export function cachedIn<K, V>(
  cache: { get(key: K): V | undefined; set(key: K, value: V): unknown },
  key: K,
  make: (key: K) => V,
): V {
  const held = cache.get(key);
  if (held !== undefined) return held;
  const made = make(key);
  cache.set(key, made);
  return made;
}
