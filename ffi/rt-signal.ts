/**
 * Real-time signals (keepalived's SIGRTMIN+2 = JSON, SIGRTMAX-1 = STATS_CLEAR) for a Bun process.
 *
 * Bun's process.on knows only signals 1–31, and an RT signal's default action kills the
 * process. Blocking it and reading a signalfd does not work either: Bun's event loop sleeps in
 * epoll_pwait with an empty mask, so the signal is delivered (and kills) while the loop is idle
 * (measured). What works: the handler is libc's own `eventfd_write(int fd, uint64 value)`,
 * installed with sigaction. The kernel calls it as `handler(signo, …)`, so it writes 8 bytes to
 * file descriptor number `signo` — which we make the write end of a non-blocking pipe (dup3 to
 * that number). The read end is watched by the FdWatcher (pipes raise SIGIO), and each 8-byte
 * record is one delivered signal. No JavaScript runs in signal context, the handler is
 * async-signal-safe (one write(2)), and any thread may take the signal.
 */
import { dlopen, FFIType as T, type Pointer } from "bun:ffi";
import type { FdWatcher } from "./fdwatch.ts";
import { alloc, close, errno, SysError } from "./libc.ts";

const lib = dlopen("libc.so.6", {
  sigaction: { args: [T.i32, T.ptr, T.ptr], returns: T.i32 },
  eventfd_write: { args: [T.i32, T.u64], returns: T.i32 },
  pipe2: { args: [T.ptr, T.i32], returns: T.i32 },
  dup3: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  fcntl: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  read: { args: [T.i32, T.ptr, T.u64], returns: T.i64_fast },
  __libc_current_sigrtmin: { args: [], returns: T.i32 },
  __libc_current_sigrtmax: { args: [], returns: T.i32 },
}).symbols;

const O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000, F_GETFD = 1, SA_RESTART = 0x10000000, EBADF = 9;
/** struct sigaction in glibc and musl on x86_64/aarch64: handler, 128-byte mask, int flags, restorer. */
const SIGACTION_SIZE = 152, SA_FLAGS_OFFSET = 136;
const SIG_IGN = 1n;

/** libc's SIGRTMIN: 34 with glibc (32–33 are NPTL's), 35 with musl. */
export function sigrtmin(): number {
  return lib.__libc_current_sigrtmin();
}

/** libc's SIGRTMAX (64 on Linux x86_64/aarch64). */
export function sigrtmax(): number {
  return lib.__libc_current_sigrtmax();
}

function setHandler(sig: number, handler: bigint): void {
  const act = alloc(SIGACTION_SIZE);
  const v = new DataView(act.buffer);
  v.setBigUint64(0, handler, true);
  v.setInt32(SA_FLAGS_OFFSET, SA_RESTART, true);
  if (lib.sigaction(sig, act, null) < 0) throw new SysError(`sigaction(${sig})`, errno());
}

/** Watching RT signals; `close` ignores them from then on and releases the pipes. */
export interface RtSignalWatch {
  close(): void;
}

/**
 * Calls `onSignal(sig)` on the event loop when one of `signals` (each ≥ SIGRTMIN) arrives;
 * signals queued between two wakeups are reported once. Throws when a signal's number is
 * already an open file descriptor (it must be free: the handler writes to fd `signo`).
 */
export function watchRtSignals(signals: number[], onSignal: (sig: number) => void, watcher: FdWatcher): RtSignalWatch {
  const handler = BigInt((lib.eventfd_write as unknown as { ptr: Pointer | number }).ptr as number);
  const opened: Array<{ sig: number; rd: number }> = [];
  const buf = alloc(512);
  const cleanup = () => {
    for (const { sig, rd } of opened) {
      try {
        setHandler(sig, SIG_IGN);
      } catch {
        // nothing left to undo
      }
      watcher.unwatch(rd);
      close(rd);
      close(sig);
    }
    opened.length = 0;
  };
  try {
    for (const sig of signals) {
      if (sig < sigrtmin() || sig > sigrtmax()) throw new Error(`signal ${sig} is not a real-time signal`);
      if (lib.fcntl(sig, F_GETFD, 0) >= 0 || errno() !== EBADF) throw new Error(`fd ${sig} is in use; cannot receive signal ${sig}`);
      const fds = new Int32Array(2);
      if (lib.pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) throw new SysError("pipe2", errno());
      const [rd, wr] = [fds[0]!, fds[1]!];
      if (lib.dup3(wr, sig, O_CLOEXEC) < 0) {
        const e = errno();
        close(rd);
        close(wr);
        throw new SysError(`dup3(${sig})`, e);
      }
      close(wr);
      opened.push({ sig, rd });
      watcher.watch(rd, () => {
        let count = 0;
        for (let i = 0; i < 64; i++) {
          const n = Number(lib.read(rd, buf, buf.byteLength));
          if (n <= 0) break; // EAGAIN: drained
          count += Math.floor(n / 8);
        }
        if (count > 0) onSignal(sig);
      });
      setHandler(sig, handler);
    }
  } catch (e) {
    cleanup();
    throw e;
  }
  return { close: cleanup };
}
