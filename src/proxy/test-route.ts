/**
 * Pushpin's built-in `test` target: lets a new user curl the proxy before they have an origin.
 */
const TEXT = { "content-type": "text/plain" }

export const handleTestRoute = (method: string, path: string): Response => {
  if (path === "/" && (method === "GET" || method === "HEAD")) {
    return new Response("Hello from the Pushpin test handler!\n", { status: 200, headers: TEXT })
  }
  if (path === "/response" || path === "/stream") {
    return new Response(
      `Not Implemented: the test route's ${path} needs GRIP holds, which this pushpin-ts build does not support yet.\n`,
      { status: 501, headers: TEXT }
    )
  }
  return new Response("no such test resource\n", { status: 404, headers: TEXT })
}
