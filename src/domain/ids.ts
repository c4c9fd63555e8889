/** uuid4 from the runtime's cryptographic source: trigger uuids are the only secret of their URL. */
export const newUuid = (): string => crypto.randomUUID();

/**
 * uuid4s that share their first two hex digits, so that they fall in one
 * shard of the service locator (its pointers are one write): for services
 * brought in together. They keep 114 random bits; a service uuid is no secret.
 */
export function newUuidsInOneShard(count: number): string[] {
  const shard = newUuid().slice(0, 2);
  return Array.from({ length: count }, () => shard + newUuid().slice(2));
}

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Any uuid, any version, either case: how a client may name a service of another server. */
export const ANY_UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function isUuid4(value: string): boolean {
  return UUID4.test(value);
}

/** Ids compare lower-case; clients may print them in either case. */
export function normalizeUuid(value: string): string | null {
  const lower = value.toLowerCase();
  return isUuid4(lower) ? lower : null;
}

/**
 * 16 or more hex digits, a dash allowed between any two: a uuid in any case, with or without
 * dashes, or half of one or more. Shorter runs (a date or a count in a name) stay readable.
 */
const ID_LIKE = /[0-9a-f](?:-?[0-9a-f]){15,}/gi;
const ASCII_ESCAPE = /%([0-7][0-9a-f])/gi;
/** Deeper than this, a path is not a typo: it is not shown at all. */
const MAX_DECODE_ROUNDS = 8;

/**
 * Text taken from a request (a path, a segment) as an error message may show it: percent-escapes
 * of ASCII decoded (repeatedly: %2561 is a), then every uuid-shaped run hidden. A trigger uuid is
 * the secret of its URL, and answers to mistyped URLs end up in CI logs and chat rooms.
 */
export function hideIds(text: string): string {
  let decoded = text;
  for (let round = 0; ; round++) {
    const next = decoded.replace(ASCII_ESCAPE, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (next === decoded) break;
    if (round === MAX_DECODE_ROUNDS) return "[hidden]";
    decoded = next;
  }
  return decoded.replace(ID_LIKE, "[id]");
}
