/**
 * Differential for WebSocket-over-HTTP (target option `over_http`): the same client frames and
 * origin answers through real Pushpin 1.36 (condure + zurl) and through pushpin-ts, over real
 * sockets on 127.0.0.1. The client is raw (test/support/ws-client.ts), so close frames, ping/pong
 * payloads and the bytes of a refused upgrade are seen exactly; the origin is raw too
 * (test/support/woh-origin.ts), so it sees every request as it was on the wire (headers, repeats,
 * body bytes) and answers byte for byte. Each side has its own origin.
 *
 * Every scenario asserts what Pushpin 1.36 does (so a change of the reference is noticed), then
 * that pushpin-ts does the same. `Connection-Id` values differ by nature: what is compared is
 * that every request has one, that it stays the same within a connection and differs between
 * connections. `Grip-Sig` is checked for a valid HS256 signature (`changeme`, `iss=pushpin`).
 *
 * Not compared, known to differ: `Accept-Encoding` on origin requests (zurl puts curl's own list;
 * only "the client's value is not relayed" is compared), `Connection` (transport; only "no
 * Upgrade token" is compared), the value of `Grip-Feature`, the frame sizes a long origin
 * message is split into (Pushpin uses 8 192-byte fragments), and the number of requests a burst
 * of client messages is spread over (recorded for Pushpin; the concatenated events and "one
 * request at a time" are compared), and how many pongs a client's ping gets (Bun answers pings
 * itself, and the origin's PONG is relayed too; the payloads are compared).
 *
 * Known differences, where Pushpin 1.36 is plainly defective (asserted per side):
 * - a publish with `ws-message` `action: refresh` is refused (`400 Invalid format:`) by 1.36,
 *   which predates it; pushpin-ts asks the origin at once, as later Pushpin does;
 * - an origin message over 16 384 bytes stalls after 16 384 bytes (two 8 192-byte fragments)
 *   until the client sends something, and every message after it waits behind it;
 * - a client close the origin does not answer with a CLOSE gets no close frame back;
 * - a handshake answer with no events but `Keep-Alive-Interval` (allowed by the protocol) mostly
 *   leaves the client without any answer, then floods the origin with OPEN requests;
 * - the 502 for a handshake answer without OPEN has a body but no Content-Type.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHmac } from "node:crypto"
import {
  closesOf,
  makeSideRunner,
  messagesOf,
  payloadsOf,
  publishTo,
  sha1,
  type SideBase,
  type SideName,
  socketOpener,
  startSides,
  summarise,
  untilSubscribed,
  withoutProbes
} from "../support/differential-sides.ts"
import { webSocketAccept } from "../../src/websocket/origin-client.ts"
import { referencePushpinAvailable } from "../support/reference-pushpin.ts"
import {
  describeEvent,
  eventsOf,
  headerValue,
  headerValues,
  startWohOrigin,
  type WohConnection,
  type WohEvent,
  type WohOrigin,
  type WohReply,
  type WohRequest,
  type WohResponder
} from "../support/woh-origin.ts"
import { headerOf, Op, upgrade, type RawWebSocket, type WsEndpoint, type WsEvent } from "../support/ws-client.ts"
import { closeEvent } from "../../src/websocket/events.ts"

const DEBUG = process.env["DIFFERENTIAL_DEBUG"] === "1"

interface Side extends SideBase {
  readonly origin: WohOrigin
}

// ---------------------------------------------------------------------------------------------
// The origin, the same on both sides

const utf8 = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? new Uint8Array()).toString("utf8")
const textEvent = (text: string): WohEvent => ({ type: "TEXT", content: Buffer.from(text, "utf8") })
const letters = (length: number): string => Array.from({ length }, (_, i) => String.fromCharCode(97 + (i % 26))).join("")

/** `/grip/<channel>`: the origin enables GRIP and subscribes the connection to `<channel>`. */
const gripChannelOf = (connection: WohConnection): string | undefined =>
  /^\/grip\/([^/?]+)/.exec(connection.requests[0]?.target ?? "")?.[1]

/** The origin's own state per connection. */
const closeSentBy = new WeakSet<WohConnection>()

/** Answers to the first request (`OPEN`), by path. */
const handshake = (connection: WohConnection): WohReply => {
  const path = connection.requests[0]?.target ?? ""
  if (path.startsWith("/reject")) {
    return { status: 403, reason: "Forbidden", contentType: "text/plain", headers: [["X-Reason", "not-you"]], body: "go away\n" }
  }
  if (path.startsWith("/wrong-type")) return { contentType: "text/plain", body: "OPEN\r\n" }
  if (path.startsWith("/no-open")) return { events: [] }
  if (path.startsWith("/accept-ka-empty")) return { headers: [["Keep-Alive-Interval", "25"]], events: [] }
  if (path.startsWith("/accept-open0")) return { body: "OPEN 0\r\n\r\n" }
  if (path.startsWith("/refuse-ctype-param")) return { contentType: "application/websocket-events; charset=utf-8", body: "OPEN\r\n" }
  if (path.startsWith("/refuse-lowercase")) return { body: "open\r\n" }
  if (path.startsWith("/handshake")) {
    return {
      headers: [
        ["X-Origin", "yes"],
        ["Sec-WebSocket-Protocol", "chat"],
        ["Set-Meta-User", "alice"],
        ["Keep-Alive-Interval", "30"]
      ],
      events: [{ type: "OPEN" }]
    }
  }
  if (path.startsWith("/meta")) return { headers: [["Set-Meta-User", "alice"]], events: [{ type: "OPEN" }] }
  if (path.startsWith("/keepalive")) return { headers: [["Keep-Alive-Interval", "1"]], events: [{ type: "OPEN" }] }
  const channel = gripChannelOf(connection)
  if (channel !== undefined) {
    return {
      headers: [["Sec-WebSocket-Extensions", "grip"]],
      events: [
        { type: "OPEN" },
        textEvent(`c:${JSON.stringify({ type: "subscribe", channel })}`),
        textEvent("m:welcome"),
        // No prefix: dropped by the gateway.
        textEvent("unprefixed"),
        { type: "BINARY", content: Buffer.from("m:\x01\x02", "latin1") }
      ]
    }
  }
  return { headers: [["X-Origin", "yes"]], events: [{ type: "OPEN" }] }
}

/** What the origin says back to a client text that is not an order. */
const replyTo = (text: string): string => (text === "hello" ? "world" : text.length > 1000 ? `got ${text.length} chars` : text)

/**
 * Later requests. A client text `cmd:<verb> <arg>` is an order to the origin:
 * `close <code> <reason>`, `ping <payload>`, `disconnect`, `open`, `fail` (answer 500),
 * `big <n>` (a text of n letters), `meta Name=value …` (Set-Meta-Name headers and a text
 * `meta set`; an empty value unbinds), `hold <ms>`
 * (answer that much later), `send <raw>` (a text as is, no GRIP prefix). Other texts are
 * answered (`hello` → `world`, long ones by their length, the rest echoed), binaries echoed
 * reversed, pings ponged, a close answered with the same close unless the origin closed first
 * (`/close-silent`: not answered, `/close-other`: answered with 4005 "other"), an empty request
 * (keep-alive, refresh) with `refreshed`. On
 * GRIP connections the origin's messages carry the `m:` prefix.
 */
const respond: WohResponder = async (request, connection) => {
  if (connection.requests[0] === request) return handshake(connection)
  const path = connection.requests[0]?.target ?? ""
  const grip = gripChannelOf(connection) !== undefined
  const prefixed = (text: string): WohEvent => textEvent(grip ? `m:${text}` : text)
  const out: Array<WohEvent> = []
  const headers: Array<readonly [string, string]> = []
  let holdMs = 0
  const events = eventsOf(request)
  if (events.length === 0) out.push(prefixed("refreshed"))
  for (const event of events) {
    switch (event.type) {
      case "TEXT": {
        const text = utf8(event.content)
        if (!text.startsWith("cmd:")) {
          out.push(prefixed(replyTo(text)))
          break
        }
        const space = text.indexOf(" ")
        const verb = space < 0 ? text.slice(4) : text.slice(4, space)
        const arg = space < 0 ? "" : text.slice(space + 1)
        switch (verb) {
          case "close": {
            const [code = "", ...reason] = arg.split(" ")
            out.push(closeEvent(Number(code), reason.join(" ")))
            closeSentBy.add(connection)
            break
          }
          case "ping":
            out.push({ type: "PING", content: Buffer.from(arg) })
            break
          case "disconnect":
            out.push({ type: "DISCONNECT" })
            break
          case "open":
            out.push({ type: "OPEN" })
            break
          case "fail":
            return { status: 500, reason: "Internal Server Error", contentType: "text/plain", body: "origin failure\n" }
          case "big":
            out.push(prefixed(letters(Number(arg))))
            break
          case "meta":
            for (const pair of arg.split(" ")) {
              const [name = "", value = ""] = pair.split("=")
              headers.push([`Set-Meta-${name}`, value])
            }
            out.push(prefixed("meta set"))
            break
          case "hold":
            holdMs = Number(arg)
            break
          case "send":
            out.push(textEvent(arg))
            break
          default:
            break
        }
        break
      }
      case "BINARY": {
        const reversed = Buffer.from(event.content ?? new Uint8Array()).reverse()
        out.push({ type: "BINARY", content: grip ? Buffer.concat([Buffer.from("m:"), reversed]) : reversed })
        break
      }
      case "PING":
        out.push(event.content === undefined ? { type: "PONG" } : { type: "PONG", content: event.content })
        break
      case "CLOSE":
        if (closeSentBy.has(connection) || path.startsWith("/close-silent")) break
        closeSentBy.add(connection)
        if (path.startsWith("/close-other")) out.push(closeEvent(4005, "other"))
        else out.push(event.content === undefined ? { type: "CLOSE" } : { type: "CLOSE", content: event.content })
        break
      case "PONG":
      case "OPEN":
      case "DISCONNECT":
        break
    }
  }
  if (holdMs > 0) await Bun.sleep(holdMs)
  return { headers, events: out }
}

// ---------------------------------------------------------------------------------------------
// Observations


/** An origin-side event, long contents by length and hash. */
const eventSummary = (event: WohEvent): string =>
  event.content !== undefined && event.content.length > 100 ? `${event.type} ${event.content.length} bytes sha1=${sha1(event.content)}` : describeEvent(event)

/** A request's events, or its body when it did not decode. */
const requestSummary = (request: WohRequest): Array<string> =>
  typeof request.events === "string" ? [`undecodable: ${request.events}`] : request.events.map(eventSummary)

/** The exact body, long ones by their first line, length and hash. */
const bodySummary = (body: Buffer): string => {
  if (body.length <= 200) return body.toString("latin1")
  const firstLine = body.subarray(0, body.indexOf("\r\n")).toString("latin1")
  return `${firstLine}\\r\\n… ${body.length} bytes sha1=${sha1(body)}`
}

/** The requests after the handshake. */
const afterOpen = (connection: WohConnection): Array<WohRequest> => connection.requests.slice(1)

/** `Meta-*` headers of a request, as `name=value`, names lower-cased, sorted. */
const metaOf = (request: WohRequest | undefined): Array<string> =>
  (request?.rawHeaders ?? [])
    .filter(([name]) => name.toLowerCase().startsWith("meta-"))
    .map(([name, value]) => `${name.toLowerCase()}=${value}`)
    .sort()

/** Header names compared as a set: lower-cased, without transport headers that are known to differ. */
const NOT_COMPARED = new Set(["accept-encoding", "connection"])
const headerNamesOf = (request: WohRequest | undefined): Array<string> =>
  [...new Set((request?.rawHeaders ?? []).map(([name]) => name.toLowerCase()))].filter((name) => !NOT_COMPARED.has(name)).sort()

/** Names sent more than once. */
const repeatedHeaders = (request: WohRequest | undefined): Array<string> => {
  const counts = new Map<string, number>()
  for (const [name] of request?.rawHeaders ?? []) counts.set(name.toLowerCase(), (counts.get(name.toLowerCase()) ?? 0) + 1)
  return [...counts].filter(([, count]) => count > 1).map(([name]) => name)
}

/** "valid HS256 iss=pushpin" when the token is signed with Pushpin's example key and not expired; else what is wrong. */
const gripSigOf = (request: WohRequest | undefined): string => {
  const token = request === undefined ? undefined : headerValue(request, "grip-sig")
  if (token === undefined) return "missing"
  const [header = "", claims = "", signature = ""] = token.split(".")
  const expected = createHmac("sha256", "changeme").update(`${header}.${claims}`).digest("base64url")
  if (signature !== expected) return "bad signature"
  const parsedHeader = JSON.parse(Buffer.from(header, "base64url").toString()) as Record<string, unknown>
  const parsedClaims = JSON.parse(Buffer.from(claims, "base64url").toString()) as Record<string, unknown>
  const exp = parsedClaims["exp"]
  const expired = typeof exp !== "number" || exp * 1000 < Date.now()
  return `valid ${String(parsedHeader["alg"])} iss=${String(parsedClaims["iss"])}${expired ? " expired" : ""}`
}

/** Every request of the connection has a Connection-Id, the same one. */
const oneConnectionId = (connection: WohConnection): boolean =>
  connection.requests.every((request) => request.connectionId !== undefined && request.connectionId === connection.connectionId) &&
  connection.connectionId.length > 0

/** The most requests of the connection that were outstanding at once, less one: 0 = strictly one at a time. */
const mostOutstanding = (connection: WohConnection): number => Math.max(0, ...connection.requests.map((request) => request.outstanding))

/** Waits (up to 2 s) for the gateway to pass a client's close on to the origin. */
const closeReached = (connection: WohConnection): Promise<void> =>
  connection
    .waitFor("a CLOSE", (requests) => requests.some((request) => requestSummary(request).some((event) => event.startsWith("CLOSE"))), 2000)
    .catch(() => undefined)

const expectedAccept = webSocketAccept

// ---------------------------------------------------------------------------------------------

describe.skipIf(!referencePushpinAvailable())("WebSocket-over-HTTP: pushpin-ts and Pushpin 1.36 behave alike", () => {
  let stopSides: () => Promise<void> = async () => {}
  /** Why a side could not start (its scenarios then fail, the other side's still run). */
  const broken = new Map<SideName, string>()
  const sides = new Map<SideName, Side>()
  const origins: Array<WohOrigin> = []
  const sockets: Array<RawWebSocket> = []

  beforeAll(async () => {
    const [forReference, forOurs] = await Promise.all([startWohOrigin(respond), startWohOrigin(respond)])
    origins.push(forReference, forOurs)
    stopSides = await startSides({ pushpin: forReference, "pushpin-ts": forOurs }, (port) => [`* 127.0.0.1:${port},over_http`], sides, broken)
  }, 30_000)

  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await stopSides()
    await Promise.all(origins.map((origin) => origin.stop()))
  })

  /** Opens a client WebSocket to the side, closed by afterAll at the latest. */
  const open = socketOpener(sockets)

  const { runOn, valueOf, verify, onBoth } = makeSideRunner(sides, broken, DEBUG)
  const publish = publishTo

  /** Waits for the client's `count`-th message (text or binary). */
  const messages = (ws: RawWebSocket, count: number, timeoutMs = 5000): Promise<void> =>
    ws.waitFor(`${count} messages`, (events) => events.filter((event) => event.type === "text" || event.type === "binary").length >= count, timeoutMs)

  // -------------------------------------------------------------------------------------------
  // 1. Handshake

  test("handshake: the first request, the 101, and the request after it", async () => {
    const clientKey = "dGhlIHNhbXBsZSBub25jZQ=="
    await onBoth(
      "handshake",
      async (side) => {
        const ws = await open(side, "/handshake?q=1", {
          "sec-websocket-key": clientKey,
          "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
          "sec-websocket-protocol": "chat, superchat",
          "user-agent": "differential/1.0",
          accept: "text/html",
          "accept-encoding": "gzip, br",
          "x-custom": "hello",
          // Only the origin may bind meta; a client's own must never reach it.
          "meta-user": "mallory",
          "Meta-Role": "root"
        })
        const connection = await side.origin.connection("/handshake?q=1")
        ws.sendText("hello")
        await messages(ws, 1)
        const [first, second] = connection.requests
        // A second client: its own Connection-Id.
        const other = await open(side, "/handshake-other")
        const otherConnection = await side.origin.connection("/handshake-other")
        for (const socket of [ws, other]) socket.close(1000)
        await Promise.all([ws.waitEnded(3000), other.waitEnded(3000), closeReached(connection), closeReached(otherConnection)])
        const value = (name: string): string | undefined => (first === undefined ? undefined : headerValue(first, name))
        const host = value("host")
        return {
          first: {
            requestLine: first === undefined ? undefined : `${first.method} ${first.target} ${first.httpVersion}`,
            headerNames: headerNamesOf(first),
            repeated: repeatedHeaders(first),
            host: host === `127.0.0.1:${side.port}` ? "the client's Host" : host,
            accept: value("accept"),
            contentType: value("content-type"),
            contentLength: value("content-length"),
            extensions: value("sec-websocket-extensions"),
            key: value("sec-websocket-key") === clientKey ? "the client's" : value("sec-websocket-key"),
            version: value("sec-websocket-version"),
            protocol: value("sec-websocket-protocol"),
            userAgent: value("user-agent"),
            custom: value("x-custom"),
            upgrade: value("upgrade"),
            connectionHasUpgrade: /upgrade/i.test(value("connection") ?? ""),
            clientAcceptEncodingRelayed: value("accept-encoding") === "gzip, br",
            meta: metaOf(first),
            gripSig: gripSigOf(first),
            body: first?.body.toString("latin1")
          },
          second: {
            headersAdded: headerNamesOf(second).filter((name) => !headerNamesOf(first).includes(name)),
            headersGone: headerNamesOf(first).filter((name) => !headerNamesOf(second).includes(name)),
            meta: metaOf(second),
            gripSig: gripSigOf(second),
            body: second?.body.toString("latin1")
          },
          connectionId: {
            sameWithinConnection: oneConnectionId(connection) && oneConnectionId(otherConnection),
            differentAcrossConnections: connection.connectionId !== otherConnection.connectionId,
            requests: connection.requests.map(requestSummary)
          },
          client: {
            status: ws.head.status,
            headerNames: [...new Set(ws.head.headers.map(([name]) => name))].filter((name) => name !== "date").sort(),
            acceptIsRight: headerOf(ws.head, "sec-websocket-accept") === expectedAccept(clientKey),
            origin: headerOf(ws.head, "x-origin"),
            protocol: headerOf(ws.head, "sec-websocket-protocol"),
            messages: messagesOf(ws)
          }
        }
      },
      {
        first: {
          requestLine: "POST /handshake?q=1 HTTP/1.1",
          headerNames: [
            "accept",
            "connection-id",
            "content-length",
            "content-type",
            "grip-feature",
            "grip-sig",
            "host",
            "sec-websocket-extensions",
            "sec-websocket-key",
            "sec-websocket-protocol",
            "sec-websocket-version",
            "user-agent",
            "x-custom"
          ],
          repeated: [],
          host: "the client's Host",
          // The client's Accept is replaced.
          accept: "application/websocket-events",
          contentType: "application/websocket-events",
          contentLength: "6",
          // The client's permessage-deflate is not passed on; the gateway offers `grip`.
          extensions: "grip",
          // The rest of the client's handshake is replayed, its key and version included.
          key: "the client's",
          version: "13",
          protocol: "chat, superchat",
          userAgent: "differential/1.0",
          custom: "hello",
          upgrade: undefined,
          connectionHasUpgrade: false,
          clientAcceptEncodingRelayed: false,
          meta: [],
          gripSig: "valid HS256 iss=pushpin",
          body: "OPEN\r\n"
        },
        second: {
          // What the origin bound with Set-Meta-User, and nothing the client claimed.
          headersAdded: ["meta-user"],
          headersGone: [],
          meta: ["meta-user=alice"],
          gripSig: "valid HS256 iss=pushpin",
          body: "TEXT 5\r\nhello\r\n"
        },
        connectionId: { sameWithinConnection: true, differentAcrossConnections: true, requests: [["OPEN"], ['TEXT "hello"'], ['CLOSE 1000 ""']] },
        client: {
          status: 101,
          // X-Origin and Sec-WebSocket-Protocol relayed; Content-Type, Content-Length,
          // Set-Meta-User and Keep-Alive-Interval are the gateway's, not the client's.
          headerNames: ["connection", "sec-websocket-accept", "sec-websocket-protocol", "upgrade", "x-origin"],
          acceptIsRight: true,
          origin: "yes",
          protocol: "chat",
          messages: ['text "world"']
        }
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 2. The origin refuses the handshake

  test("rejection: the first answer is relayed when it is not a 200 with events", async () => {
    const variants = ["/reject", "/wrong-type", "/no-open"]
    interface Refusal {
      readonly path: string
      readonly status?: number
      readonly reason?: string
      readonly contentType?: string | undefined
      readonly custom?: string | undefined
      readonly body?: string
      readonly complete?: boolean
      readonly outcome?: string
      readonly requests: Array<Array<string>>
    }
    await verify(
      "rejection",
      async (side) => {
        const outcomes: Array<Refusal> = []
        for (const path of variants) {
          const outcome = await upgrade({ port: side.port, path, headers: { "x-custom": "hello" } })
          if (outcome.kind === "open") outcome.ws.destroy()
          await Bun.sleep(300)
          const requests = side.origin.connections(path).flatMap((connection) => connection.requests.map(requestSummary))
          if (outcome.kind !== "refused") {
            outcomes.push({ path, outcome: outcome.kind === "open" ? `opened: ${outcome.ws.head.status}` : `closed: ${outcome.how}`, requests })
            continue
          }
          const { head, body, ending } = outcome.answer
          outcomes.push({
            path,
            status: head.status,
            reason: head.reason,
            contentType: headerOf(head, "content-type"),
            custom: headerOf(head, "x-reason"),
            body: body.toString("utf8"),
            complete: ending !== "closed",
            requests
          })
        }
        return outcomes
      },
      {
        alike: (outcomes) => outcomes.map(({ contentType, ...rest }) => (rest.path === "/no-open" ? rest : { ...rest, contentType })),
        expected: [
          // Status, reason, headers and body as the origin gave them; no DISCONNECT afterwards.
          { path: "/reject", status: 403, reason: "Forbidden", contentType: "text/plain", custom: "not-you", body: "go away\n", complete: true, requests: [["OPEN"]] },
          // Not `application/websocket-events`: a refusal too, even with status 200.
          { path: "/wrong-type", status: 200, reason: "OK", contentType: "text/plain", custom: undefined, body: "OPEN\r\n", complete: true, requests: [["OPEN"]] },
          // Events, but no OPEN (and no Keep-Alive-Interval): the gateway's own 502.
          { path: "/no-open", status: 502, reason: "Bad Gateway", custom: undefined, body: "Error while proxying to origin.\n", complete: true, requests: [["OPEN"]] }
        ],
        // Known difference: Pushpin 1.36's 502 here has a body and no Content-Type (its HTTP 502
        // has `text/plain`); pushpin-ts labels it as it labels every 502 of its own.
        differ: {
          select: (outcomes) => outcomes.find((outcome) => outcome.path === "/no-open")?.contentType,
          pushpin: undefined,
          "pushpin-ts": "text/plain"
        }
      }
    )
  }, 15_000)

  test("handshake answers: `OPEN 0` opens; a parameter on the type or a lower-case `open` do not", async () => {
    const variants = ["/accept-open0", "/refuse-ctype-param", "/refuse-lowercase"]
    await onBoth(
      "handshake answers",
      async (side) => {
        const outcomes: Array<{ path: string; answer: string; client: Array<string>; origin: Array<Array<string>> }> = []
        for (const path of variants) {
          const outcome = await upgrade({ port: side.port, path }).catch((error: unknown) => {
            throw new Error(`${path}: ${String(error)}`)
          })
          let client: Array<string> = []
          if (outcome.kind === "open") {
            sockets.push(outcome.ws)
            outcome.ws.sendText("hi")
            await messages(outcome.ws, 1, 2000)
            client = messagesOf(outcome.ws)
            outcome.ws.destroy()
          }
          await Bun.sleep(300)
          outcomes.push({
            path,
            answer:
              outcome.kind === "open"
                ? String(outcome.ws.head.status)
                : outcome.kind === "refused"
                  ? `${outcome.answer.head.status} ${JSON.stringify(outcome.answer.body.toString("utf8"))}`
                  : `closed: ${outcome.how}`,
            client,
            origin: side.origin.connections(path).flatMap((connection) => connection.requests.map(requestSummary))
          })
        }
        return outcomes
      },
      [
        { path: "/accept-open0", answer: "101", client: ['text "hi"'], origin: [["OPEN"], ['TEXT "hi"'], ["DISCONNECT"]] },
        // The type is compared whole: relayed to the client as a refusal.
        { path: "/refuse-ctype-param", answer: '200 "OPEN\\r\\n"', client: [], origin: [["OPEN"]] },
        // Event types are upper case; `open` is no OPEN.
        { path: "/refuse-lowercase", answer: '502 "Error while proxying to origin.\\n"', client: [], origin: [["OPEN"]] }
      ]
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 3. Messages both ways

  test("messages: text and binary each way, hex lengths, a 70 000-byte and a fragmented client message, a 16 384-byte origin message", async () => {
    const big = letters(70_000)
    await onBoth(
      "messages",
      async (side) => {
        const ws = await open(side, "/messages")
        const connection = await side.origin.connection("/messages")
        // One at a time, so each request carries one event.
        ws.sendText("hello")
        await messages(ws, 1)
        ws.sendBinary(Buffer.from([0, 1, 2, 255]))
        await messages(ws, 2)
        ws.sendText("abcdefghijklmnopqrstuvwxyz")
        await messages(ws, 3)
        ws.sendText(big)
        await messages(ws, 4)
        ws.sendFrame(Op.text, "frag-", false)
        ws.sendFrame(Op.continuation, "ment ✓", true)
        await messages(ws, 5)
        ws.sendText("cmd:big 16384")
        await messages(ws, 6)
        ws.close(1000)
        await Promise.all([ws.waitEnded(3000), closeReached(connection)])
        return {
          bodies: afterOpen(connection).map((request) => bodySummary(request.body)),
          contentTypes: [...new Set(connection.requests.map((request) => headerValue(request, "content-type")))],
          oneAtATime: mostOutstanding(connection) === 0,
          client: messagesOf(ws),
          closes: closesOf(ws)
        }
      },
      {
        bodies: [
          "TEXT 5\r\nhello\r\n",
          "BINARY 4\r\n\x00\x01\x02\xff\r\n",
          // Lengths are hexadecimal, lower case.
          "TEXT 1a\r\nabcdefghijklmnopqrstuvwxyz\r\n",
          `TEXT 11170\\r\\n… ${"TEXT 11170\r\n".length + 70_000 + 2} bytes sha1=${sha1(`TEXT 11170\r\n${big}\r\n`)}`,
          // Fragments arrive as one message.
          `TEXT ${Buffer.byteLength("frag-ment ✓").toString(16)}\r\n${Buffer.from("frag-ment ✓").toString("latin1")}\r\n`,
          "TEXT d\r\ncmd:big 16384\r\n",
          "CLOSE 2\r\n\x03\xe8\r\n"
        ],
        contentTypes: ["application/websocket-events"],
        oneAtATime: true,
        client: [
          'text "world"',
          "binary 4 bytes ff020100",
          'text "abcdefghijklmnopqrstuvwxyz"',
          'text "got 70000 chars"',
          'text "frag-ment ✓"',
          // The longest that Pushpin 1.36 delivers without stalling (see the last test).
          `text 16384 chars sha1=${sha1(letters(16_384))}`
        ],
        closes: ['close 1000 ""']
      }
    )
  }, 15_000)

  test("ping and pong: payloads travel as PING/PONG events both ways", async () => {
    await verify(
      "ping/pong",
      async (side) => {
        const ws = await open(side, "/ping")
        const connection = await side.origin.connection("/ping")
        // The client's ping reaches the origin, which answers it with a PONG.
        ws.ping("abc")
        await ws.waitFor("a pong", (events) => events.some((event) => event.type === "pong"))
        // The origin's ping reaches the client, whose pong reaches the origin.
        ws.sendText("cmd:ping xyz")
        await ws.waitFor("the origin's ping", (events) => events.some((event) => event.type === "ping"))
        await connection.waitFor("the client's pong", (requests) => requests.some((request) => requestSummary(request).includes("PONG 78797a")))
        // An unsolicited pong from the client.
        ws.pong("pp")
        await connection.waitFor("the unsolicited pong", (requests) => requests.some((request) => requestSummary(request).includes("PONG 7070")))
        await Bun.sleep(200)
        const result = {
          origin: afterOpen(connection).flatMap(requestSummary),
          clientPings: payloadsOf(ws, "ping"),
          clientPongs: payloadsOf(ws, "pong")
        }
        ws.close(1000)
        await ws.waitEnded(3000)
        return result
      },
      {
        // The client may get a pong to its ping from the gateway as well as the origin's: which
        // payloads, not how many.
        alike: (result) => ({ ...result, clientPongs: [...new Set(result.clientPongs)] }),
        expected: {
          origin: ["PING 616263", 'TEXT "cmd:ping xyz"', "PONG 78797a", "PONG 7070"],
          clientPings: ["xyz"],
          clientPongs: ["abc"]
        }
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 4. Batching

  test("batching: client messages sent while a request is outstanding", async () => {
    await verify(
      "batching",
      async (side) => {
        const ws = await open(side, "/batch")
        const connection = await side.origin.connection("/batch")
        // The origin takes 500 ms over this one; the next four queue up in the gateway.
        ws.sendText("cmd:hold 500")
        await connection.waitFor("the hold", (requests) => requests.length >= 2)
        ws.sendText("m1")
        ws.sendText("m2")
        ws.sendBinary(Buffer.from([7, 8]))
        ws.sendText("m3")
        await messages(ws, 4)
        ws.close(1000)
        await Promise.all([ws.waitEnded(3000), closeReached(connection)])
        const requests = afterOpen(connection)
        return {
          events: requests.flatMap(requestSummary),
          groups: requests.map(requestSummary),
          oneAtATime: mostOutstanding(connection) === 0,
          client: messagesOf(ws)
        }
      },
      {
        alike: ({ events, oneAtATime, client }) => ({ events, oneAtATime, client }),
        expected: {
          events: ['TEXT "cmd:hold 500"', 'TEXT "m1"', 'TEXT "m2"', "BINARY 0708", 'TEXT "m3"', 'CLOSE 1000 ""'],
          oneAtATime: true,
          client: ['text "m1"', 'text "m2"', "binary 2 bytes 0807", 'text "m3"']
        },
        // Pushpin sends everything that queued up in the next request.
        recorded: {
          select: ({ groups }) => groups,
          pushpin: [['TEXT "cmd:hold 500"'], ['TEXT "m1"', 'TEXT "m2"', "BINARY 0708", 'TEXT "m3"'], ['CLOSE 1000 ""']]
        }
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 5. Meta

  test("meta: Set-Meta-* binds, rebinds and unbinds; a client's Meta-* never gets through", async () => {
    await onBoth(
      "meta",
      async (side) => {
        const ws = await open(side, "/meta", { "meta-user": "mallory", "meta-role": "root" })
        const connection = await side.origin.connection("/meta")
        // Each answer awaited before the next message, so each request carries what the previous
        // answer bound.
        for (const [i, text] of ["one", "cmd:meta User=bob Role=admin", "two", "cmd:meta User=", "three"].entries()) {
          ws.sendText(text)
          await messages(ws, i + 1)
        }
        ws.destroy()
        await connection.waitFor("the disconnect", (requests) => requests.some((request) => requestSummary(request).includes("DISCONNECT")))
        return connection.requests.flatMap((request) => requestSummary(request).map((event) => `${event} | ${metaOf(request).join(" ") || "no meta"}`))
      },
      [
        // The client's Meta-User: mallory and Meta-Role: root are never seen.
        "OPEN | no meta",
        "TEXT \"one\" | meta-user=alice",
        "TEXT \"cmd:meta User=bob Role=admin\" | meta-user=alice",
        "TEXT \"two\" | meta-role=admin meta-user=bob",
        // An empty Set-Meta-User unbinds.
        "TEXT \"cmd:meta User=\" | meta-role=admin meta-user=bob",
        "TEXT \"three\" | meta-role=admin",
        "DISCONNECT | meta-role=admin"
      ]
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 6. GRIP

  test("GRIP: control messages in the handshake answer, the m: prefix, publishes and a publish that closes", async () => {
    await onBoth(
      "grip",
      async (side) => {
        const ws = await open(side, "/grip/woh")
        const connection = await side.origin.connection("/grip/woh")
        await messages(ws, 2)
        await untilSubscribed(side, ws, "woh")
        ws.sendText("hello")
        await ws.waitFor("world", (events) => events.some((event) => event.type === "text" && event.data === "world"))
        ws.sendText("cmd:send plain")
        ws.sendText("cmd:send m:prefixed")
        await ws.waitFor("prefixed", (events) => events.some((event) => event.type === "text" && event.data === "prefixed"))
        const answers = [
          await publish(side, [{ channel: "woh", formats: { "ws-message": { content: "pub1" } } }]),
          await publish(side, [{ channel: "woh", formats: { "ws-message": { "content-bin": Buffer.from([0, 1, 2, 255]).toString("base64") } } }])
        ]
        await ws.waitFor("the binary publish", (events) => events.filter((event) => event.type === "binary").length >= 2)
        answers.push(await publish(side, [{ channel: "woh", formats: { "ws-message": { action: "close", code: 4100, reason: "pubclose" } } }]))
        const clientEnded = await ws.waitEnded(5000)
        await Bun.sleep(300)
        return {
          extensionsToClient: headerOf(ws.head, "sec-websocket-extensions"),
          answers,
          client: withoutProbes(messagesOf(ws)),
          clientCloses: closesOf(ws),
          clientEnded,
          origin: afterOpen(connection).flatMap(requestSummary),
          gripOfferedEveryTime: connection.requests.every((request) => headerValues(request, "sec-websocket-extensions").join() === "grip")
        }
      },
      {
        // `grip` is between the gateway and the origin.
        extensionsToClient: undefined,
        answers: ["200 Published", "200 Published", "200 Published"],
        // `m:` stripped (text and binary), unprefixed messages dropped, control messages consumed.
        client: ['text "welcome"', "binary 2 bytes 0102", 'text "world"', 'text "prefixed"', 'text "pub1"', "binary 4 bytes 000102ff"],
        clientCloses: ['close 4100 "pubclose"'],
        clientEnded: true,
        // The client's answer to the 4100 close is not passed on: the origin gets a CLOSE with no code.
        origin: ['TEXT "hello"', 'TEXT "cmd:send plain"', 'TEXT "cmd:send m:prefixed"', "CLOSE"],
        gripOfferedEveryTime: true
      }
    )
  }, 20_000)

  // -------------------------------------------------------------------------------------------
  // 7–10. Closes, disconnects and failures

  test("close: the client's 4001 \"bye\" reaches the origin, whose CLOSE ends the connection", async () => {
    await onBoth(
      "client close",
      async (side) => {
        const ws = await open(side, "/close-client")
        const connection = await side.origin.connection("/close-client")
        ws.close(4001, "bye")
        const clientEnded = await ws.waitEnded(3000)
        await Bun.sleep(300)
        return { client: closesOf(ws), clientEnded, origin: afterOpen(connection).flatMap(requestSummary), body: afterOpen(connection)[0]?.body.toString("latin1") }
      },
      { client: ['close 4001 "bye"'], clientEnded: true, origin: ['CLOSE 4001 "bye"'], body: "CLOSE 5\r\n\x0f\xa1bye\r\n" }
    )
  }, 15_000)

  test("close: the origin answers the client's close with nothing, or with another CLOSE", async () => {
    await verify(
      "client close, other answers",
      async (side) => {
        const outcomes: Array<{ path: string; client: Array<string>; clientEnded: boolean; origin: Array<string> }> = []
        for (const path of ["/close-silent", "/close-other"]) {
          const ws = await open(side, path)
          const connection = await side.origin.connection(path)
          ws.close(4001, "bye")
          const clientEnded = await ws.waitEnded(5000)
          await Bun.sleep(300)
          outcomes.push({ path, client: closesOf(ws), clientEnded, origin: afterOpen(connection).flatMap(requestSummary) })
        }
        return outcomes
      },
      {
        alike: (outcomes) => outcomes.map((outcome) => ({ ...outcome, client: "compared apart" })),
        expected: [
          { path: "/close-silent", client: "compared apart", clientEnded: true, origin: ['CLOSE 4001 "bye"'] },
          { path: "/close-other", client: "compared apart", clientEnded: true, origin: ['CLOSE 4001 "bye"'] }
        ],
        // Known differences, both from Bun's WebSocket server answering a client's close frame
        // itself, at once, with the client's own code (RFC 6455 §5.5.1's echo): Pushpin 1.36 waits
        // for the origin, so the client gets the origin's CLOSE ("/close-other": 4005 "other"), or,
        // when the origin does not answer ("/close-silent"), its TCP connection is dropped without
        // the close frame §5.5.1 requires.
        differ: {
          select: (outcomes) => outcomes.map((outcome) => outcome.client),
          pushpin: [[], ['close 4005 "other"']],
          "pushpin-ts": [['close 4001 "bye"'], ['close 4001 "bye"']]
        }
      }
    )
  }, 15_000)

  test("close: the origin's CLOSE 4002 \"later\" reaches the client, whose answer reaches the origin", async () => {
    await onBoth(
      "origin close",
      async (side) => {
        const ws = await open(side, "/close-origin")
        const connection = await side.origin.connection("/close-origin")
        ws.sendText("cmd:close 4002 later")
        const clientEnded = await ws.waitEnded(3000)
        await Bun.sleep(300)
        return { client: closesOf(ws), clientMessages: messagesOf(ws), clientEnded, origin: afterOpen(connection).flatMap(requestSummary) }
      },
      { client: ['close 4002 "later"'], clientMessages: [], clientEnded: true, origin: ['TEXT "cmd:close 4002 later"', 'CLOSE 4002 "later"'] }
    )
  }, 15_000)

  test("disconnect: a client that vanishes is announced with DISCONNECT", async () => {
    await onBoth(
      "client vanishes",
      async (side) => {
        const ws = await open(side, "/vanish")
        const connection = await side.origin.connection("/vanish")
        ws.destroy()
        await connection.waitFor("the disconnect", (requests) => requests.length >= 2)
        await Bun.sleep(300)
        const last = connection.requests.at(-1)
        return {
          origin: afterOpen(connection).map(requestSummary),
          body: last?.body.toString("latin1"),
          gripSig: gripSigOf(last),
          sameConnection: oneConnectionId(connection)
        }
      },
      { origin: [["DISCONNECT"]], body: "DISCONNECT\r\n", gripSig: "valid HS256 iss=pushpin", sameConnection: true }
    )
  }, 15_000)

  test("origin DISCONNECT, an OPEN after the handshake, and a 500: the client is dropped", async () => {
    const orders = ["cmd:disconnect", "cmd:open", "cmd:fail"]
    await onBoth(
      "origin drops the client",
      async (side) => {
        const outcomes: Array<unknown> = []
        for (const [i, order] of orders.entries()) {
          const path = `/drop-${i}`
          const ws = await open(side, path)
          const connection = await side.origin.connection(path)
          ws.sendText(order)
          const clientEnded = await ws.waitEnded(5000)
          await Bun.sleep(300)
          outcomes.push({ order, client: summarise(ws.events), clientEnded, origin: afterOpen(connection).flatMap(requestSummary) })
        }
        return outcomes
      },
      orders.map((order) => ({ order, client: [], clientEnded: true, origin: [`TEXT ${JSON.stringify(order)}`] }))
    )
  }, 20_000)

  // -------------------------------------------------------------------------------------------
  // 11. Keep-Alive-Interval

  test("keep-alive: an interval below 20 s is raised (no request within 3 s of `Keep-Alive-Interval: 1`)", async () => {
    await onBoth(
      "keep-alive",
      async (side) => {
        const ws = await open(side, "/keepalive")
        const connection = await side.origin.connection("/keepalive")
        await Bun.sleep(3000)
        const during = afterOpen(connection).map(requestSummary)
        ws.close(1000)
        await ws.waitEnded(3000)
        return { during, client: summarise(ws.events) }
      },
      { during: [], client: ['close 1000 ""'] }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 12. Refresh

  test("refresh: a ws-message publish with action refresh", async () => {
    await verify(
      "refresh",
      async (side) => {
        const ws = await open(side, "/grip/refresh")
        const connection = await side.origin.connection("/grip/refresh")
        await messages(ws, 2)
        await untilSubscribed(side, ws, "refresh")
        const answer = await publish(side, [{ channel: "refresh", formats: { "ws-message": { action: "refresh" } } }])
        await connection.waitFor("a refresh", (requests) => requests.length >= 2, 1000).catch(() => undefined)
        await Bun.sleep(300)
        const result = { answer, origin: afterOpen(connection).map(requestSummary), client: withoutProbes(messagesOf(ws)).slice(2) }
        ws.close(1000)
        await ws.waitEnded(3000)
        return result
      },
      {
        alike: () => "nothing in common",
        expected: "nothing in common",
        // Known difference: Pushpin 1.36 predates `refresh` on ws-message (1.38) and refuses the
        // whole publish; pushpin-ts sends the origin a request with no events at once.
        differ: {
          select: (result) => result,
          pushpin: { answer: "400 Invalid format:", origin: [], client: [] },
          "pushpin-ts": { answer: "200 Published", origin: [[]], client: ['text "refreshed"'] }
        }
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // Long origin messages

  test("a 40 000-byte origin message, then a client message", async () => {
    await verify(
      "long origin message",
      async (side) => {
        const ws = await open(side, "/long")
        await side.origin.connection("/long")
        const bytes = (): number => ws.frames.reduce((sum, frame) => sum + frame.payload.length, 0)
        ws.sendText("cmd:big 40000")
        await messages(ws, 1, 1000).catch(() => undefined)
        const first = { client: messagesOf(ws), bytes: bytes() }
        ws.sendText("after")
        await messages(ws, 2, 1000).catch(() => undefined)
        const second = { client: messagesOf(ws), bytes: bytes() }
        ws.destroy()
        return { first, second }
      },
      {
        alike: () => "nothing in common",
        expected: "nothing in common",
        // Known difference: Pushpin 1.36 sends the first 16 384 bytes (two 8 192-byte fragments)
        // and stalls; each later client message releases another 16 384 bytes, and messages
        // after the long one wait behind it. pushpin-ts delivers both messages whole.
        differ: {
          select: (result) => result,
          pushpin: { first: { client: [], bytes: 16_384 }, second: { client: [], bytes: 32_768 } },
          "pushpin-ts": {
            first: { client: [`text 40000 chars sha1=${sha1(letters(40_000))}`], bytes: 40_000 },
            second: { client: [`text 40000 chars sha1=${sha1(letters(40_000))}`, 'text "after"'], bytes: 40_005 }
          }
        }
      }
    )
  }, 15_000)

  // Last: after this, Pushpin 1.36 may be busy flooding its origin until it is stopped.
  test("an empty handshake answer with Keep-Alive-Interval opens the connection", async () => {
    const path = "/accept-ka-empty"
    interface Seen {
      readonly answer: string
      readonly client: Array<string>
      readonly origin: Array<Array<string>> | "OPEN only"
    }
    const scenario = async (side: Side): Promise<Seen> => {
      const outcome = await upgrade({ port: side.port, path, timeoutMs: 2000 }).catch(() => undefined)
      let client: Array<string> = []
      if (outcome?.kind === "open") {
        sockets.push(outcome.ws)
        outcome.ws.sendText("hi")
        await messages(outcome.ws, 1, 2000).catch(() => undefined)
        client = messagesOf(outcome.ws)
        outcome.ws.destroy()
      }
      await Bun.sleep(300)
      const requests = side.origin.connections(path).flatMap((connection) => connection.requests.map(requestSummary))
      return {
        answer: outcome === undefined ? "no answer" : outcome.kind === "open" ? "101" : outcome.kind === "refused" ? String(outcome.answer.head.status) : "closed",
        client,
        origin: requests.length > 0 && requests.every((events) => events.join() === "OPEN") ? "OPEN only" : requests
      }
    }
    const [fromReference, fromOurs] = await Promise.allSettled([runOn("pushpin", scenario), runOn("pushpin-ts", scenario)])
    if (DEBUG) {
      for (const [name, outcome] of [["pushpin", fromReference], ["pushpin-ts", fromOurs]] as const) {
        console.log(`empty handshake answer — ${name}: ${outcome.status === "fulfilled" ? JSON.stringify(outcome.value) : String(outcome.reason)}`)
      }
    }
    const opened: Seen = { answer: "101", client: ['text "hi"'], origin: [["OPEN"], ['TEXT "hi"'], ["DISCONNECT"]] }
    const hung: Seen = { answer: "no answer", client: [], origin: "OPEN only" }
    // Known difference: the protocol allows an empty first answer when it has Keep-Alive-Interval,
    // but Pushpin 1.36 mostly never answers the client (no 101, no refusal), and some time after
    // the client gives up sends the origin OPEN after OPEN (about a thousand a second, for as long
    // as it was left running); now and then it opens the connection as it should. pushpin-ts
    // opens it every time.
    expect({ pushpin: [opened, hung] }).toEqual({ pushpin: expect.arrayContaining([valueOf("empty handshake answer", "pushpin", fromReference)]) })
    expect({ "pushpin-ts": valueOf("empty handshake answer", "pushpin-ts", fromOurs) }).toEqual({ "pushpin-ts": opened })
  }, 15_000)
})
