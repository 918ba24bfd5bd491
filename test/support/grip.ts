/** Helpers for GRIP end-to-end tests: publishing through the API, waiting for subscriptions. */
import type { RunningPushpinTs } from "./pushpin-ts.ts"

export const publish = async (publishUrl: string | undefined, items: ReadonlyArray<unknown>, init: RequestInit = {}): Promise<Response> => {
  if (publishUrl === undefined) throw new Error("publish API is off")
  return fetch(`${publishUrl}/publish/`, { method: "POST", body: JSON.stringify({ items }), ...init })
}

/** Waits until the proxy logged `count` subscriptions to `channel`, so a publish cannot race the hold. */
export const subscribed = async (proxy: RunningPushpinTs, channel: string, count = 1): Promise<void> => {
  const pattern = new RegExp(`subscribe \\S+ channel=${channel}\\n`, "g")
  for (let attempt = 0; attempt < 200; attempt++) {
    if ((proxy.logs().match(pattern)?.length ?? 0) >= count) return
    await Bun.sleep(25)
  }
  throw new Error(`no ${count} subscriptions to ${channel}; logs:\n${proxy.logs()}`)
}

/** Polls `condition` every 20 ms for up to `timeoutMs`; throws with `what` when it never holds. */
export const eventually = async (what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(20)
  }
}
