/**
 * The one pushpin.conf both servers are benchmarked with.
 *
 * `renderPushpinConf` is called once per server start, for pushpin-ts and for Pushpin alike,
 * so both read a file of the same shape with the same values; only the ports and the temp dir
 * differ between starts. It is Debian's /etc/pushpin/pushpin.conf for 1.36 with these changes:
 *
 * - private paths (rundir, logdir, routes, ipc sockets) inside the run's temp dir, and fresh
 *   loopback ports for every listener, so nothing system-wide is touched;
 * - `[handler] message_rate=0` and `message_hwm=0`: delivery rate limiting off (both treat a
 *   value ≤ 0 as "no limit"), so fan-out numbers measure delivery, not Debian's 2500/s cap;
 * - zurl's request/response sockets (`zurl_*_specs`) point at a zurl started privately for
 *   Pushpin; pushpin-ts accepts these wiring keys and has no use for them.
 *
 * Everything else keeps Debian's values, including `client_maxconn=50000`,
 * `client_buffer_size=8192` and `log_level=2` (both write one access-log line per request to a
 * file in the temp dir).
 */

import {
  debianPushpinConf,
  debianZurlConf,
  type IniSections,
  privateZurlSpecs,
  renderIni,
  withOverrides
} from "../test/support/debian-config.ts"

export { renderIni, type IniSections }

export interface BenchPorts {
  readonly http: number
  readonly publish: number
  readonly pushIn: number
  readonly pushInSub: number
  readonly command: number
}

export interface ConfPaths {
  /** The temp dir of one server start (holds run/, log/, routes). */
  readonly dir: string
  /** Pushpin's internal.conf, when installed (pushpin-ts treats a missing include as empty). */
  readonly internalConf: string
  readonly condureBin: string
  readonly zurlBin: string
}

/** The keys this benchmark changes from Debian's defaults, listed in the README and results. */
export const BENCH_OVERRIDES = {
  handler: { message_rate: "0", message_hwm: "0" }
} as const

/** Debian's values for the keys that size connections, reported next to the results. */
export const SHARED_LIMITS = {
  runner: { client_maxconn: "50000", client_buffer_size: "8192", log_level: "2" }
} as const

export const zurlSpecs = (dir: string) => privateZurlSpecs(`${dir}/run`)

export const pushpinConfSections = (ports: BenchPorts, paths: ConfPaths): IniSections =>
  withOverrides(
    debianPushpinConf(ports, {
      runDir: `${paths.dir}/run`,
      logDir: `${paths.dir}/log`,
      routesFile: `${paths.dir}/routes`,
      internalConf: paths.internalConf,
      condureBin: paths.condureBin,
      zurlBin: paths.zurlBin
    }),
    { ...SHARED_LIMITS, ...BENCH_OVERRIDES }
  )

/** zurl as Debian configures it, on private sockets and with an empty deny list. */
export const zurlConfSections = (dir: string): IniSections => debianZurlConf(`${dir}/run`)

/** Host names the routes file gives to the built-in test handler (held streams, readiness). */
export const HOLD_HOST = "hold.bench"
export const READY_HOST = "ready.bench"

/** Every scenario uses the same routes: the test handler by Host, everything else to the origin. */
export const routesFile = (originPort: number): string =>
  [`${HOLD_HOST} test`, `${READY_HOST} test`, `* 127.0.0.1:${originPort}`].join("\n") + "\n"
