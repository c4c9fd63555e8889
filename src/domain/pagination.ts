export const DEFAULT_LIMIT = 25;
export const MAX_LIMIT = 100;

export type Page = { limit: number; offset: number };

export type ListMeta = {
  limit: number;
  next: string | null;
  offset: number;
  previous: string | null;
  total_count: number;
};

export type Envelope<T> = { meta: ListMeta; objects: T[] };

/** One page of a list and the total it is a page of; routes wrap it in the envelope. */
export type Listing<T> = { total: number; objects: T[] };

/**
 * `limit` defaults to 25 and is capped at 100; meta.limit shows the value
 * applied. A limit of 0 is refused: with a non-null `next` it would make the
 * Python SDK page for ever.
 */
export function parsePage(query: { limit?: string; offset?: string }): Page | { error: string } {
  let limit = DEFAULT_LIMIT;
  let offset = 0;
  if (query.limit !== undefined && query.limit !== "") {
    if (!/^\d+$/.test(query.limit) || Number(query.limit) < 1)
      return { error: "limit must be a whole number from 1 to 100" };
    limit = Math.min(Number(query.limit), MAX_LIMIT);
  }
  if (query.offset !== undefined && query.offset !== "") {
    if (!/^\d+$/.test(query.offset) || !Number.isSafeInteger(Number(query.offset)))
      return { error: "offset must be a whole number, 0 or more" };
    offset = Number(query.offset);
  }
  return { limit, offset };
}

/**
 * The list envelope. `next` and `previous` are root-relative paths starting
 * with /api/ (the Go SDK cuts the first 5 characters and requests the rest),
 * keeping the other query parameters (the filters).
 */
export function envelope<T>(
  path: string,
  params: URLSearchParams,
  page: Page,
  total: number,
  objects: T[],
): Envelope<T> {
  const link = (offset: number) => {
    const q = new URLSearchParams(params);
    q.set("limit", String(page.limit));
    q.set("offset", String(offset));
    return `${path}?${q.toString()}`;
  };
  return {
    meta: {
      limit: page.limit,
      next: page.offset + page.limit < total ? link(page.offset + page.limit) : null,
      offset: page.offset,
      previous: page.offset > 0 ? link(Math.max(0, page.offset - page.limit)) : null,
      total_count: total,
    },
    objects,
  };
}
