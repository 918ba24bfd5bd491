/**
 * What one measurement started (servers, load generators), stopped in reverse order when it
 * ends, fails or hits its hard timeout.
 */
export class Scope {
  private readonly finalizers: Array<() => Promise<void> | void> = []

  add(finalizer: () => Promise<void> | void): void {
    this.finalizers.push(finalizer)
  }

  async close(): Promise<void> {
    for (const finalize of this.finalizers.splice(0).reverse()) {
      try {
        await finalize()
      } catch (error) {
        process.stderr.write(`bench: cleanup failed: ${String(error)}\n`)
      }
    }
  }
}
