/**
 * Legacy `[runner] services=` lists from every Pushpin generation, explained in terms of what
 * pushpin-ts runs (always all of it, in one process), and the list Pushpin 1.40+ spells.
 */

export interface ServiceMapping {
  /** One line for the startup log: how `services=` maps onto the built-in parts. */
  readonly mapped: string
  /** Extra explanations (a part the file did not list still runs). */
  readonly notes: ReadonlyArray<string>
  /** Names pushpin-ts does not know. */
  readonly warnings: ReadonlyArray<string>
}

type Part = "connmgr" | "proxy" | "handler" | "origin client"

/**
 * Every service name a Pushpin runner has accepted, and the part of pushpin-ts that does its job.
 * The runner of 1.40+ renames `condure`, `pushpin-proxy` and `pushpin-handler` the same way.
 */
const SERVICE_PARTS: ReadonlyMap<string, Part> = new Map<string, Part>([
  ["connmgr", "connmgr"],
  ["condure", "connmgr"],
  ["mongrel2", "connmgr"],
  ["m2adapter", "connmgr"],
  ["zurl", "origin client"],
  ["proxy", "proxy"],
  ["pushpin-proxy", "proxy"],
  ["handler", "handler"],
  ["pushpin-handler", "handler"]
])

const CORE_PARTS = ["connmgr", "proxy", "handler"] as const

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
  const notes = CORE_PARTS
    .filter((part) => !covered.has(part))
    .map((part) => `${part} is not listed in services; pushpin-ts runs its built-in ${part} anyway`)
  const mapped = sentences.length === 0 ? "no services listed → built-in connmgr, proxy and handler" : sentences.join("; ")
  return { mapped, notes, warnings }
}

/** The list Pushpin 1.40+ ships; pushpin-ts runs exactly these parts, in one process. */
export const RECOMMENDED_SERVICES: ReadonlyArray<string> = CORE_PARTS

export interface ServicesAdvice {
  /** `services=connmgr,proxy,handler`. */
  readonly line: string
  /** The file already lists exactly these three. */
  readonly current: boolean
  /** What changes from the list as written, name by name. */
  readonly changes: ReadonlyArray<string>
}

/**
 * What to write instead of a legacy list. The modern names also work in Pushpin 1.40+, so the
 * same file keeps working with either program.
 */
export const recommendServices = (services: ReadonlyArray<string>): ServicesAdvice => {
  const line = `services=${RECOMMENDED_SERVICES.join(",")}`
  const current = services.length === RECOMMENDED_SERVICES.length && RECOMMENDED_SERVICES.every((name) => services.includes(name))
  const changes: Array<string> = []
  const listed = new Set<Part>()
  const mongrel2Pair = services.includes("mongrel2") && services.includes("m2adapter")
  for (const name of services) {
    const part = SERVICE_PARTS.get(name)
    if (part !== undefined) listed.add(part)
    if (part === undefined) changes.push(`${name}: drop (not a Pushpin service)`)
    else if (part === "origin client") changes.push(`${name}: drop (connmgr makes origin requests since Pushpin 1.38; pushpin-ts makes them in-process)`)
    else if (name === "m2adapter" && mongrel2Pair) continue
    else if (name === "mongrel2" && mongrel2Pair) changes.push("mongrel2+m2adapter → connmgr")
    else if (name !== part) changes.push(`${name} → ${part}`)
  }
  for (const part of CORE_PARTS) if (!listed.has(part)) changes.push(`+ ${part}`)
  return { line, current, changes }
}
