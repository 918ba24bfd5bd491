/**
 * What a held session may ask of the origin after the hand-off. The proxy builds one per
 * GRIP hand-off (it alone knows routes, targets and signing); the handler only calls it, so the
 * two services stay one-way dependent, as Pushpin's handler talks back to its proxy through
 * "retry" packets and internal requests.
 */

/** `Grip-Last: <channel>; last-id=<id>` sent so the origin can return what the client missed. */
export type LastId = readonly [channel: string, id: string]

export interface LinkRequest {
  readonly method: "GET" | "POST"
  /** Absolute URI, already resolved against the request it came from. */
  readonly uri: string
  readonly lastIds: ReadonlyArray<LastId>
  readonly signal: AbortSignal
}

export interface SessionOrigin {
  /** The client's URI as received; next links resolve against it. */
  readonly requestUri: string
  /**
   * Sends the client's original request to the origin again with `Grip-Last` ids. The answer
   * goes through GRIP inspection like the first one, so it is what the client should get.
   */
  readonly retry: (lastIds: ReadonlyArray<LastId>) => Promise<Response>
  /** Requests a next or gone link; rejects when no origin could be reached. */
  readonly fetchLink: (link: LinkRequest) => Promise<Response>
}
