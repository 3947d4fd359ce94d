/**
 * Fd readiness for raw and netlink sockets inside Bun's event loop (platform.md §1).
 *
 * `SigioFdWatcher` (default): O_ASYNC + F_SETOWN_EX to the JS thread, so the kernel sends
 * SIGIO on arrival and the handler runs on the loop; a periodic backstop drain covers
 * coalesced signals and keeps the loop alive. `WorkerFdWatcher` (fallback, selected with
 * `{ impl: "worker" }` or `VIPD_FDWATCH=worker`): a Worker blocked in poll() posts the fd.
 *
 * Either way `onReadable` must drain its fd until EAGAIN (with its own cap): readiness is
 * reported once per wakeup, not once per datagram.
 */
import {
  EFD_CLOEXEC, EFD_NONBLOCK, F_GETFL, F_OWNER_TID, F_SETFL, F_SETOWN_EX, O_ASYNC, O_NONBLOCK,
  alloc, close, eventfd, fcntlInt, fcntlPtr, gettid, view, writeRaw,
} from "./libc.ts";
import { WORKER_SOURCE } from "./fdwatch-worker.ts";

/** Calls `onReadable` on the event loop whenever `fd` may have data. */
export interface FdWatcher {
  /** Starts watching; also calls `onReadable` once at once for data queued earlier. Sets O_NONBLOCK. */
  watch(fd: number, onReadable: () => void): void;
  /** Stops watching `fd` (does not close it). */
  unwatch(fd: number): void;
  /** Stops watching everything and releases timers/threads. */
  close(): void;
}

export interface FdWatcherOptions {
  /** "sigio" (default) or "worker"; the VIPD_FDWATCH environment variable overrides the default. */
  impl?: "sigio" | "worker";
  /** Backstop drain period in ms (default 500). */
  backstopMs?: number;
  /** Called when an onReadable handler throws (default: console.error). */
  onError?: (err: unknown, fd: number) => void;
  /** Whether the backstop timer keeps the process alive (default true). */
  keepAlive?: boolean;
}

/** Creates the configured FdWatcher implementation. */
export function createFdWatcher(opts: FdWatcherOptions = {}): FdWatcher {
  const impl = opts.impl ?? (process.env.VIPD_FDWATCH === "worker" ? "worker" : "sigio");
  return impl === "worker" ? new WorkerFdWatcher(opts) : new SigioFdWatcher(opts);
}

function reportError(err: unknown, fd: number): void {
  console.error(`fdwatch: handler for fd ${fd} threw:`, err);
}

/** Runs each handler, isolating failures so one bad handler cannot starve the others. */
function runHandler(h: () => void, fd: number, onError: (err: unknown, fd: number) => void): void {
  try {
    h();
  } catch (err) {
    onError(err, fd);
  }
}

// SIGIO's default action kills the process, so the listener is installed once, before the
// first O_ASYNC, and never removed. It fans out to every live SigioFdWatcher.
const sigioWatchers = new Set<SigioFdWatcher>();
let sigioInstalled = false;
function installSigio(): void {
  if (sigioInstalled) return;
  process.on("SIGIO", () => {
    for (const w of sigioWatchers) w.drainAll();
  });
  sigioInstalled = true;
}

/** SIGIO-driven watcher: no extra thread, full recvmsg in the handler. */
export class SigioFdWatcher implements FdWatcher {
  #handlers = new Map<number, () => void>();
  #timer: ReturnType<typeof setInterval> | null;
  #onError: (err: unknown, fd: number) => void;
  // The JS thread: F_OWNER_TID keeps the signal away from Bun's helper threads and Workers.
  #owner = alloc(8);

  constructor(opts: FdWatcherOptions = {}) {
    installSigio();
    this.#onError = opts.onError ?? reportError;
    const v = view(this.#owner);
    v.setInt32(0, F_OWNER_TID, true);
    v.setInt32(4, gettid(), true);
    sigioWatchers.add(this);
    this.#timer = setInterval(() => this.drainAll(), opts.backstopMs ?? 500);
    if (opts.keepAlive === false) this.#timer.unref();
  }

  watch(fd: number, onReadable: () => void): void {
    if (!this.#timer) throw new Error("FdWatcher is closed");
    this.#handlers.set(fd, onReadable);
    fcntlPtr(fd, F_SETOWN_EX, this.#owner, "fcntl(F_SETOWN_EX)");
    const fl = fcntlInt(fd, F_GETFL, 0, "fcntl(F_GETFL)");
    fcntlInt(fd, F_SETFL, fl | O_NONBLOCK | O_ASYNC, "fcntl(F_SETFL)");
    runHandler(onReadable, fd, this.#onError); // data queued before O_ASYNC raised no signal
  }

  unwatch(fd: number): void {
    if (!this.#handlers.delete(fd)) return;
    try {
      const fl = fcntlInt(fd, F_GETFL, 0, "fcntl(F_GETFL)");
      fcntlInt(fd, F_SETFL, fl & ~O_ASYNC, "fcntl(F_SETFL)");
    } catch {
      // The fd may already be closed; nothing left to undo.
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const fd of [...this.#handlers.keys()]) this.unwatch(fd);
    sigioWatchers.delete(this);
  }

  /** Runs every handler once (SIGIO does not say which fd is ready). */
  drainAll(): void {
    for (const [fd, h] of [...this.#handlers]) runHandler(h, fd, this.#onError);
  }
}

const WORKER_SLOTS = 256;

/** Worker+poll() watcher: one extra thread; the same contract as SigioFdWatcher. */
export class WorkerFdWatcher implements FdWatcher {
  #handlers = new Map<number, () => void>();
  #slots = new Map<number, number>(); // fd → slot index
  #shared = new Int32Array(new SharedArrayBuffer(4 * (1 + 2 * WORKER_SLOTS)));
  #efd: number;
  #one = alloc(8);
  #worker: Worker | null;
  #url: string;
  #timer: ReturnType<typeof setInterval> | null;
  #onError: (err: unknown, fd: number) => void;

  constructor(opts: FdWatcherOptions = {}) {
    this.#onError = opts.onError ?? reportError;
    view(this.#one).setBigUint64(0, 1n, true);
    this.#efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    this.#url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    this.#worker = new Worker(this.#url);
    this.#worker.onmessage = (ev: MessageEvent<number>) => this.#ready(ev.data);
    this.#worker.postMessage({ type: "init", sab: this.#shared.buffer, efd: this.#efd });
    this.#timer = setInterval(() => this.#drainAll(), opts.backstopMs ?? 500);
    if (opts.keepAlive === false) {
      this.#timer.unref();
      this.#worker.unref();
    }
  }

  watch(fd: number, onReadable: () => void): void {
    if (!this.#worker) throw new Error("FdWatcher is closed");
    const fl = fcntlInt(fd, F_GETFL, 0, "fcntl(F_GETFL)");
    fcntlInt(fd, F_SETFL, fl | O_NONBLOCK, "fcntl(F_SETFL)");
    this.#handlers.set(fd, onReadable);
    let slot = this.#slots.get(fd);
    if (slot === undefined) {
      slot = this.#freeSlot();
      this.#slots.set(fd, slot);
    }
    Atomics.store(this.#shared, 1 + 2 * slot, fd);
    Atomics.store(this.#shared, 2 + 2 * slot, 1);
    this.#wake();
    runHandler(onReadable, fd, this.#onError);
  }

  unwatch(fd: number): void {
    const slot = this.#slots.get(fd);
    this.#handlers.delete(fd);
    if (slot === undefined) return;
    this.#slots.delete(fd);
    Atomics.store(this.#shared, 2 + 2 * slot, 0);
    Atomics.store(this.#shared, 1 + 2 * slot, -1);
    this.#wake();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const fd of [...this.#handlers.keys()]) this.unwatch(fd);
    if (this.#worker) {
      this.#worker.postMessage({ type: "stop" });
      this.#worker.terminate();
      this.#worker = null;
      URL.revokeObjectURL(this.#url);
    }
    // The worker may still be inside poll() on the eventfd for a moment after terminate().
    const efd = this.#efd;
    setTimeout(() => close(efd), 50).unref();
  }

  #freeSlot(): number {
    const used = Atomics.load(this.#shared, 0);
    for (let i = 0; i < used; i++) if (Atomics.load(this.#shared, 1 + 2 * i) < 0) return i;
    if (used >= WORKER_SLOTS) throw new Error(`WorkerFdWatcher: more than ${WORKER_SLOTS} fds`);
    Atomics.store(this.#shared, 1 + 2 * used, -1);
    Atomics.store(this.#shared, 0, used + 1);
    return used;
  }

  #ready(fd: number): void {
    const h = this.#handlers.get(fd);
    const slot = this.#slots.get(fd);
    if (!h || slot === undefined) return;
    runHandler(h, fd, this.#onError);
    if (this.#slots.get(fd) === slot) {
      Atomics.store(this.#shared, 2 + 2 * slot, 1); // re-arm only after draining
      this.#wake();
    }
  }

  #wake(): void {
    writeRaw(this.#efd, this.#one);
  }

  #drainAll(): void {
    for (const [fd, h] of [...this.#handlers]) runHandler(h, fd, this.#onError);
  }
}
