/**
 * The real servers of the checker benchmark: one Bun process listening on many address:port
 * pairs (event-driven, no thread or process per port). Every listener accepts, records the
 * arrival time of each connection (wall clock, ms, per listener), answers the first bytes it
 * gets with a fixed HTTP/1.0 200 and closes; a bare connect-and-close (TCP_CHECK) is only
 * recorded. On SIGUSR1 it writes the arrival times to a file; SIGTERM ends it.
 */
import { writeFileSync } from "node:fs";

/** Where the servers listen: `addresses` × `ports` consecutive ports from `firstPort`. */
export interface ServerLayout {
  addresses: string[];
  firstPort: number;
  ports: number;
}

/** The listener index of an address:port pair (address-major), as the dump orders them. */
export function listenerIndex(layout: ServerLayout, addressIndex: number, port: number): number {
  return addressIndex * layout.ports + (port - layout.firstPort);
}

/** Arrival times kept per listener (a ring): enough for 10 minutes at one check a second. */
export const RING = 600;

const RESPONSE = new TextEncoder().encode(
  "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");

const wallMs = (): number => performance.timeOrigin + performance.now();

/** Runs the servers until SIGTERM; writes "ready" to stdout once every listener is bound. */
export function serve(layout: ServerLayout, dumpPath: string): void {
  const n = layout.addresses.length * layout.ports;
  // One flat ring of timestamps per listener and a count of arrivals (the ring index is count % RING).
  const times = new Float64Array(n * RING);
  const counts = new Uint32Array(n);
  const listeners: { stop(closeActive?: boolean): void }[] = [];
  layout.addresses.forEach((hostname, a) => {
    for (let p = 0; p < layout.ports; p++) {
      const i = listenerIndex(layout, a, layout.firstPort + p);
      listeners.push(Bun.listen<{ answered: boolean }>({
        hostname,
        port: layout.firstPort + p,
        socket: {
          open(s) {
            times[i * RING + (counts[i]! % RING)] = wallMs();
            counts[i]!++;
            s.data = { answered: false };
          },
          data(s) {
            if (s.data.answered) return;
            s.data.answered = true;
            s.end(RESPONSE);
          },
          error() {},
        },
      }));
    }
  });
  const dump = () => {
    // Layout: u32 listeners, u32 ring, then counts (u32 × n), then times (f64 × n × ring).
    const head = new Uint32Array([n, RING]);
    const out = new Uint8Array(8 + 4 * n + 8 * n * RING);
    out.set(new Uint8Array(head.buffer), 0);
    out.set(new Uint8Array(counts.buffer), 8);
    out.set(new Uint8Array(times.buffer), 8 + 4 * n);
    writeFileSync(`${dumpPath}.tmp`, out);
    Bun.spawnSync(["mv", `${dumpPath}.tmp`, dumpPath]);
  };
  process.on("SIGUSR1", dump);
  process.on("SIGTERM", () => {
    for (const l of listeners) l.stop(true);
    process.exit(0);
  });
  console.log(`ready ${n}`);
}

/** Per-listener arrival times (wall ms, ascending) from a dump written by serve(). */
export function readArrivals(buf: Uint8Array): Float64Array[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = dv.getUint32(0, true);
  const ring = dv.getUint32(4, true);
  const counts = new Uint32Array(buf.slice(8, 8 + 4 * n).buffer);
  const times = new Float64Array(buf.slice(8 + 4 * n, 8 + 4 * n + 8 * n * ring).buffer);
  const out: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const c = counts[i]!;
    const kept = Math.min(c, ring);
    const a = new Float64Array(kept);
    // Oldest first: with a wrapped ring the oldest sits at c % ring.
    const start = c > ring ? c % ring : 0;
    for (let k = 0; k < kept; k++) a[k] = times[i * ring + ((start + k) % ring)]!;
    out.push(a);
  }
  return out;
}
