/**
 * Operational state every service can see, created before them and released after them:
 * whether the process is stopping (readiness turns false at once, while listeners still drain)
 * and the operator endpoints (`/metrics`, `/ready`, `/live`) that the control port serves next
 * to Pushpin's publish API. The metrics service registers the endpoints once the services they
 * report on exist; the handler's control port looks them up per request.
 */
import { Context, Layer } from "effect"

export type OperatorEndpoint = (request: Request) => Response | Promise<Response>

export class Operations extends Context.Service<Operations, {
  readonly stopping: () => boolean
  readonly markStopping: () => void
  readonly register: (path: string, endpoint: OperatorEndpoint) => void
  readonly endpoint: (path: string) => OperatorEndpoint | undefined
}>()("pushpin-ts/metrics/Operations") {
  static readonly layer = Layer.sync(Operations, () => {
    let stopping = false
    const endpoints = new Map<string, OperatorEndpoint>()
    return Operations.of({
      stopping: () => stopping,
      markStopping: () => {
        stopping = true
      },
      register: (path, endpoint) => {
        endpoints.set(path, endpoint)
      },
      endpoint: (path) => endpoints.get(path)
    })
  })
}
