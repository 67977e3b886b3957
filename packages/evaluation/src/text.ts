// Text normalisation shared by every comparison: Unicode NFKC, case-folded, whitespace collapsed.

const WHITESPACE = /\s+/gu;

/**
 * NFKC, then a full case fold (upper then lower case, so "ß" and "ẞ" become "ss" as Unicode's folding
 * does; a second NFKC recomposes what the case mapping decomposed), then runs of whitespace as one
 * space, trimmed. "Straße", "STRASSE" and "ｓｔｒａｓｓｅ" normalise to the same text.
 */
export function normaliseText(text: string): string {
  let out = text.normalize('NFKC');
  // ASCII needs no fold beyond lower case; skip the round trip for it (the common case).
  out = isAscii(out) ? out.toLowerCase() : out.toUpperCase().toLowerCase().normalize('NFKC');
  return out.replace(WHITESPACE, ' ').trim();
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
