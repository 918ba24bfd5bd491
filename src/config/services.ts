/**
 * Legacy `[runner] services=` lists from every Pushpin generation, explained in terms of what
 * pushpin-ts runs (always all of it, in one process).
 */

export interface ServiceMapping {
  /** One line for the startup log: how `services=` maps onto the built-in parts. */
  readonly mapped: string
  /** Extra explanations (a part the file did not list still runs). */
  readonly notes: ReadonlyArray<string>
  /** Names pushpin-ts does not know. */
  readonly warnings: ReadonlyArray<string>
}

const SERVICE_PARTS: ReadonlyMap<string, "connmgr" | "proxy" | "handler" | "origin client"> = new Map([
  ["connmgr", "connmgr"],
  ["condure", "connmgr"],
  ["mongrel2", "connmgr"],
  ["m2adapter", "connmgr"],
  ["zurl", "origin client"],
  ["proxy", "proxy"],
  ["pushpin-proxy", "proxy"],
  ["handler", "handler"],
  ["pushpin-handler", "handler"]
] as const)

/** Explains `[runner] services` in terms of what pushpin-ts runs (always all of it, in-process). */
export const mapServices = (services: ReadonlyArray<string>): ServiceMapping => {
  const sentences: Array<string> = []
  const warnings: Array<string> = []
  const covered = new Set<string>()
  const has = (name: string) => services.includes(name)
  for (const name of services) {
    const part = SERVICE_PARTS.get(name)
    if (part === undefined) {
      warnings.push(`unknown service ${name}; ignored`)
      continue
    }
    covered.add(part)
    if (name === "mongrel2" || name === "m2adapter") {
      const pair = has("mongrel2") && has("m2adapter")
      if (pair && name === "m2adapter") continue
      sentences.push(`${pair ? "mongrel2+m2adapter" : name} → built-in connmgr (Mongrel2 front end replaced)`)
    } else {
      sentences.push(`${name} → built-in ${part}`)
    }
  }
  const notes = (["connmgr", "proxy", "handler"] as const)
    .filter((part) => !covered.has(part))
    .map((part) => `${part} is not listed in services; pushpin-ts runs its built-in ${part} anyway`)
  const mapped = sentences.length === 0 ? "no services listed → built-in connmgr, proxy and handler" : sentences.join("; ")
  return { mapped, notes, warnings }
}
