/**
 * When many connections close, their memory is garbage that the runtime's collector frees
 * lazily and keeps mapped: after 10 000 held streams closed, RSS stayed at 114 MB against 45 MB
 * idle. A full collection hands it back (a Bun script holding 10 000 streams: 77 MB → 26 MB).
 * A full collection pauses the process, so it runs only after a large drop, not on every dip.
 */

/** Connections that must have closed since the peak before memory is handed back. */
export const MEMORY_RELEASE_MIN_DROP = 1000

export class MemoryReleasePolicy {
  private peak = 0

  /** Called with the current connection count; true when memory should be handed back now. */
  observe(connections: number): boolean {
    if (connections > this.peak) {
      this.peak = connections
      return false
    }
    if (this.peak - connections < MEMORY_RELEASE_MIN_DROP || connections * 2 > this.peak) return false
    this.peak = connections
    return true
  }
}
