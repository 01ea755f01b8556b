// How figures read on the dashboard: money, counts, durations and times, all in the
// browser's locale; a missing value is a dash.

const DASH = "—";
const counts = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/** "$5.00", "$0.50", "$0.0023": cents always, and under a dollar up to four places when
 * they say something (a budget of half a dollar is "$0.50", not "$0.5000"). */
export function money(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return DASH;
  const size = Math.abs(usd);
  if (usd === 0 || size >= 1) return `$${usd.toFixed(2)}`;
  if (size >= 0.01) {
    return `$${usd.toFixed(4).replace(/(\.\d\d\d?)0+$/, "$1").replace(/(\.\d\d)0$/, "$1")}`;
  }
  // Under a cent: its first two significant digits ("$0.000012"), never "$0.00".
  const places = Math.min(12, Math.ceil(-Math.log10(size)) + 1);
  return `$${Number(usd.toPrecision(2)).toFixed(places)}`;
}

/** A spend that may hold calls of unknown cost (a model with no price): "unpriced" when
 * nothing priced was spent, "$1.20 + 3 unpriced" when some calls were, else money(). */
export function spend(usd: number, unpriced: number | undefined): string {
  if (!unpriced) return money(usd);
  if (usd === 0) return "unpriced";
  return `${money(usd)} + ${count(unpriced)} unpriced`;
}

export function count(value: number | null | undefined): string {
  return value === null || value === undefined ? DASH : counts.format(value);
}

export function shortCount(value: number): string {
  return compact.format(value);
}

/** "2.35 s", "812 ms", and under 10 ms two significant digits ("0.5 ms", "2.4 ms"). */
export function milliseconds(value: number | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10 || value === 0) return `${Math.round(value)} ms`;
  return `${Number(value.toPrecision(2))} ms`;
}

export function dateTime(epoch: number | null | undefined): string {
  if (epoch === null || epoch === undefined) return DASH;
  return new Date(epoch * 1000).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

export function orDash(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === "" ? DASH : String(value);
}

/** ``YYYY-MM-DD`` of a Date in local time (what ``<input type=date>`` holds). */
export function isoDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function daysAgo(days: number): string {
  const date = new Date();
  date.setDate(date.getDate() - days);
  return isoDay(date);
}

/** A limit as the tables show it: "60 rpm", or a dash for none. */
export function limit(value: number | null, unit: string): string {
  return value === null ? DASH : `${counts.format(value)} ${unit}`;
}

/**
 * A range of whole local days (``YYYY-MM-DD`` from date inputs, both ends included) as
 * RFC 3339 instants: from the first day's local midnight to the midnight after the last.
 * Sending instants keeps the server from guessing a time zone or whether ``to`` is inclusive.
 */
export function dayRange(fromDay: string, toDay: string): { from?: string; to?: string } {
  const midnight = (day: string, plusDays: number) => {
    const [year, month, date] = day.split("-").map(Number);
    return new Date(year, month - 1, date + plusDays).toISOString();
  };
  return {
    from: fromDay ? midnight(fromDay, 0) : undefined,
    to: toDay ? midnight(toDay, 1) : undefined,
  };
}

/** How a key is recognised without its secret: its first characters, as its owner sees them. */
export function keyStart(prefix: string): string {
  return `mw-${prefix}…`;
}
