/**
 * Bounded concurrency towards one origin. Bun's fetch has no per-host socket cap (200
 * concurrent requests opened 194 sockets), so a burst would otherwise become a burst of
 * connections at the origin. Requests past the active bound wait in a bounded FIFO; past that
 * bound the caller is told at once, so it can shed with 503 + Retry-After instead of hanging.
 *
 * Plain code on purpose: it runs for every proxied request.
 */

export type Release = () => void

export type GateOutcome = { readonly _tag: "Admitted"; readonly release: Release } | { readonly _tag: "Full" }

export interface OriginGateLimits {
  /** Requests in flight to this origin at once. */
  readonly maxActive: number
  /** Requests allowed to wait for a slot; more than this are refused. */
  readonly maxWaiting: number
}

export class OriginGate {
  private active = 0
  private readonly waiting: Array<(release: Release) => void> = []
  private waitingHead = 0

  constructor(readonly limits: OriginGateLimits) {}

  get activeCount(): number {
    return this.active
  }

  get waitingCount(): number {
    return this.waiting.length - this.waitingHead
  }

  /**
   * Resolves with a release function once a slot is free, or `Full` at once when the waiting
   * line is at its bound. `signal` aborting while waiting gives up the place in line.
   */
  acquire(signal?: AbortSignal): GateOutcome | Promise<GateOutcome> {
    if (this.active < this.limits.maxActive) {
      this.active++
      return { _tag: "Admitted", release: this.makeRelease() }
    }
    if (this.waitingCount >= this.limits.maxWaiting) return { _tag: "Full" }
    return new Promise<GateOutcome>((resolve) => {
      let settled = false
      const grant = (release: Release) => {
        settled = true
        signal?.removeEventListener("abort", onAbort)
        resolve({ _tag: "Admitted", release })
      }
      const onAbort = () => {
        if (settled) return
        settled = true
        const index = this.waiting.indexOf(grant, this.waitingHead)
        if (index >= 0) this.waiting.splice(index, 1)
        resolve({ _tag: "Full" })
      }
      signal?.addEventListener("abort", onAbort, { once: true })
      this.waiting.push(grant)
    })
  }

  private makeRelease(): Release {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waitingHead < this.waiting.length ? this.waiting[this.waitingHead++] : undefined
      if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
        this.waiting.splice(0, this.waitingHead)
        this.waitingHead = 0
      }
      if (next === undefined) this.active--
      else next(this.makeRelease()) // the slot passes straight to the next in line
    }
  }
}
