/**
 * Applies nftables scripts by running `nft -f -` asynchronously, one at a time in call
 * order, with a timeout. When nft is not installed it says so once, clearly, and every
 * later apply reports `missing` without trying again.
 */

export type NftResult = { ok: true } | { ok: false; missing: boolean; error: string };

export interface NftRunnerOptions {
  /** The nft binary (default: found on PATH). */
  path?: string;
  /** Words run before nft, e.g. ["ip", "netns", "exec", NS] in tests. */
  prefix?: string[];
  /** Kill nft after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Where the one-time "nft missing" warning goes (default console.warn). */
  warn?: (message: string) => void;
}

export const NFT_MISSING_MESSAGE =
  "nftables: the 'nft' command was not found; no_accept cannot drop traffic to the VIPs (install the nftables package)";

/** Serialised `nft -f -` runner. */
export class Nft {
  readonly #o: NftRunnerOptions;
  readonly #path: string | null;
  #warned = false;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(o: NftRunnerOptions = {}) {
    this.#o = o;
    this.#path = o.path ?? Bun.which("nft") ?? Bun.which("nft", { PATH: "/usr/sbin:/sbin:/usr/local/sbin" });
  }

  /** Whether an nft binary was found. */
  get available(): boolean {
    return this.#path !== null;
  }

  /** Runs `script` through `nft -f -` after every earlier apply has finished. `what` names it in errors. */
  apply(script: string, what: string): Promise<NftResult> {
    const run = this.#tail.then(() => this.#run(script, what));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #missing(): NftResult {
    if (!this.#warned) {
      this.#warned = true;
      (this.#o.warn ?? console.warn)(NFT_MISSING_MESSAGE);
    }
    return { ok: false, missing: true, error: NFT_MISSING_MESSAGE };
  }

  async #run(script: string, what: string): Promise<NftResult> {
    if (!this.#path) return this.#missing();
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn([...(this.#o.prefix ?? []), this.#path, "-f", "-"], {
        stdin: new TextEncoder().encode(script), stdout: "pipe", stderr: "pipe",
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return this.#missing();
      return { ok: false, missing: false, error: `nftables ${what}: ${(e as Error).message}` };
    }
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; proc.kill("SIGKILL"); }, this.#o.timeoutMs ?? 5000);
    try {
      const [code, stderr] = await Promise.all([
        proc.exited,
        new Response(proc.stderr as ReadableStream<Uint8Array>).text(),
        new Response(proc.stdout as ReadableStream<Uint8Array>).text(),
      ]);
      if (timedOut) return { ok: false, missing: false, error: `nftables ${what}: nft did not finish in ${this.#o.timeoutMs ?? 5000} ms` };
      if (code === 0) return { ok: true };
      return { ok: false, missing: false, error: `nftables ${what}: nft exited ${code}: ${stderr.trim().split("\n").slice(0, 6).join(" | ")}` };
    } finally {
      clearTimeout(timer);
    }
  }
}
