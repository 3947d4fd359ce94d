/**
 * Running code inside another network namespace: setns() of the calling (JS) thread for
 * the synchronous duration of a function. Sockets created inside keep that namespace.
 */
import { CLONE_NEWNET, close, openReadOnly, setns } from "./libc.ts";

/** Path of a named namespace as `ip netns add` creates it. */
export function netnsPath(name: string): string {
  return name.startsWith("/") ? name : `/var/run/netns/${name}`;
}

/**
 * Calls `fn` with the calling thread switched into network namespace `name` (a name under
 * /var/run/netns or an absolute path), then switches back, also when `fn` throws. `fn`
 * must be synchronous: code after an `await` would run in the original namespace.
 */
export function withNetns<T>(name: string, fn: () => T): T {
  const original = openReadOnly("/proc/thread-self/ns/net");
  let target = -1;
  try {
    target = openReadOnly(netnsPath(name));
    setns(target, CLONE_NEWNET);
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new Error("withNetns: fn must be synchronous (it returned a Promise)");
      }
      return result;
    } finally {
      setns(original, CLONE_NEWNET);
    }
  } finally {
    close(target);
    close(original);
  }
}
