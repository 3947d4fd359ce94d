/**
 * `vipd genhash`: keepalived's genhash. Fetches one url like HTTP_GET/SSL_GET and prints the MD5
 * digest of the body for `digest` lines; -v also dumps the header and body as keepalived does.
 *
 *   vipd genhash -s SERVER -p PORT -u URL [-S] [-I] [-V VHOST] [-P 1.0|1.0c|1.1] [-t SECS] [-v]
 */
import { fetchUrl } from "../check/http.ts";
import type { HttpProtocol } from "../check/http-response.ts";
import { parseCommandArgs } from "./config-args.ts";

const USAGE = "-s SERVER -p PORT -u URL [-S|--use-ssl] [-I|--use-sni] [--sni-name NAME] [-V VHOST] [-P 1.0|1.0c|1.1] [-t SECONDS] [-m FWMARK] [-v]";

const DELIM = (title: string) => `-----------------------[${title}]-----------------------\n`;

/** keepalived's dump_buffer: offset, 16 hex bytes in two groups of 8, then the printable characters. */
export function dumpBuffer(b: Uint8Array): string {
  let out = "";
  for (let row = 0; row < b.length; row += 16) {
    out += String(row & 0xffff).padStart(4, "0") + " ";
    let ascii = "";
    for (let i = row; i < row + 16; i++) {
      out += i < b.length ? " " + b[i]!.toString(16).padStart(2, "0") : "   ";
      ascii += i < b.length ? (b[i]! >= 0x20 && b[i]! <= 0x7e ? String.fromCharCode(b[i]!) : ".") : " ";
      if (i === row + 7) out += " -";
    }
    out += "   " + ascii + "\n";
  }
  return out;
}

/** Runs genhash; exit 0 with the digest on stdout, 1 when the fetch fails. */
export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("genhash", argv, {
    server: { type: "string", short: "s" },
    port: { type: "string", short: "p" },
    url: { type: "string", short: "u" },
    "use-ssl": { type: "boolean", short: "S" },
    "use-sni": { type: "boolean", short: "I" },
    "sni-name": { type: "string" },
    "use-virtualhost": { type: "string", short: "V" },
    protocol: { type: "string", short: "P" },
    timeout: { type: "string", short: "t" },
    fwmark: { type: "string", short: "m" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  }, USAGE);
  if (typeof args === "number") return args;
  const v = args.values;
  const server = v.server as string | undefined;
  const port = Number(v.port);
  const path = v.url as string | undefined;
  const bad = (msg: string) => {
    process.stderr.write(`vipd genhash: ${msg}\nusage: vipd genhash ${USAGE}\n`);
    return 2;
  };
  if (!server || !path || !v.port) return bad("-s, -p and -u are required");
  if (!Number.isInteger(port) || port < 1 || port > 65535) return bad(`invalid port '${v.port}'`);
  const proto = String(v.protocol ?? "1.0").toUpperCase();
  if (!["1.0", "1.0C", "1.1"].includes(proto)) return bad(`invalid protocol '${v.protocol}' (1.0, 1.0c or 1.1)`);
  const timeoutS = v.timeout === undefined ? 5 : Number(v.timeout);
  if (!(timeoutS > 0)) return bad(`invalid timeout '${v.timeout}'`);
  if (v.fwmark !== undefined) process.stderr.write("vipd genhash: -m (fwmark) is not supported; ignored\n");
  const vhost = v["use-virtualhost"] as string | undefined;
  const ssl = v["use-ssl"] === true;
  const sni = (v["sni-name"] as string | undefined) ?? (v["use-sni"] ? vhost ?? server : undefined);
  const verbose = v.verbose === true;
  const out = (s: string) => process.stdout.write(s);
  const host = server.replace(/^\[(.*)\]$/, "$1");

  if (verbose) out(`Remote Web server ${host.includes(":") ? `[${host}]` : host}:${port}${ssl ? " (SSL)" : ""} url(${path})\n`);
  const spec: { ssl: boolean; protocol: HttpProtocol; virtualhost?: string; sni?: string } = { ssl, protocol: proto as HttpProtocol };
  if (vhost !== undefined) spec.virtualhost = vhost;
  if (sni !== undefined) spec.sni = sni;
  let headerShown = false;
  const f = await fetchUrl({ host, port, timeoutMs: timeoutS * 1000 }, spec, { path }, (r) => {
    if (!verbose) return;
    out(DELIM("    HTTP Header Buffer    "));
    r.onBody = (chunk) => {
      if (!headerShown && r.headers !== undefined) {
        headerShown = true;
        const head = new TextEncoder().encode(r.headers + "\r\n\r\n");
        out(dumpBuffer(head));
        out(DELIM(" HTTP Header Ascii Buffer "));
        out(r.headers + "\r\n\r\n\n");
        out(DELIM("        HTML Buffer        "));
      }
      out(dumpBuffer(chunk));
    };
  });
  if (!f.ok) {
    process.stderr.write(`${f.detail} server ${host}:${port}\n`);
    return 1;
  }
  const r = f.response;
  if (!r.complete) {
    process.stderr.write("no data received from remote webserver\n");
    return 1;
  }
  const digest = r.digest();
  if (verbose) {
    if (!headerShown) {
      out(dumpBuffer(new TextEncoder().encode(r.headers + "\r\n\r\n")));
      out(DELIM(" HTTP Header Ascii Buffer "));
      out(r.headers + "\r\n\r\n\n");
    }
    out(`\nHTTP status code ${r.status}, body ${r.bodyBytes} bytes${r.contentLength !== undefined ? `, Content-Length ${r.contentLength}` : ""}\n`);
    out("\n" + DELIM("    HTML hash resulting    "));
    out(dumpBuffer(Buffer.from(digest, "hex")));
    out(DELIM(" HTML hash final resulting "));
  }
  out(digest + "\n");
  return 0;
}
