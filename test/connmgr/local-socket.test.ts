import { expect, test } from "bun:test"
import { findAccountId } from "../../src/connmgr/local-socket.ts"

const PASSWD = [
  "root:x:0:0:root:/root:/bin/bash",
  "# a comment",
  "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
  "broken:x:notanumber:1::/:/bin/sh",
  "pushpin:x:998:997::/var/lib/pushpin:/usr/sbin/nologin",
  ""
].join("\n")

const GROUP = ["root:x:0:", "www-data:x:33:", "pushpin:x:997:alice,bob"].join("\n")

test("finds the id in the third field of /etc/passwd and /etc/group lines", () => {
  expect(findAccountId(PASSWD, "root")).toBe(0)
  expect(findAccountId(PASSWD, "pushpin")).toBe(998)
  expect(findAccountId(GROUP, "pushpin")).toBe(997)
  expect(findAccountId(GROUP, "www-data")).toBe(33)
})

test("unknown names, partial names and malformed lines give nothing", () => {
  expect(findAccountId(PASSWD, "nobody")).toBeUndefined()
  expect(findAccountId(PASSWD, "www")).toBeUndefined()
  expect(findAccountId(PASSWD, "broken")).toBeUndefined()
  expect(findAccountId(PASSWD, "")).toBeUndefined()
})
