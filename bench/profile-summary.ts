/**
 * Summarises a `.cpuprofile` (as written by `npm run bench -- --cpu-prof`) by sample counts:
 * the functions most samples were in (self) and under (inclusive).
 *
 *   bun bench/profile-summary.ts bench/results/profiles/proxy-throughput-1.cpuprofile [--top 25]
 *
 * Counts, not Bun's time deltas: the profiler takes no samples while the process is idle and
 * charges the whole idle gap to the next sample, so a function that ran once after a pause can
 * show seconds of "self time". The share of samples is the share of busy time.
 */

export interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
    readonly hitCount?: number
    readonly children?: ReadonlyArray<number>
  }>
  readonly samples?: ReadonlyArray<number>
}

export interface FunctionShare {
  readonly name: string
  readonly samples: number
  readonly percent: number
}

export interface ProfileSummary {
  readonly samples: number
  readonly self: ReadonlyArray<FunctionShare>
  readonly inclusive: ReadonlyArray<FunctionShare>
}

const IDLE_FRAMES = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"])

export const summarizeProfile = (profile: CpuProfile, top: number): ProfileSummary => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const hits = new Map<number, number>()
  if (profile.samples !== undefined) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  else for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0)

  const label = (id: number): string => {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) return "?"
    const where = frame.url === "" ? "" : ` ${frame.url.replace(/^.*\/(src|node_modules)\//, "$1/")}:${frame.lineNumber + 1}`
    return `${frame.functionName === "" ? "(anonymous)" : frame.functionName}${where}`
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let total = 0
  for (const [id, count] of hits) {
    const name = byId.get(id)?.callFrame.functionName ?? ""
    if (count === 0 || IDLE_FRAMES.has(name)) continue
    total += count
    self.set(label(id), (self.get(label(id)) ?? 0) + count)
    // Each function once per stack, however deep its recursion.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frameLabel = label(at)
      if (seen.has(frameLabel) || IDLE_FRAMES.has(byId.get(at)?.callFrame.functionName ?? "")) continue
      seen.add(frameLabel)
      inclusive.set(frameLabel, (inclusive.get(frameLabel) ?? 0) + count)
    }
  }
  const rank = (counts: Map<string, number>): Array<FunctionShare> =>
    [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, samples]) => ({ name, samples, percent: total === 0 ? 0 : (samples / total) * 100 }))
  return { samples: total, self: rank(self), inclusive: rank(inclusive) }
}

if (import.meta.main) {
  const [file, ...rest] = process.argv.slice(2)
  if (file === undefined) {
    process.stderr.write("usage: bun bench/profile-summary.ts FILE.cpuprofile [--top N]\n")
    process.exit(2)
  }
  const topIndex = rest.indexOf("--top")
  const top = topIndex >= 0 ? Number(rest[topIndex + 1] ?? 25) : 25
  const summary = summarizeProfile((await Bun.file(file).json()) as CpuProfile, top)
  const lines = (title: string, shares: ReadonlyArray<FunctionShare>) => [
    `${title}`,
    ...shares.map((share) => `  ${share.percent.toFixed(1).padStart(5)}%  ${String(share.samples).padStart(6)}  ${share.name}`)
  ]
  process.stdout.write(
    [`${file}: ${summary.samples} busy samples`, ...lines("self", summary.self), ...lines("inclusive", summary.inclusive)].join("\n") + "\n"
  )
}
