import { describe, expect, test } from "bun:test"
import { parseDurationMs, parseWrkOutput } from "../../bench/wrk.ts"

// Captured from Debian's wrk 4.1.0 (`wrk --latency -t1 -c4 -d1s`) against an origin answering 500.
const ALL_ERRORS = `Running 1s test @ http://127.0.0.1:41325/bad
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    43.43us   89.93us   2.91ms   98.32%
    Req/Sec   104.99k    12.52k  115.00k    90.91%
  Latency Distribution
     50%   31.00us
     75%   39.00us
     90%   64.00us
     99%  188.00us
  114335 requests in 1.10s, 14.83MB read
  Non-2xx or 3xx responses: 114335
Requests/sec: 103921.16
Transfer/sec:     13.48MB
`

const WITH_SOCKET_ERRORS = `Running 10s test @ http://127.0.0.1:7999/fast
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    30.12ms   10.01ms 120.00ms   70.00%
    Req/Sec     1.00k   100.00     1.20k    60.00%
  Latency Distribution
     50%   29.65ms
     75%   35.00ms
     90%   45.00ms
     99%    1.20s
  20246 requests in 10.00s, 3.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
Requests/sec:   2024.58
Transfer/sec:    307.00KB
`

describe("parseWrkOutput", () => {
  test("reads totals, percentiles and non-2xx responses", () => {
    expect(parseWrkOutput(ALL_ERRORS)).toEqual({
      requests: 114335,
      durationS: 1.1,
      requestsPerSec: 103921.16,
      non2xx: 114335,
      socketErrors: 0,
      p50Ms: 0.031,
      p99Ms: 0.188
    })
  })

  test("adds up socket errors and reads seconds as latency units", () => {
    const result = parseWrkOutput(WITH_SOCKET_ERRORS)
    expect(result.socketErrors).toBe(5)
    expect(result.non2xx).toBe(0)
    expect(result.p50Ms).toBeCloseTo(29.65)
    expect(result.p99Ms).toBe(1200)
  })

  test("refuses output without a latency distribution", () => {
    expect(() => parseWrkOutput("unable to connect to 127.0.0.1:1 Connection refused")).toThrow("unexpected wrk output")
  })

  test.each([
    ["188.00us", 0.188],
    ["2.91ms", 2.91],
    ["1.10s", 1100],
    ["2.00m", 120_000]
  ] as const)("parseDurationMs(%p) = %p", (text, ms) => {
    expect(parseDurationMs(text)).toBeCloseTo(ms)
  })

  test("parseDurationMs without a unit is NaN", () => {
    expect(parseDurationMs("12")).toBeNaN()
  })
})
