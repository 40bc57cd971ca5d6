/**
 * Datetimes as Python Links writes them: UTC, microsecond precision, `Z` suffix, fraction only
 * when the microseconds are not zero. A JS Date holds milliseconds only, so the microseconds are
 * carried as their own integer.
 */

const DATETIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})?$/;

export interface Instant {
  /** whole seconds since the Unix epoch, UTC */
  readonly epochSeconds: number;
  /** 0..999999 */
  readonly micros: number;
}

/** Parses an accepted datetime text; returns null when it does not match the accepted form. */
export function parseDatetime(text: string): Instant | null {
  const m = DATETIME_RE.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number, number, number, number, number, number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59 || year < 1) return null;
  const micros = m[7] ? Number(m[7].padEnd(6, "0")) : 0;
  let offsetSeconds = 0;
  const zone = m[8];
  if (zone && zone !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return null;
    offsetSeconds = sign * (oh * 3600 + om * 60);
  }
  // setUTCFullYear, unlike Date.UTC, does not map years 0..99 to 1900..1999.
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(hour, minute, second, 0);
  const epochSeconds = local.getTime() / 1000 - offsetSeconds;
  const utcYear = new Date(epochSeconds * 1000).getUTCFullYear();
  if (utcYear < 1 || utcYear > 9999) return null;
  return { epochSeconds, micros };
}

/** Formats an instant as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`. */
export function formatInstant(t: Instant): string {
  const d = new Date(t.epochSeconds * 1000);
  const base =
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  return t.micros === 0 ? `${base}Z` : `${base}.${pad(t.micros, 6)}Z`;
}

// The canonical form itself (UTC, "Z", a fraction only when not zero): what this program and
// Python Links write, so nearly every datetime read (a claim's computed_at, an observation's
// timestamp) already has it and skips the general parse.
const CANONICAL_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{6}))?Z$/;

/** The epoch milliseconds of a valid text in canonical form (years 100 to 9999), else null. */
function canonicalMs(text: string): number | null {
  const m = CANONICAL_RE.exec(text);
  if (!m || m[7] === "000000") return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // Date.UTC maps years 0..99 to 1900..1999: those take the general path
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  return Date.UTC(year, month - 1, day, hour, minute, second) + (m[7] ? Math.floor(Number(m[7]) / 1000) : 0);
}

/** Normalizes a datetime text to the canonical form, or returns null if it is not accepted. */
export function normalizeDatetime(text: string): string | null {
  if (canonicalMs(text) !== null) return text;
  const t = parseDatetime(text);
  return t ? formatInstant(t) : null;
}

/** Milliseconds since the epoch of a datetime text already accepted by parseDatetime. */
export function datetimeToMs(text: string): number {
  const fast = canonicalMs(text);
  if (fast !== null) return fast;
  const t = parseDatetime(text);
  if (!t) throw new RangeError(`not a datetime: ${text}`);
  return t.epochSeconds * 1000 + Math.floor(t.micros / 1000);
}

/** The current time with microsecond precision (from the high-resolution clock). */
export function nowInstant(): Instant {
  const nowMicros = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
  return {
    epochSeconds: Number(nowMicros / 1_000_000n),
    micros: Number(nowMicros % 1_000_000n),
  };
}

export function nowIso(): string {
  return formatInstant(nowInstant());
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}
