/**
 * Time along a published policy chain. Python Links v0.15 takes the entry with the newest
 * `created_at` as a feed's head, not the last one, so `created_at` must not go backwards along
 * the chain a node publishes. Signed artifacts keep their own (signed) time; an unsigned entry
 * (a plain change, stamped by this node) takes a stamp that fits between its neighbours:
 * after the entry before it, and, where there is room, before the next signed artifact.
 */
import { formatInstant, parseDatetime } from "./datetime.ts";

const MICROS = 1_000_000n;

function toMicros(text: string): bigint {
  const t = parseDatetime(text);
  if (!t) throw new RangeError(`not a datetime: ${text}`);
  return BigInt(t.epochSeconds) * MICROS + BigInt(t.micros);
}

function fromMicros(x: bigint): string {
  let seconds = x / MICROS;
  let micros = x % MICROS;
  if (micros < 0n) {
    seconds -= 1n;
    micros += MICROS;
  }
  return formatInstant({ epochSeconds: Number(seconds), micros: Number(micros) });
}

/** Compares two accepted datetime texts by the instant they name (<0, 0, >0). */
export function compareDatetimes(a: string, b: string): number {
  const x = toMicros(a);
  const y = toMicros(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The later of the newest time so far (null: none yet) and `at`. */
export function laterOf(newest: string | null, at: string): string {
  return newest === null || compareDatetimes(at, newest) > 0 ? at : newest;
}

/** `candidate`, or one microsecond after `previous` when candidate is not later than it. */
export function stampAfter(previous: string | null, candidate: string): string {
  if (previous === null) return fromMicros(toMicros(candidate));
  const floor = toMicros(previous) + 1n;
  const own = toMicros(candidate);
  return fromMicros(own >= floor ? own : floor);
}

export interface StampedEntry {
  createdAt: string;
  /** a signed artifact: its time is part of what was signed and never changes */
  fixed: boolean;
}

/**
 * The `created_at` each entry is published with. Fixed entries keep theirs. An unsigned entry
 * keeps its own unless that is not after the entry before it (then one microsecond after it) or
 * not before the next fixed entry (then as late as leaves room for the unsigned entries between,
 * one microsecond apart). For the unsigned entries after the last fixed one this is
 * `stampAfter(previous, own)`, so a node can stamp a new plain change without reading the chain.
 */
export function publishStamps(entries: StampedEntry[]): string[] {
  const own = entries.map((e) => toMicros(e.createdAt));
  const ceiling: Array<bigint | null> = new Array(entries.length).fill(null);
  let nextFixed: bigint | null = null;
  let distance = 0n;
  for (let i = entries.length - 1; i >= 0; i--) {
    if ((entries[i] as StampedEntry).fixed) {
      nextFixed = own[i] as bigint;
      distance = 0n;
    } else {
      distance += 1n;
      ceiling[i] = nextFixed === null ? null : nextFixed - distance;
    }
  }
  const out: string[] = [];
  let previous: bigint | null = null;
  entries.forEach((e, i) => {
    let stamp = own[i] as bigint;
    if (!e.fixed) {
      const cap = ceiling[i] ?? null;
      if (cap !== null && cap < stamp) stamp = cap;
      if (previous !== null && stamp <= previous) stamp = previous + 1n;
    }
    out.push(e.fixed ? e.createdAt : fromMicros(stamp));
    previous = stamp;
  });
  return out;
}
