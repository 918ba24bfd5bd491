/**
 * What the WebSocket differentials share: running one scenario on real Pushpin 1.36 and on
 * pushpin-ts at once and checking both (Pushpin against what it was seen to do, pushpin-ts
 * against Pushpin, known differences apart), publishing to a side, waiting until a client is
 * subscribed, and summarising what a raw WebSocket endpoint received.
 */
import { expect } from "bun:test"
import { createHash } from "node:crypto"
import { startPushpinTs } from "./pushpin-ts.ts"
import { startReferencePushpin } from "./reference-pushpin.ts"
import { openWebSocket, type RawWebSocket, type WsEndpoint, type WsEvent } from "./ws-client.ts"

export type SideName = "pushpin" | "pushpin-ts"

export interface SideBase {
  readonly name: SideName
  readonly port: number
  readonly publishUrl: string
}

export interface SideChecks<A, B, C, D> {
  readonly alike: (result: A) => B
  /** What Pushpin 1.36 was seen to do (the `alike` projection of its result). */
  readonly expected: B
  /** Known differences: each side's projection must equal its own expectation. */
  readonly differ?: { readonly select: (result: A) => C; readonly pushpin: C; readonly "pushpin-ts": C }
  /** Pushpin's projection must equal `pushpin`; pushpin-ts's is free, for what may legitimately differ. */
  readonly recorded?: { readonly select: (result: A) => D; readonly pushpin: D }
}

/**
 * Starts Pushpin 1.36 and pushpin-ts at once, each in front of its own origin with the routes
 * `routesFor(origin port)`. A side that fails to start is kept in `broken` with the reason, so
 * its scenarios fail saying why while the other side's still run. Returns the stop for afterAll.
 */
export const startSides = async <O extends { readonly port: number }>(
  origins: { readonly pushpin: O; readonly "pushpin-ts": O },
  routesFor: (originPort: number) => ReadonlyArray<string>,
  sides: Map<SideName, SideBase & { readonly origin: O }>,
  broken: Map<SideName, string>
): Promise<() => Promise<void>> => {
  const [reference, ours] = await Promise.allSettled([
    startReferencePushpin({ routes: routesFor(origins.pushpin.port) }),
    startPushpinTs({ args: routesFor(origins["pushpin-ts"].port).flatMap((route) => ["--route", route]) })
  ])
  if (reference.status === "fulfilled") {
    sides.set("pushpin", { name: "pushpin", port: reference.value.httpPort, publishUrl: reference.value.publishUrl, origin: origins.pushpin })
  } else broken.set("pushpin", String(reference.reason))
  if (ours.status === "fulfilled") {
    sides.set("pushpin-ts", { name: "pushpin-ts", port: ours.value.port, publishUrl: ours.value.publishUrl ?? "", origin: origins["pushpin-ts"] })
  } else broken.set("pushpin-ts", String(ours.reason))
  return async () => {
    await Promise.all([reference.status === "fulfilled" ? reference.value.stop() : undefined, ours.status === "fulfilled" ? ours.value.stop() : undefined])
  }
}

/** Opens client WebSockets to a side, keeping each in `sockets` so afterAll can end them. */
export const socketOpener = (sockets: Array<RawWebSocket>) =>
  async (side: SideBase, path: string, headers: Readonly<Record<string, string | null>> = {}): Promise<RawWebSocket> => {
    const ws = await openWebSocket({ port: side.port, path, headers })
    sockets.push(ws)
    return ws
  }

export const makeSideRunner = <S extends SideBase>(sides: ReadonlyMap<SideName, S>, broken: ReadonlyMap<SideName, string>, debug: boolean) => {
  const runOn = async <A,>(name: SideName, scenario: (side: S) => Promise<A>): Promise<A> => {
    const side = sides.get(name)
    if (side === undefined) throw new Error(`${name} did not start: ${broken.get(name) ?? "?"}`)
    return scenario(side)
  }

  const valueOf = <A,>(what: string, name: SideName, outcome: PromiseSettledResult<A>): A => {
    if (outcome.status === "rejected") throw new Error(`${what}: ${name === "pushpin" ? "Pushpin 1.36" : "pushpin-ts"} failed: ${String(outcome.reason)}`)
    return outcome.value
  }

  /** Runs `scenario` once on each side, both at once, then checks Pushpin first, then pushpin-ts. */
  const verify = async <A, B, C, D>(what: string, scenario: (side: S) => Promise<A>, checks: SideChecks<A, B, C, D>): Promise<void> => {
    const [fromReference, fromOurs] = await Promise.allSettled([runOn("pushpin", scenario), runOn("pushpin-ts", scenario)])
    if (debug) {
      for (const [name, outcome] of [["pushpin", fromReference], ["pushpin-ts", fromOurs]] as const) {
        console.log(`${what} — ${name}: ${outcome.status === "fulfilled" ? JSON.stringify(outcome.value) : String(outcome.reason)}`)
      }
    }
    // Each value is wrapped in the side's name so a failure says whose it is.
    const referenceResult = valueOf(what, "pushpin", fromReference)
    expect({ pushpin: checks.alike(referenceResult) }).toEqual({ pushpin: checks.expected })
    if (checks.differ !== undefined) expect({ pushpin: checks.differ.select(referenceResult) }).toEqual({ pushpin: checks.differ.pushpin })
    if (checks.recorded !== undefined) expect({ pushpin: checks.recorded.select(referenceResult) }).toEqual({ pushpin: checks.recorded.pushpin })
    const oursResult = valueOf(what, "pushpin-ts", fromOurs)
    expect({ "pushpin-ts": checks.alike(oursResult) }).toEqual({ "pushpin-ts": checks.alike(referenceResult) })
    if (checks.differ !== undefined) expect({ "pushpin-ts": checks.differ.select(oursResult) }).toEqual({ "pushpin-ts": checks.differ["pushpin-ts"] })
  }

  /** `verify` with the whole result compared. */
  const onBoth = <A,>(what: string, scenario: (side: S) => Promise<A>, expected: A): Promise<void> =>
    verify(what, scenario, { alike: (result: A) => result, expected })

  return { runOn, valueOf, verify, onBoth }
}

/** Publishes through the side's HTTP API; the answer as "status text". */
export const publishTo = async (side: SideBase, items: ReadonlyArray<unknown>): Promise<string> => {
  const response = await fetch(`${side.publishUrl}/publish/`, { method: "POST", body: JSON.stringify({ items }) })
  return `${response.status} ${(await response.text()).trim()}`
}

export const sha1 = (data: string | Uint8Array): string => createHash("sha1").update(data).digest("hex").slice(0, 12)

/** Messages and control frames as plain data; long or binary payloads by length and hash. */
export const summarise = (events: ReadonlyArray<WsEvent>): Array<string> =>
  events.map((event) => {
    switch (event.type) {
      case "text":
        return event.data.length > 100 ? `text ${event.data.length} chars sha1=${sha1(event.data)}` : `text ${JSON.stringify(event.data)}`
      case "binary":
        return `binary ${event.data.length} bytes ${event.data.length > 16 ? `sha1=${sha1(event.data)}` : event.data.toString("hex")}`
      case "ping":
      case "pong":
        return `${event.type} ${JSON.stringify(event.data)}`
      case "close":
        return `close ${event.code ?? "(no code)"} ${JSON.stringify(event.reason)}`
    }
  })

export const messagesOf = (endpoint: WsEndpoint): Array<string> => summarise(endpoint.events.filter((event) => event.type === "text" || event.type === "binary"))
export const closesOf = (endpoint: WsEndpoint): Array<string> => summarise(endpoint.events.filter((event) => event.type === "close"))
export const payloadsOf = (endpoint: WsEndpoint, type: "ping" | "pong"): Array<string> =>
  endpoint.events.flatMap((event) => (event.type === type ? [event.data] : []))

/**
 * Subscriptions take effect asynchronously (Pushpin: proxy → handler over ZeroMQ). Publishes
 * `probe-N` messages to `channel` until the client has one, the same way on both sides; the
 * probes are left out of what is compared (`withoutProbes`).
 */
export const untilSubscribed = async (side: SideBase, ws: RawWebSocket, channel: string): Promise<void> => {
  const deadline = Date.now() + 5000
  for (let n = 0; Date.now() < deadline; n++) {
    await publishTo(side, [{ channel, formats: { "ws-message": { content: `probe-${n}` } } }])
    const arrived = await ws
      .waitFor("a probe", (events) => events.some((event) => event.type === "text" && event.data.startsWith("probe-")), 150)
      .then(() => true, () => false)
    if (arrived) {
      // Let any probe still on its way land before the real publishes.
      await Bun.sleep(100)
      return
    }
  }
  throw new Error(`${side.name}: the client never got a publish to ${channel}; it got ${JSON.stringify(summarise(ws.events))}`)
}

export const withoutProbes = (messages: Array<string>): Array<string> => messages.filter((message) => !message.startsWith('text "probe-'))
