/** Formats of the wire contract that tests match values against. */

/** A version 4 uuid, lower case, unanchored: for building larger patterns (a resource URI). */
export const UUID4_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

/** A whole version 4 uuid, lower case, as the API writes them. */
export const UUID4 = new RegExp(`^${UUID4_PATTERN}$`);

/** The CLI's test for a full identifier (wire contract): a whole version 4 uuid, in either case. */
export const UUID4_ANY_CASE = new RegExp(`^${UUID4_PATTERN}$`, "i");

/** Docker Cloud's date format, "Mon, 13 Oct 2014 11:01:43 +0000", with the literal +0000 the CLI parses. */
export const RFC1123 =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/;

/** The shape of that date format only: any three word characters stand for the day and the month names. */
export const RFC1123_SHAPE = /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/;
