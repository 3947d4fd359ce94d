/**
 * Event-loop lag: a timer asks to fire every `intervalMs`; how much later than asked it
 * actually fires is time the loop was busy (a slow handler, a synchronous syscall, GC).
 * Each lateness goes into a histogram (vipd_event_loop_lag_seconds).
 */
import type { Histogram } from "./metrics.ts";

export interface LoopLagMonitor {
  stop(): void;
}

/** Starts measuring into `hist`; the timer is unref'd so it never keeps a process alive. */
export function startLoopLag(hist: Histogram, intervalMs = 250, now: () => number = () => performance.now()): LoopLagMonitor {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const arm = () => {
    const due = now() + intervalMs;
    timer = setTimeout(() => {
      if (stopped) return;
      // Bun may fire up to ~1 ms early or late on its own (platform.md §7): clamp early to 0
      hist.observe(Math.max(0, now() - due) / 1000);
      arm();
    }, intervalMs);
    (timer as { unref?: () => void }).unref?.();
  };
  arm();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
