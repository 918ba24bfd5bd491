/**
 * The measuring apparatus's own ceiling for the held-stream scenarios (a child process): the
 * least a server can do for them, with no proxy, GRIP or safety in it. `Bun.listen` answers
 * every request on the HTTP port with a chunked stream opened by "[stream opened]" and keeps
 * the socket under the `channel` of its query; `POST /publish/` on the publish port writes each
 * `http-stream` item's content to that channel's sockets in one loop, joining what one turn of
 * the event loop writes to a socket into one write.
 *
 * Whatever latency or rate the same clients measure against this is the part that belongs to
 * the clients, the kernel and the shared cores rather than to the server under test.
 *
 * Reports `{"type":"listening","httpPort":N,"publishPort":M}` on stdout.
 */
import { report } from "./child-side.ts"

interface Publish {
  readonly items: ReadonlyArray<{ readonly channel: string; readonly formats: { readonly "http-stream"?: { readonly content: string } } }>
}

type HeldSocket = { write(data: string): number }
const channels = new Map<string, Set<HeldSocket>>()

// What one turn of the event loop writes to a socket goes out as one write, as pushpin-ts
// and Pushpin both do; without it this would not be the least a server can do.
const pendingWrites = new Map<HeldSocket, string>()
const flushWrites = () => {
  for (const [socket, data] of pendingWrites) socket.write(data)
  pendingWrites.clear()
}
const queueWrite = (socket: HeldSocket, data: string) => {
  if (pendingWrites.size === 0) setImmediate(flushWrites)
  pendingWrites.set(socket, (pendingWrites.get(socket) ?? "") + data)
}

const chunk = (text: string): string => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`
const STREAM_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"

const listener = Bun.listen<{ head: string; channel: string | undefined }>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(socket) {
      socket.data = { head: "", channel: undefined }
    },
    data(socket, data) {
      if (socket.data.channel !== undefined) return
      socket.data.head += data.toString("latin1")
      if (!socket.data.head.includes("\r\n\r\n")) return
      const target = /^GET (\S+)/.exec(socket.data.head)?.[1] ?? "/"
      const channel = new URL(target, "http://bare").searchParams.get("channel") ?? "test"
      socket.data.channel = channel
      let members = channels.get(channel)
      if (members === undefined) {
        members = new Set()
        channels.set(channel, members)
      }
      members.add(socket)
      socket.write(STREAM_HEAD + chunk("[stream opened]\n"))
    },
    close(socket) {
      if (socket.data.channel !== undefined) channels.get(socket.data.channel)?.delete(socket)
    }
  }
})

const publishServer = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    if (request.method !== "POST") return new Response("bare fan-out\n")
    const body = (await request.json()) as Publish
    for (const item of body.items) {
      const content = item.formats["http-stream"]?.content
      if (content === undefined) continue
      const framed = chunk(content)
      for (const socket of channels.get(item.channel) ?? []) queueWrite(socket, framed)
    }
    return new Response("Published\n")
  }
})

report({ type: "listening", httpPort: listener.port, publishPort: publishServer.port ?? 0 })
