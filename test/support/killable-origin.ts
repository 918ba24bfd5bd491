/**
 * An origin in its own process, so a test can kill it mid-response (SIGKILL) and start it again
 * on the same port. Prints its port on stdout. Paths: a path ending in `/stream` sends one line and never ends,
 * anything else answers "ok".
 */
const port = Number(process.argv[2] ?? "0")
const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  idleTimeout: 0,
  fetch(request) {
    if (new URL(request.url).pathname.endsWith("/stream")) {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("first part\n"))
        }
      })
      return new Response(body, { headers: { "content-type": "text/plain" } })
    }
    return new Response("ok")
  }
})
process.stdout.write(`${server.port}\n`)
