/**
 * Pushpin's built-in `test` target: lets a new user curl the proxy and publish to it before they
 * have an origin. `/response` and `/stream` answer with GRIP instructions, so the handler holds
 * them like any origin's: a long-poll, or a stream opened with "[stream opened]".
 */
import type { Route } from "../config/types.ts"

export type TestRouteAnswer =
  | { readonly _tag: "Text"; readonly status: number; readonly body: string }
  | { readonly _tag: "Hold"; readonly headers: Headers; readonly body: Uint8Array<ArrayBuffer> }

/** Channels come from `?channel=` (repeatable), default `test`, as Pushpin's test handler. */
const channelsOf = (search: string): string => {
  const requested = new URLSearchParams(search).getAll("channel").filter((name) => name.length > 0)
  return (requested.length > 0 ? requested : ["test"]).join(", ")
}

export const answerTestRoute = (method: string, path: string, search: string): TestRouteAnswer => {
  if (path === "/" && (method === "GET" || method === "HEAD")) {
    return { _tag: "Text", status: 200, body: "Hello from the Pushpin test handler!\n" }
  }
  if (path === "/response" || path === "/stream") {
    const stream = path === "/stream"
    return {
      _tag: "Hold",
      headers: new Headers({ "content-type": "text/plain", "grip-hold": stream ? "stream" : "response", "grip-channel": channelsOf(search) }),
      body: new TextEncoder().encode(stream ? "[stream opened]\n" : "")
    }
  }
  return { _tag: "Text", status: 404, body: "no such test resource\n" }
}

/** The path the test handler sees: a route's `path_beg` prefix (other than "/") is taken off. */
export const testRoutePath = (route: Pick<Route, "pathBeg">, path: string): string =>
  route.pathBeg.length > 1 && path.startsWith(route.pathBeg) ? `/${path.slice(route.pathBeg.length).replace(/^\//, "")}` : path
