/**
 * Which sets a prune keeps: the newest set of each of the last `keepDaily` days and of each of the last
 * `keepWeekly` weeks (Monday to Sunday), counted back from `now` in the schedule's time zone, and always
 * the newest verified set, whatever its age. Sets dated after `now` (a clock set back) are kept.
 */
export interface RetentionSet {
  file: string;
  createdAt: Date;
  verified: boolean;
}

export interface RetentionPolicy {
  keepDaily: number;
  keepWeekly: number;
  now: Date;
  timeZone?: string;
}

/** Days since 1970-01-01 of the calendar date `at` falls on in `timeZone`. */
function dayNumber(at: Date, timeZone: string): number {
  const [y, m, d] = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at).split('-').map(Number);
  return Math.floor(Date.UTC(y!, m! - 1, d!) / 86_400_000);
}

/** Weeks since the Monday before 1970-01-01 (a Thursday). */
const weekNumber = (day: number) => Math.floor((day + 3) / 7);

export function setsToKeep(sets: RetentionSet[], policy: RetentionPolicy): Set<string> {
  const tz = policy.timeZone ?? 'UTC';
  const today = dayNumber(policy.now, tz);
  const thisWeek = weekNumber(today);
  const newestFirst = [...sets].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.file.localeCompare(a.file));
  const keep = new Set<string>();
  const days = new Set<number>();
  const weeks = new Set<number>();
  for (const set of newestFirst) {
    if (set.createdAt.getTime() > policy.now.getTime()) {
      keep.add(set.file);
      continue;
    }
    const day = dayNumber(set.createdAt, tz);
    const week = weekNumber(day);
    if (today - day < policy.keepDaily && !days.has(day)) {
      days.add(day);
      keep.add(set.file);
    }
    if (thisWeek - week < policy.keepWeekly && !weeks.has(week)) {
      weeks.add(week);
      keep.add(set.file);
    }
  }
  const newestVerified = newestFirst.find((s) => s.verified);
  if (newestVerified) keep.add(newestVerified.file);
  return keep;
}
