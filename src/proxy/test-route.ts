/**
 * Pushpin's built-in `test` target: lets a new user curl the proxy before they have an origin.
 */
export interface TestRouteAnswer {
  readonly status: number
  readonly body: string
}

export const answerTestRoute = (method: string, path: string): TestRouteAnswer => {
  if (path === "/" && (method === "GET" || method === "HEAD")) {
    return { status: 200, body: "Hello from the Pushpin test handler!\n" }
  }
  if (path === "/response" || path === "/stream") {
    return {
      status: 501,
      body: `Not Implemented: the test route's ${path} needs GRIP holds, which this pushpin-ts build does not support yet.\n`
    }
  }
  return { status: 404, body: "no such test resource\n" }
}
