/**
 * Differential for WebSockets: the same client frames and origin behaviour through real Pushpin
 * 1.36 (condure + zurl) and through pushpin-ts, over real sockets on 127.0.0.1. Both ends are raw
 * (test/support/ws-client.ts) so close frames, ping/pong payloads, masking and the bytes of a
 * refused upgrade are seen exactly. Each side has its own origin.
 *
 * Every scenario asserts what Pushpin 1.36 does (so a change of the reference is noticed), then
 * that pushpin-ts does the same. Where Pushpin 1.36 is plainly defective the two are compared on
 * what they must share, and the rest is asserted per side ("known difference"):
 * - ping/pong payloads are lost on the way through (both directions);
 * - a refused upgrade loses its reason phrase and headers (zurl passes on code and body only);
 * - a refusal body over 100 000 bytes becomes `403` with `Content-Length: 100000` and no body;
 * - an invalid upgrade request gets no answer at all (condure drops the connection).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { deadPort } from "../support/origin.ts"
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
  untilSubscribed,
  withoutProbes
} from "../support/differential-sides.ts"
import { webSocketAccept } from "../../src/websocket/origin-client.ts"
import { referencePushpinAvailable } from "../support/reference-pushpin.ts"
import {
  headerOf,
  Op,
  startWsOrigin,
  upgrade,
  type OriginAnswer,
  type OriginConnection,
  type OriginUpgradeRequest,
  type RawWebSocket,
  type WsEndpoint,
  type WsEvent,
  type WsOrigin
} from "../support/ws-client.ts"

const DEBUG = process.env["DIFFERENTIAL_DEBUG"] === "1"

interface Side extends SideBase {
  readonly origin: WsOrigin
}

// ---------------------------------------------------------------------------------------------
// The origin, the same on both sides

const GRIP_PATHS = ["/grip", "/implicit/grip"]
const BIG_REJECTION_BODY = "x".repeat(100_001)

/**
 * - `/reject…`: 403 with a custom header and body `go away` (`/reject-big`: a 100 001-byte body).
 * - anything else: 101 with `X-Origin: yes`, the last subprotocol the client offered, and on the
 *   GRIP paths `Sec-WebSocket-Extensions: grip`.
 */
const answer = (request: OriginUpgradeRequest): OriginAnswer => {
  if (request.path.startsWith("/reject-big")) {
    return {
      accept: false,
      raw: `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Reason: not-you\r\nContent-Length: ${BIG_REJECTION_BODY.length}\r\n\r\n${BIG_REJECTION_BODY}`
    }
  }
  if (request.path.startsWith("/reject")) {
    return { accept: false, raw: "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Reason: not-you\r\nContent-Length: 7\r\n\r\ngo away" }
  }
  const headers: Array<readonly [string, string]> = [["X-Origin", "yes"]]
  const offered = request.headers.find(([name]) => name === "sec-websocket-protocol")?.[1]
  if (offered !== undefined) headers.push(["Sec-WebSocket-Protocol", offered.split(",").map((p) => p.trim()).at(-1) ?? ""])
  if (GRIP_PATHS.some((path) => request.path.startsWith(path))) headers.push(["Sec-WebSocket-Extensions", "grip"])
  return { accept: true, headers }
}

const isGrip = (connection: OriginConnection): boolean => GRIP_PATHS.some((path) => connection.request.path.startsWith(path))

/**
 * Text `cmd:<verb> <arg>` from the client is an order to the origin: `close <code> <reason>`,
 * `ping <payload>`, `send <raw text>`, `end` (drop TCP without a close frame). Other messages are
 * echoed; on GRIP paths with the `m:` prefix.
 */
const onEvent = (connection: OriginConnection, event: WsEvent): void => {
  if (event.type === "text" && event.data.startsWith("cmd:")) {
    const space = event.data.indexOf(" ")
    const verb = space < 0 ? event.data.slice(4) : event.data.slice(4, space)
    const arg = space < 0 ? "" : event.data.slice(space + 1)
    switch (verb) {
      case "close": {
        const [code = "", ...reason] = arg.split(" ")
        connection.close(Number(code), reason.join(" "))
        return
      }
      case "ping":
        connection.ping(arg)
        return
      case "send":
        connection.sendText(arg)
        return
      case "end":
        connection.end()
        return
      default:
        // Not an order this origin knows: recorded, nothing done.
        return
    }
  }
  if (event.type === "text") connection.sendText(isGrip(connection) ? `m:${event.data}` : event.data)
  if (event.type === "binary") connection.sendBinary(isGrip(connection) ? Buffer.concat([Buffer.from("m:"), event.data]) : event.data)
}

// ---------------------------------------------------------------------------------------------
// Observations

/** The origin's messages less the test's own `cmd:` orders. */
const originMessagesOf = (connection: OriginConnection): Array<string> =>
  messagesOf({ ...connection, events: connection.events.filter((event) => !(event.type === "text" && event.data.startsWith("cmd:"))) })

const expectedAccept = webSocketAccept

const describeGripSig = (token: string | undefined): string | undefined => {
  if (token === undefined) return undefined
  const [header, claims] = token
    .split(".")
    .slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, "base64url").toString()) as Record<string, unknown>)
  return `${String(header?.["alg"])} iss=${String(claims?.["iss"])}`
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(!referencePushpinAvailable())("WebSockets: pushpin-ts and Pushpin 1.36 behave alike", () => {
  let stopSides: () => Promise<void> = async () => {}
  /** Why a side could not start (its scenarios then fail, the other side's still run). */
  const broken = new Map<SideName, string>()
  const sides = new Map<SideName, Side>()
  const origins: Array<WsOrigin> = []
  const sockets: Array<RawWebSocket> = []

  const routesFor = (originPort: number, deadA: number, deadB: number): Array<string> => [
    `*,path_beg=/failover 127.0.0.1:${deadA} 127.0.0.1:${originPort}`,
    `*,path_beg=/dead 127.0.0.1:${deadA} 127.0.0.1:${deadB}`,
    `*,path_beg=/implicit 127.0.0.1:${originPort},sub=implicit`,
    `* 127.0.0.1:${originPort}`
  ]

  beforeAll(async () => {
    const [forReference, forOurs] = await Promise.all([startWsOrigin({ answer, onEvent }), startWsOrigin({ answer, onEvent })])
    origins.push(forReference, forOurs)
    const [deadA, deadB] = [deadPort(), deadPort()]
    stopSides = await startSides({ pushpin: forReference, "pushpin-ts": forOurs }, (port) => routesFor(port, deadA, deadB), sides, broken)
  }, 30_000)

  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await stopSides()
    await Promise.all(origins.map((origin) => origin.stop()))
  })

  /** Opens a client WebSocket to the side, closed by afterAll at the latest. */
  const open = socketOpener(sockets)

  const { verify, onBoth } = makeSideRunner(sides, broken, DEBUG)
  const publish = publishTo

  // -------------------------------------------------------------------------------------------
  // 1. Echo passthrough

  test("echo: text, binary, a 70 000-byte text and a fragmented message arrive whole and in order", async () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    const big = Array.from({ length: 70_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join("")
    await onBoth(
      "echo",
      async (side) => {
        const ws = await open(side, "/echo")
        ws.sendText("hello")
        ws.sendBinary(binary)
        ws.sendText(big)
        ws.sendFrame(Op.text, "frag-", false)
        ws.sendFrame(Op.continuation, "ment", false)
        ws.sendFrame(Op.continuation, "ed ✓", true)
        ws.sendText("last")
        await ws.waitFor("five echoes", (events) => events.filter((event) => event.type === "text" || event.type === "binary").length >= 5)
        const origin = await side.origin.connection("/echo")
        ws.close(1000)
        await ws.waitEnded(3000)
        return {
          client: messagesOf(ws),
          origin: originMessagesOf(origin),
          // RFC 6455: client-to-server frames masked, server-to-client not.
          originFramesMasked: origin.frames.every((frame) => frame.masked),
          clientFramesUnmasked: ws.frames.every((frame) => !frame.masked)
        }
      },
      {
        client: ['text "hello"', `binary 256 bytes sha1=${sha1(binary)}`, `text 70000 chars sha1=${sha1(big)}`, 'text "frag-mented ✓"', 'text "last"'],
        origin: ['text "hello"', `binary 256 bytes sha1=${sha1(binary)}`, `text 70000 chars sha1=${sha1(big)}`, 'text "frag-mented ✓"', 'text "last"'],
        originFramesMasked: true,
        clientFramesUnmasked: true
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 2. Handshake headers

  test("handshake: what the origin sees, and the 101 the client gets", async () => {
    await onBoth(
      "handshake",
      async (side) => {
        const clientKey = "dGhlIHNhbXBsZSBub25jZQ=="
        const ws = await open(side, "/headers?q=1", {
          "sec-websocket-key": clientKey,
          "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
          "sec-websocket-protocol": "chat, chat.v2",
          "x-custom": "hello"
        })
        const origin = await side.origin.connection("/headers")
        const seen = origin.request
        const value = (name: string): string | undefined => seen.headers.find(([n]) => n === name)?.[1]
        const host = value("host")
        const result = {
          origin: {
            requestLine: seen.requestLine,
            // Names only: Grip-Sig and Sec-WebSocket-Key are volatile, Grip-Feature lists each implementation's own features.
            headerNames: [...new Set(seen.headers.map(([name]) => name))].sort(),
            host: host === `127.0.0.1:${side.port}` ? "the client's Host" : host,
            upgrade: value("upgrade")?.toLowerCase(),
            connection: value("connection")?.toLowerCase(),
            version: value("sec-websocket-version"),
            extensions: value("sec-websocket-extensions"),
            protocol: value("sec-websocket-protocol"),
            custom: value("x-custom"),
            forwardedFor: value("x-forwarded-for"),
            keyIsValid: Buffer.from(value("sec-websocket-key") ?? "", "base64").length === 16,
            gripSig: describeGripSig(value("grip-sig"))
          },
          client: {
            status: ws.head.status,
            headerNames: [...new Set(ws.head.headers.map(([name]) => name))].filter((name) => name !== "date").sort(),
            acceptIsRight: headerOf(ws.head, "sec-websocket-accept") === expectedAccept(clientKey),
            protocol: headerOf(ws.head, "sec-websocket-protocol"),
            extensions: headerOf(ws.head, "sec-websocket-extensions"),
            originHeader: headerOf(ws.head, "x-origin")
          }
        }
        ws.close(1000)
        await ws.waitEnded(3000)
        return result
      },
      {
        origin: {
          requestLine: "GET /headers?q=1",
          headerNames: [
            "connection",
            "grip-feature",
            "grip-sig",
            "host",
            "sec-websocket-extensions",
            "sec-websocket-key",
            "sec-websocket-protocol",
            "sec-websocket-version",
            "upgrade",
            "x-custom"
          ],
          host: "the client's Host",
          upgrade: "websocket",
          connection: "upgrade",
          version: "13",
          // The client's permessage-deflate is not passed on; Pushpin offers its own `grip`.
          extensions: "grip",
          protocol: "chat, chat.v2",
          custom: "hello",
          // x_forwarded_for is empty by default: none added.
          forwardedFor: undefined,
          keyIsValid: true,
          gripSig: "HS256 iss=pushpin"
        },
        client: {
          status: 101,
          headerNames: ["connection", "sec-websocket-accept", "sec-websocket-protocol", "upgrade", "x-origin"],
          acceptIsRight: true,
          protocol: "chat.v2",
          extensions: undefined,
          // The origin's own headers on its 101 are relayed.
          originHeader: "yes"
        }
      }
    )
  }, 15_000)

  test("handshake: a client's X-Forwarded-For reaches the origin as it was", async () => {
    await onBoth(
      "x-forwarded-for",
      async (side) => {
        const ws = await open(side, "/xff", { "x-forwarded-for": "192.0.2.1" })
        const origin = await side.origin.connection("/xff")
        ws.close(1000)
        await ws.waitEnded(3000)
        return origin.request.headers.filter(([name]) => name === "x-forwarded-for").map(([, value]) => value)
      },
      ["192.0.2.1"]
    )
  }, 15_000)

  test("handshake: a browser's request headers", async () => {
    const browser = {
      origin: "http://app.test",
      "user-agent": "Mozilla/5.0 (differential)",
      cookie: "session=abc; theme=dark",
      "accept-encoding": "gzip, deflate, br",
      "accept-language": "en",
      pragma: "no-cache",
      "cache-control": "no-cache",
      "sec-websocket-extensions": "permessage-deflate; client_max_window_bits"
    }
    await onBoth(
      "browser handshake",
      async (side) => {
        const ws = await open(side, "/browser", browser)
        const origin = await side.origin.connection("/browser")
        ws.close(1000)
        await ws.waitEnded(3000)
        const seen = Object.fromEntries(origin.request.headers.filter(([name]) => name in browser))
        return { seen, extensionsToClient: headerOf(ws.head, "sec-websocket-extensions") }
      },
      {
        // All as sent, but Accept-Encoding and the client's extensions.
        seen: {
          origin: "http://app.test",
          "user-agent": "Mozilla/5.0 (differential)",
          cookie: "session=abc; theme=dark",
          "accept-language": "en",
          pragma: "no-cache",
          "cache-control": "no-cache",
          "sec-websocket-extensions": "grip"
        },
        extensionsToClient: undefined
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 3. Close codes both ways, and disconnects without a close frame

  test("close: the client's 4001 \"bye\" reaches the origin and comes back", async () => {
    await onBoth(
      "client close 4001",
      async (side) => {
        const ws = await open(side, "/close-client")
        const origin = await side.origin.connection("/close-client")
        ws.close(4001, "bye")
        const clientEnded = await ws.waitEnded(3000)
        await origin.waitEnded(3000)
        return { client: closesOf(ws), clientEnded, origin: closesOf(origin), originMessages: originMessagesOf(origin) }
      },
      { client: ['close 4001 "bye"'], clientEnded: true, origin: ['close 4001 "bye"'], originMessages: [] }
    )
  }, 15_000)

  test("close: the origin's 4002 \"later\" reaches the client, whose answer reaches the origin", async () => {
    await onBoth(
      "origin close 4002",
      async (side) => {
        const ws = await open(side, "/close-origin")
        const origin = await side.origin.connection("/close-origin")
        ws.sendText("cmd:close 4002 later")
        const clientEnded = await ws.waitEnded(3000)
        await origin.waitEnded(3000)
        return { client: closesOf(ws), clientMessages: messagesOf(ws), clientEnded, origin: closesOf(origin) }
      },
      { client: ['close 4002 "later"'], clientMessages: [], clientEnded: true, origin: ['close 4002 "later"'] }
    )
  }, 15_000)

  test("close: a client close frame with no code", async () => {
    await verify(
      "client close without code",
      async (side) => {
        const ws = await open(side, "/close-empty")
        const origin = await side.origin.connection("/close-empty")
        ws.close()
        const clientEnded = await ws.waitEnded(3000)
        await origin.waitEnded(3000)
        return { client: closesOf(ws), clientEnded, origin: closesOf(origin) }
      },
      {
        // The origin gets the empty close as it was.
        alike: ({ clientEnded, origin }) => ({ clientEnded, origin }),
        expected: { clientEnded: true, origin: ['close (no code) ""'] },
        // Known difference: Pushpin answers the client with 1000; Bun's WebSocket server answers a
        // close frame itself, echoing it (RFC 6455 §5.5.1), so pushpin-ts's client gets no code.
        differ: { select: ({ client }) => client, pushpin: ['close 1000 ""'], "pushpin-ts": ['close (no code) ""'] }
      }
    )
  }, 15_000)

  test("close: the origin drops the connection without a close frame", async () => {
    await onBoth(
      "origin drops TCP",
      async (side) => {
        const ws = await open(side, "/drop-origin")
        ws.sendText("before")
        await ws.waitFor("the echo", (events) => events.some((event) => event.type === "text"))
        ws.sendText("cmd:end")
        const clientEnded = await ws.waitEnded(5000)
        if (DEBUG) console.log(`origin drops TCP — ${side.name}: the client's connection ended by ${ws.ended()}`)
        return { clientMessages: messagesOf(ws), client: closesOf(ws), clientEnded }
      },
      { clientMessages: ['text "before"'], client: [], clientEnded: true }
    )
  }, 15_000)

  test("close: the client drops the connection without a close frame", async () => {
    await onBoth(
      "client drops TCP",
      async (side) => {
        const ws = await open(side, "/drop-client")
        const origin = await side.origin.connection("/drop-client")
        ws.destroy()
        const originEnded = await origin.waitEnded(5000)
        return { origin: closesOf(origin), originEnded }
      },
      { origin: [], originEnded: true }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 4. Ping and pong

  test("ping/pong: a ping each way reaches the other end and is answered", async () => {
    await verify(
      "ping/pong",
      async (side) => {
        const ws = await open(side, "/ping")
        const origin = await side.origin.connection("/ping")
        // The client's ping; the origin answers it (as RFC 6455 asks) and so may the proxy.
        ws.ping("abc")
        await ws.waitFor("a pong", (events) => events.some((event) => event.type === "pong"))
        await origin.waitFor("the ping", (events) => events.some((event) => event.type === "ping"))
        // The origin's ping; the client answers it.
        ws.sendText("cmd:ping xyz")
        await ws.waitFor("the origin's ping", (events) => events.some((event) => event.type === "ping"))
        await origin.waitFor("the client's pong", (events) => events.some((event) => event.type === "pong"))
        // An unsolicited pong from the client.
        ws.pong("pp")
        await origin.waitFor("the unsolicited pong", (events) => events.filter((event) => event.type === "pong").length >= 2)
        // Time for a second pong to the client, if one is coming.
        await Bun.sleep(200)
        const result = {
          originPings: payloadsOf(origin, "ping"),
          clientPongs: payloadsOf(ws, "pong"),
          clientPings: payloadsOf(ws, "ping"),
          originPongs: payloadsOf(origin, "pong"),
          originMessages: originMessagesOf(origin)
        }
        ws.close(1000)
        await ws.waitEnded(3000)
        return result
      },
      {
        // Every ping arrives once and is answered. The client may get its pong twice through
        // pushpin-ts (Bun answers the ping itself and the origin's pong is relayed too): which
        // payloads, not how many.
        alike: (result) => ({
          originPings: result.originPings.length,
          clientPongPayloads: new Set(result.clientPongs).size,
          clientPings: result.clientPings.length,
          originPongs: result.originPongs.length,
          originMessages: result.originMessages
        }),
        expected: { originPings: 1, clientPongPayloads: 1, clientPings: 1, originPongs: 2, originMessages: [] },
        // Known difference: Pushpin 1.36 loses every ping/pong payload on the way through (both
        // ways); RFC 6455 wants a pong to carry its ping's payload, so pushpin-ts keeps them.
        differ: {
          select: (result) => ({ ...result, clientPongs: [...new Set(result.clientPongs)] }),
          pushpin: { originPings: [""], clientPongs: [""], clientPings: [""], originPongs: ["", ""], originMessages: [] },
          "pushpin-ts": { originPings: ["abc"], clientPongs: ["abc"], clientPings: ["xyz"], originPongs: ["xyz", "pp"], originMessages: [] }
        }
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 5. Refused upgrades

  const refusal = async (side: Side, path: string) => {
    const outcome = await upgrade({ port: side.port, path })
    if (outcome.kind !== "refused") throw new Error(`expected a refusal, got ${outcome.kind === "open" ? outcome.ws.head.status : "the connection closed"}`)
    const { head, body, ending } = outcome.answer
    return {
      status: head.status,
      reason: head.reason,
      contentType: headerOf(head, "content-type"),
      contentLength: headerOf(head, "content-length"),
      custom: headerOf(head, "x-reason"),
      body: body.length > 200 ? `${body.length} bytes` : body.toString("utf8"),
      /** The body was as long as the response said. */
      complete: ending !== "closed",
      originRequests: side.origin.requests.filter((request) => request.path === path).length
    }
  }

  test("a refused upgrade: status and body relayed", async () => {
    await verify("refusal", (side) => refusal(side, "/reject"), {
      alike: ({ status, body, complete, originRequests }) => ({ status, body, complete, originRequests }),
      expected: { status: 403, body: "go away", complete: true, originRequests: 1 },
      // Known difference: zurl hands Pushpin only the code and body of a refusal, so the reason
      // phrase and every header are lost; pushpin-ts relays them (§6.1 of the protocol notes).
      differ: {
        select: ({ reason, contentType, custom }) => ({ reason, contentType, custom }),
        pushpin: { reason: "", contentType: undefined, custom: undefined },
        "pushpin-ts": { reason: "Forbidden", contentType: "text/plain", custom: "not-you" }
      }
    })
  }, 15_000)

  test("a refused upgrade with a body over 100 000 bytes", async () => {
    const tooLarge = "Non-101 response body size exceeded limit of 100000 bytes.\n"
    await verify("big refusal", (side) => refusal(side, "/reject-big"), {
      alike: ({ status, custom, originRequests }) => ({ upgraded: status === 101, relayed: custom !== undefined, originRequests }),
      expected: { upgraded: false, relayed: false, originRequests: 1 },
      // Known difference: Pushpin 1.36 sends `403` with `Content-Length: 100000` and no body, then
      // closes (a broken response); pushpin-ts answers with Pushpin's documented 500.
      differ: {
        select: ({ status, contentLength, body, complete }) => ({ status, contentLength, body, complete }),
        pushpin: { status: 403, contentLength: "100000", body: "", complete: false },
        "pushpin-ts": { status: 500, contentLength: String(tooLarge.length), body: tooLarge, complete: true }
      }
    })
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 6. Failover and 502

  test("failover: a dead first target, a live second", async () => {
    await onBoth(
      "failover",
      async (side) => {
        const ws = await open(side, "/failover/x")
        ws.sendText("through")
        await ws.waitFor("the echo", (events) => events.some((event) => event.type === "text"))
        const origin = await side.origin.connection("/failover/x")
        ws.close(1000)
        await ws.waitEnded(3000)
        return { status: ws.head.status, client: messagesOf(ws), origin: originMessagesOf(origin) }
      },
      { status: 101, client: ['text "through"'], origin: ['text "through"'] }
    )
  }, 15_000)

  test("all targets dead: 502", async () => {
    await onBoth(
      "all dead",
      async (side) => {
        const outcome = await upgrade({ port: side.port, path: "/dead/x" })
        if (outcome.kind !== "refused") throw new Error(`expected a refusal, got ${outcome.kind}`)
        return { status: outcome.answer.head.status, reason: outcome.answer.head.reason, body: outcome.answer.body.toString("utf8") }
      },
      { status: 502, reason: "Bad Gateway", body: "Error while proxying to origin.\n" }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 7. Invalid upgrade requests

  test("an invalid upgrade request never reaches the origin", async () => {
    const text = 'Request contained an Upgrade header with value "websocket" but the request was not a valid WebSocket request.\n'
    const variants: ReadonlyArray<Readonly<Record<string, string | null>>> = [{ "sec-websocket-key": null }, { "sec-websocket-version": "8" }]
    await verify(
      "invalid upgrade",
      async (side) => {
        const answers: Array<string> = []
        for (const headers of variants) {
          const outcome = await upgrade({ port: side.port, path: "/invalid", headers })
          if (outcome.kind === "open") outcome.ws.destroy()
          answers.push(
            outcome.kind === "closed"
              ? "closed without an answer"
              : outcome.kind === "refused"
                ? `${outcome.answer.head.status} ${outcome.answer.body.toString("utf8")}`
                : `${outcome.ws.head.status}`
          )
        }
        return { answers, originRequests: side.origin.requests.filter((request) => request.path === "/invalid").length }
      },
      {
        alike: ({ answers, originRequests }) => ({ upgraded: answers.some((answer) => answer.startsWith("101")), originRequests }),
        expected: { upgraded: false, originRequests: 0 },
        // Known difference: condure (Pushpin 1.36) drops the connection without a word; pushpin-ts
        // answers 400 with the text Pushpin has for it.
        differ: {
          select: ({ answers }) => answers,
          pushpin: ["closed without an answer", "closed without an answer"],
          "pushpin-ts": [`400 ${text}`, `400 ${text}`]
        }
      }
    )
  }, 15_000)

  // -------------------------------------------------------------------------------------------
  // 8. GRIP over WebSocket

  test("GRIP: control messages, the m: prefix, publishes and a publish that closes", async () => {
    await onBoth(
      "grip",
      async (side) => {
        const ws = await open(side, "/grip")
        const origin = await side.origin.connection("/grip")
        ws.sendText('cmd:send c:{"type":"subscribe","channel":"room"}')
        ws.sendText("cmd:send m:hello")
        ws.sendText("cmd:send oops")
        ws.sendText("from the client")
        ws.sendBinary(Buffer.from([9, 8, 7]))
        await ws.waitFor("the echoes", (events) => events.some((event) => event.type === "binary"))
        await untilSubscribed(side, ws, "room")
        const answers = [
          await publish(side, [{ channel: "room", formats: { "ws-message": { content: "pub1" } } }]),
          await publish(side, [{ channel: "room", formats: { "ws-message": { "content-bin": Buffer.from([0, 1, 2, 255]).toString("base64") } } }])
        ]
        await ws.waitFor("the binary publish", (events) => events.filter((event) => event.type === "binary").length >= 2)
        answers.push(await publish(side, [{ channel: "room", formats: { "ws-message": { action: "close", code: 4100 } } }]))
        const clientEnded = await ws.waitEnded(5000)
        await origin.waitEnded(5000)
        return {
          extensionsToClient: headerOf(ws.head, "sec-websocket-extensions"),
          answers,
          client: withoutProbes(messagesOf(ws)),
          clientCloses: closesOf(ws),
          clientEnded,
          origin: originMessagesOf(origin),
          originCloses: closesOf(origin)
        }
      },
      {
        extensionsToClient: undefined,
        answers: ["200 Published", "200 Published", "200 Published"],
        // `m:hello` without its prefix, `oops` dropped, the client's message echoed with `m:`.
        client: ['text "hello"', 'text "from the client"', "binary 3 bytes 090807", 'text "pub1"', "binary 4 bytes 000102ff"],
        clientCloses: ['close 4100 ""'],
        clientEnded: true,
        origin: ['text "from the client"', "binary 3 bytes 090807"],
        // The client's answer to the 4100 is not passed on: the origin gets an empty close.
        originCloses: ['close (no code) ""']
      }
    )
  }, 20_000)

  // -------------------------------------------------------------------------------------------
  // 9. Implicit subscription (target option sub=)

  test("sub=: a publish to the target's channel reaches a GRIP connection", async () => {
    await onBoth(
      "sub=",
      async (side) => {
        const ws = await open(side, "/implicit/grip")
        const origin = await side.origin.connection("/implicit/grip")
        await untilSubscribed(side, ws, "implicit")
        const answer = await publish(side, [{ channel: "implicit", formats: { "ws-message": { content: "pub2" } } }])
        await ws.waitFor("pub2", (events) => events.some((event) => event.type === "text" && event.data === "pub2"))
        ws.sendText("still here")
        await ws.waitFor("the echo", (events) => events.some((event) => event.type === "text" && event.data === "still here"))
        ws.close(1000)
        await ws.waitEnded(3000)
        return { answer, client: withoutProbes(messagesOf(ws)), origin: originMessagesOf(origin) }
      },
      { answer: "200 Published", client: ['text "pub2"', 'text "still here"'], origin: ['text "still here"'] }
    )
  }, 20_000)

  test("sub=: an origin that does not take up GRIP still gets the target's publishes", async () => {
    await onBoth(
      "sub= without grip",
      async (side) => {
        const ws = await open(side, "/implicit/plain")
        const origin = await side.origin.connection("/implicit/plain")
        await untilSubscribed(side, ws, "implicit")
        const answer = await publish(side, [{ channel: "implicit", formats: { "ws-message": { content: "pub3" } } }])
        await ws.waitFor("pub3", (events) => events.some((event) => event.type === "text" && event.data === "pub3"))
        ws.sendText("plain echo")
        ws.sendText("cmd:send m:prefixed")
        await origin.waitFor("both", (events) => events.some((event) => event.type === "text" && event.data === "cmd:send m:prefixed"))
        await Bun.sleep(300)
        ws.close(1000)
        await ws.waitEnded(3000)
        return { answer, extensions: origin.request.headers.find(([name]) => name === "sec-websocket-extensions")?.[1], client: withoutProbes(messagesOf(ws)), origin: originMessagesOf(origin) }
      },
      { answer: "200 Published", extensions: "grip", client: ['text "pub3"', 'text "plain echo"', 'text "m:prefixed"'], origin: ['text "plain echo"'] }
    )
  }, 20_000)

})
