/**
 * Paces low-priority session updates (Pushpin's `updateLimiter`: 10 actions a second, each
 * action up to 100 sessions that want the same URI). A `recover` or a busy channel's first
 * subscription can make thousands of sessions want their origin at once; this turns that burst
 * into a steady trickle instead of a stampede.
 */

/** Sessions per released batch (Pushpin: `UPDATES_PER_ACTION_MAX`). */
export const UPDATE_BATCH_MAX_SESSIONS = 100

export interface Updatable {
  /** Runs the update the session queued; a session that moved on ignores it. */
  runUpdate(): void
}

interface Batch {
  readonly key: string
  readonly sessions: Set<Updatable>
}

export class UpdateQueue {
  private readonly batches: Array<Batch> = []
  private readonly openBatchByKey = new Map<string, Batch>()

  /** Sessions waiting, counting a session once per enqueue. */
  get size(): number {
    let size = 0
    for (const batch of this.batches) size += batch.sessions.size
    return size
  }

  /** `key` groups sessions that would ask the same URI (response holds share ""). */
  enqueue(key: string, session: Updatable): void {
    let batch = this.openBatchByKey.get(key)
    if (batch === undefined || batch.sessions.size >= UPDATE_BATCH_MAX_SESSIONS) {
      batch = { key, sessions: new Set() }
      this.batches.push(batch)
      this.openBatchByKey.set(key, batch)
    }
    batch.sessions.add(session)
  }

  /** Releases the oldest batch; called once per timer tick (100 ms: 10 batches a second). */
  advance(): void {
    const batch = this.batches.shift()
    if (batch === undefined) return
    if (this.openBatchByKey.get(batch.key) === batch) this.openBatchByKey.delete(batch.key)
    for (const session of batch.sessions) session.runUpdate()
  }
}
