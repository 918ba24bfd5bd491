/**
 * Builds the single executable `./pushpin-ts` with `bun build --compile`.
 * Bun can print an error (e.g. "Failed to generate bytecode") and still exit 0, so any output
 * on stderr that looks like an error fails the build.
 */
import { $ } from "bun"

const outfile = process.env.PUSHPIN_TS_OUTFILE ?? "./pushpin-ts"
const started = performance.now()
const result = await $`${process.execPath} build --compile --minify --sourcemap --bytecode --format=esm ./src/main.ts --outfile ${outfile}`
  .nothrow()
  .quiet()
const stderr = result.stderr.toString()
const stdout = result.stdout.toString()
if (result.exitCode !== 0 || /\berror\b/i.test(stderr)) {
  process.stderr.write(stdout + stderr)
  process.stderr.write(`build failed (exit ${result.exitCode})\n`)
  process.exit(1)
}
process.stdout.write(`built ${outfile} in ${Math.round(performance.now() - started)} ms\n`)
