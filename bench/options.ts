/** The benchmark's command line (pure, so it is testable). */

export interface BenchOptions {
  readonly quick: boolean
  readonly repeat: number
  /** Scenario ids or numbers to run; empty = all. */
  readonly only: ReadonlyArray<string>
  /** Rebuild ./pushpin-ts even when it exists. */
  readonly build: boolean
  readonly out: string
  /** Run pushpin-ts from source under Bun's CPU profiler (profiles next to the results). */
  readonly cpuProf: boolean
  readonly help: boolean
}

export class BadOption extends Error {
  readonly _tag = "BadOption"
}

export const DEFAULT_REPEAT = 3
/** `--quick` is for development: one repeat unless --repeat says otherwise. */
export const QUICK_REPEAT = 1
export const DEFAULT_OUT = "bench/results/latest.json"

export const USAGE = `Usage: npm run bench -- [options]     (or: bun bench/run.ts [options])

  --quick          small counts and short runs (1 000 streams, 3 s wrk), one repeat: a couple of minutes
  --repeat N       measurements per scenario and server (default ${DEFAULT_REPEAT}; ${QUICK_REPEAT} with --quick)
  --only LIST      scenarios to run, by number or id, comma-separated or repeated
                   (e.g. --only 1,fanout-latency)
  --build          rebuild ./pushpin-ts first (it is built anyway when missing)
  --out FILE       where the JSON results go (default ${DEFAULT_OUT})
  --cpu-prof       run pushpin-ts from src/ under \`bun --cpu-prof\` and write a profile of each of its
                   measurements (.cpuprofile and Markdown) to profiles/ next to the results
  --help           this text
`

export const parseOptions = (argv: ReadonlyArray<string>): BenchOptions => {
  let quick = false
  let repeat: number | undefined
  const only: Array<string> = []
  let build = false
  let out = DEFAULT_OUT
  let cpuProf = false
  let help = false
  const valueOf = (index: number, flag: string): string => {
    const value = argv[index + 1]
    if (value === undefined || value.startsWith("--")) throw new BadOption(`${flag} needs a value`)
    return value
  }
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? ""
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined]
    const take = (): string => {
      if (inline !== undefined) return inline
      const value = valueOf(index, flag)
      index++
      return value
    }
    switch (flag) {
      case "--quick":
        quick = true
        break
      case "--repeat": {
        const text = take()
        const value = Number(text)
        if (!Number.isInteger(value) || value < 1) throw new BadOption(`--repeat needs a positive whole number, not ${JSON.stringify(text)}`)
        repeat = value
        break
      }
      case "--only":
        only.push(...take().split(",").map((name) => name.trim()).filter((name) => name.length > 0))
        break
      case "--build":
        build = true
        break
      case "--out":
        out = take()
        break
      case "--cpu-prof":
        cpuProf = true
        break
      case "--help":
      case "-h":
        help = true
        break
      default:
        throw new BadOption(`unknown option ${JSON.stringify(arg)}`)
    }
  }
  return { quick, repeat: repeat ?? (quick ? QUICK_REPEAT : DEFAULT_REPEAT), only, build, out, cpuProf, help }
}
