/**
 * Characters that could start a new line, move a terminal's cursor or make
 * text read otherwise than it is stored: the C0 controls (tab, line feed,
 * carriage return, escape, ...), DEL, the C1 controls (NEL U+0085, CSI U+009B,
 * ...), the line and paragraph separators U+2028 and U+2029, and the
 * bidirectional-text controls (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069; "Trojan Source", CVE-2021-42574).
 */
const UNSAFE_SOURCE =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]";
const UNSAFE = new RegExp(UNSAFE_SOURCE);
const UNSAFE_ALL = new RegExp(UNSAFE_SOURCE, "g");

const codePoint = (c: string) => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;

/** Why `text` cannot be a name or label (it holds an unsafe character), or null when it can. */
export function unsafeTextProblem(field: string, text: string): string | null {
  const found = UNSAFE.exec(text);
  if (!found) return null;
  return `${field} must not contain control characters, line or paragraph separators, or bidirectional-text controls (found ${codePoint(found[0])} at character ${found.index + 1})`;
}

/** A zod check (`.superRefine(refuseUnsafeText("name"))`) refusing unsafe characters in a field. */
export function refuseUnsafeText(field: string) {
  return (text: string, ctx: { addIssue: (issue: { code: "custom"; message: string }) => void }) => {
    const problem = unsafeTextProblem(field, text);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  };
}

/**
 * Text that a user or a target controls, as it is written into a log line: a
 * JSON string literal, with the unsafe characters escaped too, so it is one
 * line whatever it holds and a quote inside it cannot end it early:
 * `ci"\n2026-...` becomes `"ci\"\n2026-..."`.
 */
export function quote(text: string): string {
  return JSON.stringify(text).replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
