/**
 * Hides secrets in text that a target sends back. A receiver may echo what it
 * was sent in another form than it was sent: a webhook key without its
 * "whsec_" prefix, base64 in either alphabet with or without padding, hex in
 * either case, percent-encoded (either case, even twice), form-encoded, JSON-,
 * JavaScript- or HTML-escaped, or any mix of these. So the text is decoded
 * first (every escape, nested ones too), each decoded character remembering
 * the stretch of the text it came from; the secrets are searched for in the
 * decoded text, and the stretches they came from are replaced.
 */

import { toBase64, toHex } from "./crypto";

/** Replaces every secret in `text`; `cut` says the text was cut at a read limit (a secret may be cut with it). */
export type Scrub = (text: string, cut?: boolean) => string;

/** What to hide: texts (in any encoding), and bytes (as base64 of either alphabet or as hex, in any encoding). */
export type Hidden = { texts?: readonly string[]; bytes?: readonly Uint8Array[] };

export const REDACTED = "[redacted]";

/** Escapes inside escapes decoded at most this deep (a JSON string in a JSON string, percent-encoded...). */
const MAX_DEPTH = 4;
/** Characters an incomplete escape at the end of a cut text may leave undecoded ("%F0%9F%98", "&#x1F60"). */
const MAX_PARTIAL_ESCAPE = 12;

/** One UTF-16 unit of decoded text, and the stretch [start, end) of the original text it came from. */
type Unit = { c: string; start: number; end: number };
type Decoded = { units: string[]; next: number };

const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  sol: "/",
  bsol: "\\",
  plus: "+",
  equals: "=",
  colon: ":",
  percnt: "%",
  lowbar: "_",
  num: "#",
  quest: "?",
  excl: "!",
};
const SHORT_ESCAPES: Record<string, string> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  "/": "/",
  '"': '"',
  "'": "'",
  "\\": "\\",
};

const unitsOf = (s: string) => Array.from({ length: s.length }, (_, i) => s[i] as string);

/** %XX: a UTF-8 sequence of them, or else one byte as Latin-1. */
function percentAt(src: Unit[], i: number): Decoded | null {
  const byteAt = (j: number) =>
    src[j]?.c === "%" && isHex(src[j + 1]?.c) && isHex(src[j + 2]?.c)
      ? Number.parseInt(`${src[j + 1]?.c}${src[j + 2]?.c}`, 16)
      : null;
  const lead = byteAt(i);
  if (lead === null) return null;
  const length =
    lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead < 0xf5 ? 4 : 0;
  const bytes = [lead];
  for (let k = 1; k < length; k++) {
    const b = byteAt(i + 3 * k);
    if (b === null || (b & 0xc0) !== 0x80) break;
    bytes.push(b);
  }
  if (length > 1 && bytes.length === length) {
    try {
      const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(new Uint8Array(bytes));
      return { units: unitsOf(text), next: i + 3 * length };
    } catch {
      // not UTF-8 after all: read the lead byte alone
    }
  }
  return { units: [String.fromCharCode(lead)], next: i + 3 };
}

/** \uXXXX, \xXX, \n, \/, \\ ... */
function backslashAt(src: Unit[], i: number): Decoded | null {
  const kind = src[i + 1]?.c;
  const hexRun = (from: number, n: number) => {
    let s = "";
    for (let k = 0; k < n; k++) {
      const c = src[from + k]?.c;
      if (!isHex(c)) return null;
      s += c;
    }
    return Number.parseInt(s, 16);
  };
  if (kind === "u" || kind === "x") {
    const n = kind === "u" ? 4 : 2;
    const code = hexRun(i + 2, n);
    return code === null ? null : { units: [String.fromCharCode(code)], next: i + 2 + n };
  }
  const short = kind === undefined ? undefined : SHORT_ESCAPES[kind];
  return short === undefined ? null : { units: [short], next: i + 2 };
}

/** &#NN; &#xHH; &name; */
function entityAt(src: Unit[], i: number): Decoded | null {
  let j = i + 1;
  let body = "";
  while (j < src.length && j - i <= 10 && src[j]?.c !== ";") body += src[j++]?.c ?? "";
  if (src[j]?.c !== ";") return null;
  let code: number | null = null;
  if (/^#[0-9]{1,7}$/.test(body)) code = Number.parseInt(body.slice(1), 10);
  else if (/^#[xX][0-9A-Fa-f]{1,6}$/.test(body)) code = Number.parseInt(body.slice(2), 16);
  if (code !== null) return code <= 0x10ffff ? { units: unitsOf(String.fromCodePoint(code)), next: j + 1 } : null;
  const named = NAMED_ENTITIES[body];
  return named === undefined ? null : { units: [named], next: j + 1 };
}

function decodePass(src: Unit[]): { out: Unit[]; changed: boolean } {
  const out: Unit[] = [];
  let changed = false;
  for (let i = 0; i < src.length; ) {
    const unit = src[i] as Unit;
    const decoded =
      unit.c === "%"
        ? percentAt(src, i)
        : unit.c === "\\"
          ? backslashAt(src, i)
          : unit.c === "&"
            ? entityAt(src, i)
            : null;
    if (!decoded) {
      out.push(unit);
      i++;
      continue;
    }
    const end = (src[decoded.next - 1] as Unit).end;
    for (const c of decoded.units) out.push({ c, start: unit.start, end });
    i = decoded.next;
    changed = true;
  }
  return { out, changed };
}

/**
 * The text at every depth of decoding: as it is, then with its escapes decoded, then with the
 * escapes those revealed decoded, and so on; each unit remembers the stretch of the text it came
 * from. Every depth is searched: a decoding can also swallow the start of a secret (a '%' just
 * before a hex key beginning "26" decodes as '&').
 */
function decodeLevels(text: string): Unit[][] {
  let units = unitsOf(text).map((c, i) => ({ c, start: i, end: i + 1 }));
  const levels = [units];
  if (!/[%\\&]/.test(text)) return levels;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const pass = decodePass(units);
    if (!pass.changed) break;
    units = pass.out;
    levels.push(units);
  }
  return levels;
}

/** The text with every escape decoded, nested ones too. */
const decodedText = (s: string) => (decodeLevels(s).at(-1) ?? []).map((u) => u.c).join("");

/** Base64 without its padding: the padding is matched separately (`padded`). */
const base64 = (bytes: Uint8Array) => toBase64(bytes).replace(/=+$/, "");

type Needle = { text: string; padded?: boolean; anyCase?: boolean };

/** A scrubber of the given secrets. Nothing to hide: text passes unchanged. */
export function secretScrubber(hidden: Hidden): Scrub {
  const needles: Needle[] = [];
  for (const secret of hidden.texts ?? []) {
    const text = decodedText(secret);
    needles.push({ text });
    // Form encoding writes a space as '+'.
    if (text.includes(" ")) needles.push({ text: text.replace(/ /g, "+") });
  }
  for (const bytes of hidden.bytes ?? []) {
    const standard = base64(bytes);
    needles.push({ text: standard, padded: true });
    needles.push({ text: standard.replace(/\+/g, "-").replace(/\//g, "_"), padded: true });
    needles.push({ text: toHex(bytes), anyCase: true });
  }
  const active = needles.filter((n) => n.text !== "");
  if (active.length === 0) return (text) => text;
  return (text, cut = false) => {
    const ranges: [number, number][] = [];
    for (const units of decodeLevels(text)) ranges.push(...found(units, active, cut ? text.length : null));
    return replaceRanges(text, ranges);
  };
}

/**
 * The stretches of the original text that hold a needle at one depth of decoding; with `cutAt`
 * (the text's length, when it was cut at a read limit), also the start of a secret at its end.
 */
function found(units: Unit[], needles: Needle[], cutAt: number | null): [number, number][] {
  const plain = units.map((u) => u.c).join("");
  const start = (i: number) => (units[i] as Unit).start;
  const end = (i: number) => (units[i] as Unit).end;
  // Lower-casing A-F only keeps every index in place.
  const lowered = plain.replace(/[A-F]/g, (c) => c.toLowerCase());
  const ranges: [number, number][] = [];
  for (const needle of needles) {
    const haystack = needle.anyCase ? lowered : plain;
    const length = needle.text.length;
    for (let at = haystack.indexOf(needle.text); at !== -1; at = haystack.indexOf(needle.text, at + 1)) {
      let last = at + length - 1;
      while (needle.padded && last < at + length + 1 && plain[last + 1] === "=") last++;
      ranges.push([start(at), end(last)]);
    }
  }
  if (cutAt !== null) {
    // The text ends inside an answer: a secret may be cut there, with an escape left incomplete after it.
    const from = cutSecretStart(plain, lowered, needles);
    if (from !== null) ranges.push([start(from), cutAt]);
  }
  return ranges;
}

/** Where the beginning of a secret starts at the end of the decoded text (before a few undecoded characters). */
function cutSecretStart(plain: string, lowered: string, needles: Needle[]): number | null {
  let earliest: number | null = null;
  for (let end = plain.length; end >= Math.max(0, plain.length - MAX_PARTIAL_ESCAPE); end--) {
    for (const needle of needles) {
      const haystack = needle.anyCase ? lowered : plain;
      for (let k = Math.min(needle.text.length - 1, end); k >= 1; k--) {
        if (haystack.startsWith(needle.text.slice(0, k), end - k)) {
          if (earliest === null || end - k < earliest) earliest = end - k;
          break;
        }
      }
    }
  }
  return earliest;
}

function replaceRanges(text: string, ranges: [number, number][]): string {
  if (ranges.length === 0) return text;
  ranges.sort((a, b) => a[0] - b[0]);
  let out = "";
  let at = 0;
  for (const [start, end] of ranges) {
    if (end <= at) continue;
    out += text.slice(at, Math.max(at, start));
    if (start >= at) out += REDACTED;
    at = end;
  }
  return out + text.slice(at);
}
