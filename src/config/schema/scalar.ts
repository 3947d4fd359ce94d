/**
 * Scalar kinds: how one word of a keepalived statement (or one YAML scalar) becomes a typed value.
 * Each kind parses, prints back and describes itself for JSON Schema.
 */
import { isIPv4, isIPv6 } from "node:net";

export type ScalarResult<T> = { ok: true; value: T } | { ok: false; expected: string; message?: string };

export interface Scalar<T> {
  /** Short description used in "expected …" messages and docs, e.g. "an integer 1..255". */
  readonly expected: string;
  /** Parse a keepalived word. */
  parse(word: string): ScalarResult<T>;
  /** Parse a YAML scalar (number, boolean or string). */
  fromYaml(v: unknown): ScalarResult<T>;
  /** Print as a keepalived word. */
  print(v: T): string;
  /** Value as written to YAML. */
  toYaml(v: T): unknown;
  jsonSchema(): Record<string, unknown>;
}

const ok = <T>(value: T): ScalarResult<T> => ({ ok: true, value });
const bad = <T>(expected: string, message?: string): ScalarResult<T> => ({ ok: false, expected, message });

/** Wraps a word parser so YAML numbers/booleans are accepted as their text. */
function viaText<T>(s: Omit<Scalar<T>, "fromYaml">): Scalar<T> {
  return {
    ...s,
    fromYaml(v: unknown) {
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return s.parse(String(v));
      return bad(s.expected);
    },
  };
}

function rangeText(min: number, max: number): string {
  return `${min}..${max}`;
}

/** An integer in [min, max] (decimal, optional sign). */
export function int(min: number, max: number): Scalar<number> {
  const expected = `an integer ${rangeText(min, max)}`;
  return viaText({
    expected,
    parse(word) {
      if (!/^[+-]?\d+$/.test(word)) return bad(expected, `expected an integer, got '${word}'`);
      const n = Number(word);
      if (n < min || n > max) return bad(expected, `value ${word} out of range`);
      return ok(n);
    },
    print: (v) => String(v),
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "integer", minimum: min, maximum: max }),
  });
}

/** A decimal number (seconds and similar) in [min, max]. */
export function num(min: number, max: number, unit = "seconds"): Scalar<number> {
  const expected = `a number ${rangeText(min, max)} (${unit})`;
  return viaText({
    expected,
    parse(word) {
      if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(word)) return bad(expected, `expected a number, got '${word}'`);
      const n = Number(word);
      if (n < min || n > max) return bad(expected, `value ${word} out of range`);
      return ok(n);
    },
    print: (v) => String(v),
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "number", minimum: min, maximum: max }),
  });
}

/** Any single word. */
export function str(expected = "a word"): Scalar<string> {
  return viaText({
    expected,
    parse: (word) => ok(word),
    print: (v) => v,
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string" }),
  });
}

/** One of a fixed set of words; matched case-insensitively when `ci`, stored in canonical spelling. */
export function oneOf<const V extends string>(values: readonly V[], ci = true, noun?: string): Scalar<V> {
  const expected = `one of ${values.join(", ")}`;
  return viaText({
    expected,
    parse(word) {
      const hit = values.find((v) => (ci ? v.toLowerCase() === word.toLowerCase() : v === word));
      if (hit) return ok(hit);
      return bad(expected, noun ? `unknown ${noun} '${word}'` : `'${word}' is not ${expected}`);
    },
    print: (v) => v,
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string", enum: [...values] }),
  });
}

const TRUE_WORDS = ["on", "true", "yes"];
const FALSE_WORDS = ["off", "false", "no"];

/** keepalived's <BOOL>: on|off|true|false|yes|no. */
export function bool(): Scalar<boolean> {
  const expected = "one of on, off, true, false, yes, no";
  return {
    expected,
    parse(word) {
      const w = word.toLowerCase();
      if (TRUE_WORDS.includes(w)) return ok(true);
      if (FALSE_WORDS.includes(w)) return ok(false);
      return bad(expected, `'${word}' is not a boolean`);
    },
    fromYaml(v) {
      if (typeof v === "boolean") return ok(v);
      return typeof v === "string" ? this.parse(v) : bad(expected);
    },
    print: (v) => (v ? "true" : "false"),
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "boolean" }),
  };
}

export type IpFamily = "inet" | "inet6";

/** Family of a textual address, or undefined when it is not an address. */
export function ipFamily(addr: string): IpFamily | undefined {
  if (isIPv4(addr)) return "inet";
  if (isIPv6(addr)) return "inet6";
  return undefined;
}

/** An IPv4 or IPv6 address, optionally restricted to one family, optionally with /prefix. */
export function ip(opts: { family?: IpFamily; prefix?: boolean } = {}): Scalar<string> {
  const fam = opts.family === "inet" ? "IPv4 " : opts.family === "inet6" ? "IPv6 " : "IP ";
  const expected = `an ${fam}address${opts.prefix ? "[/prefix]" : ""}`.replace("an IPv4", "an IPv4").replace("an IP ", "an IP ");
  return viaText({
    expected,
    parse(word) {
      let addr = word;
      let plen: string | undefined;
      const slash = word.indexOf("/");
      if (slash >= 0) {
        if (!opts.prefix) return bad(expected, `invalid IP address '${word}'`);
        addr = word.slice(0, slash);
        plen = word.slice(slash + 1);
      }
      const f = ipFamily(addr);
      if (!f) return bad(expected, `invalid IP address '${word}'`);
      if (opts.family && f !== opts.family) return bad(expected, `invalid IP address '${word}': not ${fam.trim()}`);
      if (plen !== undefined) {
        const max = f === "inet" ? 32 : 128;
        if (!/^\d+$/.test(plen) || Number(plen) > max)
          return bad(expected, `invalid prefix length '/${plen}' in '${word}' (0..${max})`);
      }
      return ok(word);
    },
    print: (v) => v,
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string", format: opts.prefix ? "ip-prefix" : "ip-address" }),
  });
}

/** An IP address or a host name (smtp_server and similar). */
export function host(): Scalar<string> {
  const expected = "an IP address or host name";
  return viaText({
    expected,
    parse(word) {
      if (ipFamily(word) || /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(word))
        return ok(word);
      return bad(expected, `'${word}' is not ${expected}`);
    },
    print: (v) => v,
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string" }),
  });
}

/** A TCP/UDP port 0..65535. */
export const port = (): Scalar<number> => int(0, 65535);

/** A MAC address (6 octets, or 5 when the VRID is appended as keepalived allows for VMACs). */
export function mac(): Scalar<string> {
  const expected = "a MAC address xx:xx:xx:xx:xx[:xx]";
  return viaText({
    expected,
    parse: (w) => (/^[0-9a-f]{2}(:[0-9a-f]{2}){4,5}$/i.test(w) ? ok(w.toLowerCase()) : bad(expected, `'${w}' is not ${expected}`)),
    print: (v) => v,
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string", pattern: "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){4,5}$" }),
  });
}

/** A network interface name (at most 15 bytes, no '/' or whitespace), not a MAC address. */
export function ifname(): Scalar<string> {
  const expected = "an interface name";
  return viaText({
    expected,
    parse: (w) =>
      w.length > 0 && w.length <= 15 && !/[\s/]/.test(w) && !/^[0-9a-f]{2}(:[0-9a-f]{2}){4,5}$/i.test(w)
        ? ok(w)
        : bad(expected, `'${w}' is not a valid interface name (1..15 characters, no '/')`),
    print: (v) => v,
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string", maxLength: 15 }),
  });
}

/** A word matching a pattern (hex strings, `N|forever`, …). */
export function pattern(re: RegExp, expected: string): Scalar<string> {
  return viaText({
    expected,
    parse: (w) => (re.test(w) ? ok(w) : bad(expected, `'${w}' is not ${expected}`)),
    print: (v) => v,
    toYaml: (v) => v,
    jsonSchema: () => ({ type: "string", pattern: re.source }),
  });
}
