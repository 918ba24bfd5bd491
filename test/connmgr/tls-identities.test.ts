import { describe, expect, test } from "bun:test"
import { defaultIdentityName, scanCertsDir, serverNameOf } from "../../src/connmgr/tls-identities.ts"

describe("scanCertsDir", () => {
  test("pairs .crt with .key: default_<port> by port, host names for SNI, _.<parent> as a one-label wildcard", () => {
    const scan = scanCertsDir([
      "README",
      "default_443.crt", "default_443.key",
      "default_8443.key", "default_8443.crt",
      "www.example.com.crt", "www.example.com.key",
      "_.example.org.crt", "_.example.org.key"
    ])
    expect([...scan.defaults]).toEqual([
      [443, { name: "default_443", certFile: "default_443.crt", keyFile: "default_443.key" }],
      [8443, { name: "default_8443", certFile: "default_8443.crt", keyFile: "default_8443.key" }]
    ])
    expect(scan.sni).toEqual([
      { name: "_.example.org", certFile: "_.example.org.crt", keyFile: "_.example.org.key", serverName: "*.example.org" },
      { name: "www.example.com", certFile: "www.example.com.crt", keyFile: "www.example.com.key", serverName: "www.example.com" }
    ])
    expect(scan.ignored).toEqual([])
    expect(scan.sharedDefault).toBeUndefined()
  })

  test("default.crt/default.key is the shared default, not an SNI name", () => {
    const scan = scanCertsDir(["default.crt", "default.key", "default_443.crt", "default_443.key"])
    expect(scan.sharedDefault).toEqual({ name: "default", certFile: "default.crt", keyFile: "default.key" })
    expect([...scan.defaults.keys()]).toEqual([443])
    expect(scan.sni).toEqual([])
  })

  test("a certificate without its key, or a key without its certificate, is reported and not used", () => {
    const scan = scanCertsDir(["default_443.crt", "api.example.com.key", "a.example.com.crt", "a.example.com.pem"])
    expect(scan.defaults.size).toBe(0)
    expect(scan.sni).toEqual([])
    expect(scan.ignored).toEqual([
      { file: "a.example.com.crt", reason: "no a.example.com.key next to it" },
      { file: "api.example.com.key", reason: "no api.example.com.crt next to it" },
      { file: "default_443.crt", reason: "no default_443.key next to it" }
    ])
  })

  test("names Pushpin would never look up are reported: upper case, '*', nested wildcards, empty", () => {
    const files = ["WWW.example.com", "*.example.com", "a._.example.com", "_._.example.com", "-bad.example.com"]
      .flatMap((name) => [`${name}.crt`, `${name}.key`])
    const scan = scanCertsDir([...files, ".crt", ".key"])
    expect(scan.sni).toEqual([])
    expect(scan.ignored.map((item) => item.file)).toEqual([
      "*.example.com.crt", "-bad.example.com.crt", "WWW.example.com.crt", "_._.example.com.crt", "a._.example.com.crt"
    ])
    // "_" inside a label is a host-name character some names use; only a leading "_." label is a wildcard.
    expect(scanCertsDir(["my_host.example.com.crt", "my_host.example.com.key"]).sni.map((item) => item.serverName)).toEqual(["my_host.example.com"])
  })

  test("default_ with a leading zero or no digits is not a port's default", () => {
    const scan = scanCertsDir(["default_0443.crt", "default_0443.key", "default_.crt", "default_.key"])
    expect(scan.defaults.size).toBe(0)
    expect(scan.sni.map((item) => item.serverName)).toEqual(["default_", "default_0443"])
  })
})

describe("serverNameOf", () => {
  test.each([
    ["example.com", "example.com"],
    ["_.example.com", "*.example.com"],
    ["localhost", "localhost"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"]
  ])("%p answers to %p", (name, serverName) => {
    expect(serverNameOf(name)).toEqual({ serverName })
  })

  test("the default identity is named after the port", () => {
    expect(defaultIdentityName(8443)).toBe("default_8443")
  })
})
