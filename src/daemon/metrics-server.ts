/**
 * The `--metrics ADDR:PORT` endpoint: Bun.serve on that one address, GET (or HEAD)
 * /metrics only, 404 for any other path, 405 for other methods. Requests are small and
 * answered at once; a scrape renders from values already in memory, so it never waits on I/O.
 */
import { startLoopLag } from "./loop-lag.ts";
import type { LvsStatus } from "../lvs/manager.ts";
import { METRICS_CONTENT_TYPE, lvsMetricsFromStatus, renderMetrics, type VipdCounters } from "./metrics.ts";
import type { DaemonStatus } from "./status-types.ts";
import type { TrackerSnapshot } from "./trackers.ts";

export interface MetricsServer {
  /** The bound address and port (port 0 in the option picks a free one). */
  readonly hostname: string;
  readonly port: number;
  stop(): void;
}

/** Parses `ADDR:PORT`, `[V6ADDR]:PORT` or `:PORT` (= 127.0.0.1); returns an error text when invalid. */
export function parseListenAddress(text: string): { hostname: string; port: number } | { error: string } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return { error: `--metrics ${text}: expected ADDR:PORT (e.g. 127.0.0.1:9165 or [::1]:9165)` };
  const port = Number(m[3]);
  if (port > 65535) return { error: `--metrics ${text}: port ${port} is out of range` };
  const hostname = m[1] ?? (m[2] || "127.0.0.1");
  return { hostname, port };
}

/** Serves `render()` at /metrics. Throws if the address cannot be bound. */
export function startMetricsServer(o: { hostname: string; port: number; render: () => string; contentType: string }): MetricsServer {
  const server = Bun.serve({
    hostname: o.hostname,
    port: o.port,
    // A scraper that stalls should not hold a connection for long.
    idleTimeout: 10,
    maxRequestBodySize: 1024,
    fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/metrics") return new Response("not found\n", { status: 404 });
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      let body: string;
      try {
        body = o.render();
      } catch (e) {
        return new Response(`cannot render metrics: ${(e as Error).message}\n`, { status: 500 });
      }
      return new Response(req.method === "HEAD" ? null : body, { headers: { "content-type": o.contentType } });
    },
    error() {
      return new Response("internal error\n", { status: 500 });
    },
  });
  return {
    hostname: server.hostname ?? o.hostname,
    port: server.port ?? o.port,
    stop: () => void server.stop(true),
  };
}

/** Where a running daemon's metrics come from. */
export interface DaemonMetricsSources {
  status: () => DaemonStatus;
  trackers?: () => TrackerSnapshot;
  counters: VipdCounters;
  /** The LVS manager (absent without virtual servers: no LVS series). */
  lvs?: { status(): LvsStatus };
}

/** `--metrics ADDR:PORT`: the loop-lag timer plus the endpoint. Throws with a readable message on a bad address or a bind failure. */
export function startDaemonMetrics(listen: string, src: DaemonMetricsSources): MetricsServer {
  const addr = parseListenAddress(listen);
  if ("error" in addr) throw new Error(addr.error);
  const lag = startLoopLag(src.counters.loopLag);
  let server: MetricsServer;
  try {
    server = startMetricsServer({
      ...addr,
      contentType: METRICS_CONTENT_TYPE,
      render: () => renderMetrics({
        status: src.status(),
        vipd: src.counters.snapshot(),
        ...(src.trackers ? { trackers: src.trackers() } : {}),
        ...(src.lvs ? { lvs: lvsMetricsFromStatus(src.lvs.status()) } : {}),
      }),
    });
  } catch (e) {
    lag.stop();
    throw new Error(`--metrics ${listen}: ${(e as Error).message}`);
  }
  return { hostname: server.hostname, port: server.port, stop: () => (lag.stop(), server.stop()) };
}
