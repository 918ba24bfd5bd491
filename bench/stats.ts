/** Order statistics for the benchmark's samples and latencies. */

/** The value at quantile `q` (0..1) of an ascending array, nearest-rank; NaN when empty. */
const quantileSorted = (sorted: ArrayLike<number>, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil(q * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN
}

const sortedCopy = (values: Iterable<number>): Float64Array => Float64Array.from(values).sort()

export const quantile = (values: Iterable<number>, q: number): number => quantileSorted(sortedCopy(values), q)

/** The median of a few samples; with an even count, the mean of the middle two. */
export const median = (values: ReadonlyArray<number>): number => {
  const finite = values.filter((value) => Number.isFinite(value))
  if (finite.length === 0) return Number.NaN
  const sorted = [...finite].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}
