/**
 * HTTP_GET/SSL_GET without I/O: the request keepalived sends, and the response read until the
 * server closes (no chunked decoding: keepalived hashes the raw bytes after the headers), with
 * keepalived's rules for the status line, Content-Length, the MD5 digest, status ranges and the regex.
 */

/** keepalived's HTTP_STATUS_CODE_MIN/MAX: codes outside never match. */
const STATUS_MIN = 100;
const STATUS_MAX = 599;
/** Body bytes kept for the regex (the digest covers everything). */
const REGEX_BODY_LIMIT = 4 * 1024 * 1024;

export type HttpProtocol = "1.0" | "1.0C" | "1.1";

/** One `url { }` block, resolved. */
export interface UrlSpec {
  path: string;
  /** Lower-case hex MD5 of the body. */
  digest?: string;
  /** Accepted codes (default 200-299). */
  statusOk: (code: number) => boolean;
  virtualhost?: string;
  regex?: RegExp;
  regexNoMatch: boolean;
  /** First body offset a match may start at. */
  regexMinOffset: number;
  /** Last body offset a match may start at (undefined = no limit). */
  regexMaxOffset?: number;
}

/** The GET request keepalived writes (request_template in check_http.c). */
export function buildHttpRequest(o: { path: string; protocol: HttpProtocol; vhost?: string; ip: string; port: number }): string {
  const minor = o.protocol === "1.1" ? 1 : 0;
  const close = o.protocol === "1.0" ? "" : "Connection: close\r\n";
  const host = o.vhost ?? (o.ip.includes(":") ? `[${o.ip}]:${o.port}` : `${o.ip}:${o.port}`);
  return `GET ${o.path} HTTP/1.${minor}\r\nUser-Agent: KeepAliveClient\r\n${close}Host: ${host}\r\n\r\n`;
}

/**
 * Parses `status_code` words ("200", "200-299", "400-499") into a predicate; no words = 200-299.
 * Invalid words are reported and skipped, as keepalived does.
 */
export function statusPredicate(words: readonly string[] | undefined, onInvalid?: (w: string) => void): (code: number) => boolean {
  const ranges: Array<[number, number]> = [];
  for (const w of words ?? []) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(w);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < STATUS_MIN || hi > STATUS_MAX || hi < STATUS_MIN || lo > hi) onInvalid?.(w);
    else ranges.push([lo, hi]);
  }
  if (ranges.length === 0) ranges.push([200, 299]);
  return (code) => code >= STATUS_MIN && code <= STATUS_MAX && ranges.some(([lo, hi]) => code >= lo && code <= hi);
}

/** keepalived's extract_status_code: "HTTP/x.y NNN reason"; 0 when the line does not have that shape. */
export function extractStatusCode(head: string): number {
  let i = 0;
  while (i < head.length && head[i] !== " " && head[i] !== "\r") i++;
  if (head[i] !== " ") return 0;
  i++;
  // three digits followed by a space (keepalived requires the space before the reason phrase)
  if (i + 3 >= head.length || head[i] === " " || head[i + 3] !== " ") return 0;
  const digits = head.slice(i, i + 3);
  return /^\d{3}$/.test(digits) ? Number(digits) : 0;
}

/** The Content-Length header's value; undefined when absent or malformed. */
export function extractContentLength(head: string): number | undefined {
  const m = /(?:^|\r\n)content-length:[ \t]*(\d+)[ \t]*(?:\r|\n|$)/i.exec(head);
  return m ? Number(m[1]) : undefined;
}

/** Regex flags for keepalived's regex_options (PCRE2 names); unknown ones are returned too. */
export function regexFlags(options: readonly string[] | undefined): { flags: string; unsupported: string[] } {
  const map: Record<string, string> = { caseless: "i", multiline: "m", dotall: "s", utf: "u", ucp: "u" };
  let flags = "";
  const unsupported: string[] = [];
  for (const o of options ?? []) {
    const f = map[o];
    if (f) {
      if (!flags.includes(f)) flags += f;
    } else if (!["no_auto_capture", "dupnames", "never_utf", "never_ucp", "no_start_optimize", "no_auto_possess", "no_dotstar_anchor"].includes(o)) unsupported.push(o);
  }
  return { flags, unsupported };
}

/** A response read so far: headers, status, body digest and the body kept for the regex. */
export class HttpResponseReader {
  #head = "";
  #headDone = false;
  /** The raw header block (without the blank line), once complete. */
  headers?: string;
  status = 0;
  contentLength?: number;
  /** Body bytes received. */
  bodyBytes = 0;
  #hasher = new Bun.CryptoHasher("md5");
  #hashed = 0;
  #digest: string | undefined;
  #body: Uint8Array[] = [];
  #kept = 0;
  /** Hex dump sink for genhash -v (headers then body, as received). */
  onBody?: (chunk: Uint8Array) => void;

  /** Feeds bytes as they arrive. */
  push(chunk: Uint8Array): void {
    if (!this.#headDone) {
      // find CRLFCRLF across chunk boundaries (extract_html)
      const text = this.#head + Buffer.from(chunk).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) {
        this.#head = text;
        return;
      }
      this.#headDone = true;
      this.headers = text.slice(0, end);
      this.status = extractStatusCode(this.headers);
      this.contentLength = extractContentLength(this.headers);
      const rest = Buffer.from(text.slice(end + 4), "latin1");
      this.#head = "";
      if (rest.length) this.#bodyChunk(new Uint8Array(rest));
      return;
    }
    this.#bodyChunk(chunk);
  }

  #bodyChunk(chunk: Uint8Array): void {
    this.onBody?.(chunk);
    // like keepalived, hash no further than Content-Length when the server gave one
    const room = this.contentLength === undefined ? chunk.length : Math.max(0, Math.min(chunk.length, this.contentLength - this.#hashed));
    if (room > 0) {
      this.#hasher.update(room === chunk.length ? chunk : chunk.subarray(0, room));
      this.#hashed += room;
    }
    this.bodyBytes += chunk.length;
    if (this.#kept < REGEX_BODY_LIMIT) {
      const part = chunk.subarray(0, REGEX_BODY_LIMIT - this.#kept);
      this.#body.push(part.slice());
      this.#kept += part.length;
    }
  }

  /** Whether the header block ended (keepalived's `extracted`). */
  get complete(): boolean {
    return this.#headDone;
  }

  /** Hex MD5 of the body (up to Content-Length). */
  digest(): string {
    this.#digest ??= this.#hasher.digest("hex");
    return this.#digest;
  }

  /** The kept body as latin1 text (byte offsets = string offsets), or UTF-8 with `utf`. */
  bodyText(utf = false): string {
    return Buffer.concat(this.#body).toString(utf ? "utf8" : "latin1");
  }
}

/** Whether `re` matches `body` with the match starting within [min, max] (regex_min/max_offset). */
export function regexMatches(re: RegExp, body: string, min: number, max?: number): boolean {
  const g = new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g");
  g.lastIndex = Math.min(min, body.length);
  const m = g.exec(body);
  return !!m && (max === undefined || m.index <= max);
}

/** The verdict on one url (http_handle_response): ok, or keepalived's reason for the failure. */
export function judgeResponse(url: UrlSpec, r: HttpResponseReader): { ok: boolean; detail: string; note?: string } {
  if (!r.complete) return { ok: false, detail: "Read, no data received" };
  if (!url.statusOk(r.status)) return { ok: false, detail: `HTTP status code error (${r.status || "no status"})` };
  let note: string | undefined;
  if (r.contentLength !== undefined && r.contentLength !== r.bodyBytes)
    note = `content_length (${r.contentLength}) does not match received bytes (${r.bodyBytes})`;
  let detail = `HTTP status code ${r.status}`;
  if (url.digest) {
    const got = r.digest();
    if (got !== url.digest.toLowerCase()) return { ok: false, detail: `MD5 digest error (got ${got})`, ...(note ? { note } : {}) };
    detail = "MD5 digest";
  }
  if (url.regex) {
    const matched = regexMatches(url.regex, r.bodyText(url.regex.flags.includes("u")), url.regexMinOffset, url.regexMaxOffset);
    if (matched === url.regexNoMatch) return { ok: false, detail: "Regex match failed", ...(note ? { note } : {}) };
    detail = "Regex match";
  }
  return { ok: true, detail, ...(note ? { note } : {}) };
}
