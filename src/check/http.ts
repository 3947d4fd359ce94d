/**
 * HTTP_GET and SSL_GET: fetch one url per check, read until the server closes, then judge the
 * status, digest and regex (http-response.ts). SSL_GET uses TLS without certificate
 * verification, with SNI when enable_sni (sni_name, else the virtualhost), presenting the
 * global SSL { } client certificate when there is one.
 */
import { readFileSync } from "node:fs";
import type { Doc } from "../config/schema/kinds.ts";
import type { Checker, CheckOutcome, ConnectTarget } from "./checker.ts";
import { openConnection, type TlsClientContext, type TlsSettings } from "./connect.ts";
import { HttpResponseReader, buildHttpRequest, judgeResponse, regexFlags, statusPredicate, type HttpProtocol, type UrlSpec } from "./http-response.ts";

/** An HTTP_GET/SSL_GET block resolved for running. */
export interface HttpCheckSpec {
  ssl: boolean;
  protocol: HttpProtocol;
  urls: UrlSpec[];
  /** The checker's virtualhost, else the real server's, else the virtual server's. */
  virtualhost?: string;
  sni?: string;
  /** SSL_GET: the global SSL { } client context (certificate, key, CA). */
  tlsContext?: TlsClientContext;
  fastRecovery: boolean;
}

/** Builds the spec from the checker's document; `problems` collects config issues keepalived would log. */
export function httpCheckSpec(type: string, doc: Doc, inheritedVhost: string | undefined, problems: string[] = []): HttpCheckSpec {
  const urls: UrlSpec[] = [];
  for (const u of (doc.url as Doc[] | undefined) ?? []) {
    if (typeof u.path !== "string") {
      problems.push("HTTP/SSL_GET checker url has no path - ignoring");
      continue;
    }
    const spec: UrlSpec = {
      path: u.path,
      statusOk: statusPredicate(u.status_code as string[] | undefined, (w) => problems.push(`Invalid HTTP_GET status code '${w}'`)),
      regexNoMatch: u.regex_no_match === true,
      regexMinOffset: typeof u.regex_min_offset === "number" ? u.regex_min_offset : 0,
    };
    if (typeof u.digest === "string") spec.digest = u.digest.toLowerCase();
    if (typeof u.virtualhost === "string") spec.virtualhost = u.virtualhost;
    if (typeof u.regex_max_offset === "number") spec.regexMaxOffset = u.regex_max_offset;
    if (typeof u.regex === "string") {
      const { flags, unsupported } = regexFlags(u.regex_options as string[] | undefined);
      if (unsupported.length) problems.push(`regex_options not supported (ignored): ${unsupported.join(" ")}`);
      try {
        spec.regex = new RegExp(u.regex, flags);
      } catch (e) {
        problems.push(`Invalid regex: '${u.regex}': ${(e as Error).message}`);
      }
      if (spec.regexMaxOffset !== undefined && spec.regexMinOffset > spec.regexMaxOffset) {
        problems.push(`regex min offset ${spec.regexMinOffset} > regex_max_offset ${spec.regexMaxOffset} - ignoring`);
        spec.regexMinOffset = 0;
        delete spec.regexMaxOffset;
      }
    }
    urls.push(spec);
  }
  const virtualhost = typeof doc.virtualhost === "string" ? doc.virtualhost : inheritedVhost;
  const s: HttpCheckSpec = {
    ssl: type === "SSL_GET",
    protocol: (doc.http_protocol === "1.0C" || doc.http_protocol === "1.0c" ? "1.0C" : doc.http_protocol === "1.1" ? "1.1" : "1.0") as HttpProtocol,
    urls,
    fastRecovery: doc.fast_recovery === true,
  };
  if (virtualhost !== undefined) s.virtualhost = virtualhost;
  if (s.ssl && doc.enable_sni === true) {
    const sni = typeof doc.sni_name === "string" ? doc.sni_name : virtualhost;
    if (sni !== undefined) s.sni = sni;
  }
  return s;
}

/**
 * Reads the global SSL { } block's files into SSL_GET's client context (keepalived's
 * build_ssl_ctx: certificate chain, key decrypted with `password`, `ca` as trust store);
 * undefined without a block, `{ error }` when a file cannot be read.
 */
export function loadTlsClientContext(ssl: Doc | undefined, read: (path: string) => string = (p) => readFileSync(p, "utf8")): TlsClientContext | { error: string } | undefined {
  if (!ssl) return undefined;
  const ctx: TlsClientContext = {};
  const files: Array<[keyof TlsClientContext, string, string]> = [["cert", "certificate", "Cant load certificate file"], ["key", "key", "Cant load key file"], ["ca", "ca", "Cant load CA file"]];
  for (const [field, keyword, words] of files) {
    const path = ssl[keyword];
    if (typeof path !== "string") continue;
    try {
      ctx[field] = read(path);
    } catch (e) {
      return { error: `SSL error : ${words} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
  }
  if (typeof ssl.password === "string") ctx.passphrase = ssl.password;
  return ctx;
}

/** Fetches one url and returns the response reader (or a failure) without judging it. */
export async function fetchUrl(
  target: ConnectTarget, spec: Pick<HttpCheckSpec, "ssl" | "protocol" | "virtualhost" | "sni" | "tlsContext">, url: Pick<UrlSpec, "path" | "virtualhost">,
  observe?: (r: HttpResponseReader) => void, onSocket?: (destroy: () => void) => void,
): Promise<{ ok: true; response: HttpResponseReader } | { ok: false; detail: string }> {
  let tlsSettings: TlsSettings | undefined;
  if (spec.ssl) {
    tlsSettings = {};
    if (spec.sni !== undefined) tlsSettings.servername = spec.sni;
    if (spec.tlsContext) tlsSettings.context = spec.tlsContext;
  }
  const c = await openConnection(target, tlsSettings);
  if (!c.ok) return c;
  onSocket?.(() => c.conn.destroy());
  try {
    const vhost = url.virtualhost ?? spec.virtualhost;
    const ip = target.host.replace(/%.*$/, "");
    const req = buildHttpRequest({ path: url.path, protocol: spec.protocol, ip, port: target.port, ...(vhost !== undefined ? { vhost } : {}) });
    if (!(await c.conn.write(req))) return { ok: false, detail: "Cannot send get request" };
    const r = new HttpResponseReader();
    observe?.(r);
    let first = true;
    for (;;) {
      const chunk = await c.conn.inbox.next(target.timeoutMs);
      if (chunk.kind === "timeout") return { ok: false, detail: first ? "Timeout WEB read" : "Timeout HTTP read" };
      if (chunk.kind === "error") return { ok: false, detail: `Read error: ${chunk.detail}` };
      if (chunk.kind === "end") break;
      first = false;
      r.push(chunk.data);
    }
    return { ok: true, response: r };
  } finally {
    c.conn.destroy();
  }
}

/** keepalived's HTTP_GET / SSL_GET (check_http.c). */
export class HttpChecker implements Checker {
  readonly type: string;
  #destroy = new Set<() => void>();

  constructor(readonly target: ConnectTarget, readonly spec: HttpCheckSpec) {
    this.type = spec.ssl ? "SSL_GET" : "HTTP_GET";
  }

  /** How many urls the scheduler iterates over. */
  get urlCount(): number {
    return this.spec.urls.length;
  }

  /** Fetches url number `index` and judges it; with no url at all the check passes. */
  async run(index: number): Promise<CheckOutcome> {
    const url = this.spec.urls[index];
    if (!url) return { ok: true, detail: "no url to check" };
    let destroy: (() => void) | undefined;
    const f = await fetchUrl(this.target, this.spec, url, undefined, (d) => {
      destroy = d;
      this.#destroy.add(d);
    });
    if (destroy) this.#destroy.delete(destroy);
    if (!f.ok) return { ok: false, detail: `${f.detail} url(${url.path})` };
    const j = judgeResponse(url, f.response);
    const out: CheckOutcome = { ok: j.ok, detail: `${j.detail} url(${url.path})` };
    if (j.note) out.note = j.note;
    return out;
  }

  close(): void {
    for (const d of this.#destroy) d();
    this.#destroy.clear();
  }
}
