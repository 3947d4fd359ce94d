/**
 * Source of the poll() worker behind WorkerFdWatcher, kept as a string so it runs from a
 * Blob URL: `bun build --compile` then needs no extra entrypoint, and the worker cannot
 * import project modules, so it binds the two libc calls it needs itself.
 *
 * Shared state (Int32Array over a SharedArrayBuffer), written by the main thread:
 *   [0]            number of slots in use
 *   [1 + 2i]       fd of slot i (−1 = free)
 *   [2 + 2i]       armed flag of slot i: 1 = poll it, 0 = reported, waiting for the main
 *                  thread to drain it (level-triggered poll would otherwise spin)
 * The main thread writes the eventfd after every change; the worker posts the fd number
 * of each readable armed slot and disarms it.
 */
export const WORKER_SOURCE = String.raw`
const { dlopen, FFIType: T } = require("bun:ffi");
const L = dlopen("libc.so.6", {
  poll: { args: [T.ptr, T.u64, T.i32], returns: T.i32 },
  read: { args: [T.i32, T.ptr, T.u64], returns: T.i64_fast },
}).symbols;
let shared = null, efd = -1, stopped = false;
const counter = new Uint8Array(new ArrayBuffer(8));
self.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === "init") { shared = new Int32Array(m.sab); efd = m.efd; run(); }
  else if (m.type === "stop") { stopped = true; }
};
let pfds = null, dv = null, slotOf = null;
function run() {
  const max = (shared.length - 1) >> 1;
  pfds = new Uint8Array(new ArrayBuffer(8 * (max + 1)));
  dv = new DataView(pfds.buffer);
  slotOf = new Int32Array(max + 1);
  step();
}
function step() {
  if (stopped) return;
  dv.setInt32(0, efd, true); dv.setInt16(4, 1, true); dv.setInt16(6, 0, true);
  let n = 1;
  const used = Atomics.load(shared, 0);
  for (let i = 0; i < used; i++) {
    const fd = Atomics.load(shared, 1 + 2 * i);
    if (fd < 0 || Atomics.load(shared, 2 + 2 * i) !== 1) continue;
    dv.setInt32(8 * n, fd, true); dv.setInt16(8 * n + 4, 1, true); dv.setInt16(8 * n + 6, 0, true);
    slotOf[n] = i; n++;
  }
  // 1 s timeout: a lost wakeup costs at most a second, and "stop" is noticed.
  const r = L.poll(pfds, n, 1000);
  if (r > 0) {
    if (dv.getInt16(6, true) !== 0) L.read(efd, counter, 8);
    for (let k = 1; k < n; k++) {
      if (dv.getInt16(8 * k + 6, true) === 0) continue;
      const i = slotOf[k];
      if (Atomics.compareExchange(shared, 2 + 2 * i, 1, 0) === 1) postMessage(dv.getInt32(8 * k, true));
    }
  }
  // Back to the worker's event loop between polls so "stop" messages are seen.
  setTimeout(step, 0);
}
`;
