import { z } from "@hono/zod-openapi";
import { parseDateFilter } from "../../domain/dates";
import { hideIds, normalizeUuid } from "../../domain/ids";
import { DEFAULT_LIMIT, MAX_LIMIT, parsePage } from "../../domain/pagination";
import { CONTAINER_CEILING } from "../../domain/service";
import { refuse } from "../../http/validation";

/**
 * Path and query parameters. Each schema hands the handler the value it means (a number, a
 * lower-case uuid, a boolean) and says in the document what it takes; a value it refuses gets the
 * answer the handlers gave before these checks moved here (`refuse`), word for word.
 */

/** A uuid4 in either case (clients print them either way); the API compares them lower-case. */
const UUID4 = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$";

/**
 * A uuid in a path, lower-cased. Anything else is a 404 with `notFound`'s message: an id that
 * cannot exist names nothing (a 400 would tell a caller which of its guesses are well-formed).
 */
export const uuidParam = (description: string, notFound: (raw: string) => string) =>
  z
    .string()
    .transform((raw, ctx) => normalizeUuid(raw) ?? refuse(ctx, "not_found", notFound(raw)))
    .openapi({ description, format: "uuid", pattern: UUID4 });

/** `{uuid}` of a service's paths. */
export const serviceUuid = () =>
  uuidParam("the service uuid", (raw) => `Service not found: '${hideIds(raw).slice(0, 40)}' is not a service uuid`);

/** limit and offset, with the rules and messages of `parsePage`. */
export const PageQuery = {
  limit: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const page = parsePage({ limit: raw });
      return "error" in page ? refuse(ctx, "bad_request", page.error) : page.limit;
    })
    .openapi({
      type: "integer",
      minimum: 1,
      maximum: MAX_LIMIT,
      default: DEFAULT_LIMIT,
      description: `page size, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT}); a larger one is served as ${MAX_LIMIT}`,
    }),
  offset: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const page = parsePage({ offset: raw });
      return "error" in page ? refuse(ctx, "bad_request", page.error) : page.offset;
    })
    .openapi({
      type: "integer",
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      default: 0,
      description: "index of the first object (default 0)",
    }),
};

/** The N of a trigger's `.../call/N/`: how many containers a SCALEUP adds. */
export const CountParam = z
  .string()
  .transform((raw, ctx) =>
    /^\d{1,6}$/.test(raw) && Number(raw) >= 1
      ? Number(raw)
      : refuse(
          ctx,
          "bad_request",
          `the count to scale up by must be a whole number of 1 or more, not '${hideIds(raw).slice(0, 20)}'`,
        ),
  )
  .openapi({
    type: "integer",
    minimum: 1,
    maximum: CONTAINER_CEILING,
    description:
      "SCALEUP only: how many containers to add (default 1); at most the service's max_num_containers, which is at most " +
      `${CONTAINER_CEILING}`,
  });

/** A boolean in a query, as the SDKs write it: Python `True`/`False`, Go `false`; absent or empty is null. */
export const booleanQuery = (field: string) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === "") return null;
      const v = raw.toLowerCase();
      if (v === "true" || v === "1") return true;
      if (v === "false" || v === "0") return false;
      return refuse(ctx, "bad_request", `${field} must be true or false, not '${hideIds(raw).slice(0, 20)}'`);
    })
    .openapi({ type: "boolean", description: "true or false in any case (Python's True and False too), or 1 or 0" });

/**
 * A date filter, as milliseconds. Dates are shown to the second, so a whole-second upper bound
 * (`upper`) covers that whole second.
 */
export const dateQuery = (field: string, upper = false) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return undefined;
      const ms = parseDateFilter(raw);
      if (ms === null)
        return refuse(ctx, "bad_request", `${field} must be a date (RFC 1123, ISO 8601 or epoch seconds)`);
      return upper && ms % 1000 === 0 ? ms + 999 : ms;
    })
    .openapi({
      description: `RFC 1123 ("Mon, 13 Oct 2014 11:01:43 +0000"), ISO 8601 or epoch seconds${upper ? "; a whole second includes all of it" : ""}`,
    });
