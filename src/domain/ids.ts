/** uuid4 from the runtime's cryptographic source: trigger uuids are the only secret of their URL. */
export const newUuid = (): string => crypto.randomUUID();

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isUuid4(value: string): boolean {
  return UUID4.test(value);
}

/** Ids compare lower-case; clients may print them in either case. */
export function normalizeUuid(value: string): string | null {
  const lower = value.toLowerCase();
  return isUuid4(lower) ? lower : null;
}
