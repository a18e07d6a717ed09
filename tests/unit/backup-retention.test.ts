import { describe, expect, it } from 'vitest';
import { setsToKeep } from '../../shared/backup/retention.ts';

/** Sets named by their time, e.g. '2026-12-04T03:00Z'. */
const sets = (...times: string[]) => times.map((t) => ({ file: t, createdAt: new Date(t), verified: false }));
const keep = (list: ReturnType<typeof sets>, now: string, keepDaily = 7, keepWeekly = 4, timeZone = 'UTC') =>
  [...setsToKeep(list, { keepDaily, keepWeekly, now: new Date(now), timeZone })].sort();

describe('backup retention', () => {
  it('keeps the newest set of each of the last 7 days and of each of the last 4 weeks', () => {
    // Daily sets at 03:00 from Sunday 2026-11-01 to Friday 2026-12-04, plus a second one on 12-04.
    const days: string[] = [];
    for (let d = new Date('2026-11-01T03:00:00Z'); d <= new Date('2026-12-04T03:00:00Z'); d = new Date(d.getTime() + 86_400_000)) days.push(d.toISOString());
    days.push('2026-12-04T15:00:00.000Z');
    const kept = keep(sets(...days), '2026-12-04T16:00:00Z');
    expect(kept).toEqual([
      // The newest of each of four weeks (Monday to Sunday): this week's is today's newest.
      '2026-11-15T03:00:00.000Z',
      '2026-11-22T03:00:00.000Z',
      // Daily: 11-28 … 12-04 (today's newest only); 11-29 is also last week's newest.
      '2026-11-28T03:00:00.000Z',
      '2026-11-29T03:00:00.000Z',
      '2026-11-30T03:00:00.000Z',
      '2026-12-01T03:00:00.000Z',
      '2026-12-02T03:00:00.000Z',
      '2026-12-03T03:00:00.000Z',
      '2026-12-04T15:00:00.000Z',
    ]);
  });

  it('never prunes the newest verified set, and keeps sets dated after now', () => {
    const list = sets('2026-01-05T03:00:00Z', '2026-02-05T03:00:00Z', '2026-12-05T03:00:00Z');
    list[0]!.verified = true;
    expect(keep(list, '2026-12-04T12:00:00Z')).toEqual(['2026-01-05T03:00:00Z', '2026-12-05T03:00:00Z']);
    list[1]!.verified = true;
    expect(keep(list, '2026-12-04T12:00:00Z')).toEqual(['2026-02-05T03:00:00Z', '2026-12-05T03:00:00Z']);
  });

  it('counts days in the schedule time zone', () => {
    // 23:30 UTC on 12-03 is already 12-04 in Berlin: one day with two sets there, two days in UTC.
    const list = sets('2026-12-03T23:30:00Z', '2026-12-03T12:00:00Z');
    expect(keep(list, '2026-12-04T12:00:00Z', 1, 0, 'UTC')).toEqual([]);
    expect(keep(list, '2026-12-04T12:00:00Z', 2, 0, 'UTC')).toEqual(['2026-12-03T23:30:00Z']);
    expect(keep(list, '2026-12-04T12:00:00Z', 1, 0, 'Europe/Berlin')).toEqual(['2026-12-03T23:30:00Z']);
    expect(keep(list, '2026-12-04T12:00:00Z', 2, 0, 'Europe/Berlin')).toEqual(['2026-12-03T12:00:00Z', '2026-12-03T23:30:00Z']);
  });

  it('keeps nothing but the newest verified set with zero daily and weekly', () => {
    expect(keep(sets('2026-12-04T01:00:00Z', '2026-12-04T02:00:00Z'), '2026-12-04T12:00:00Z', 0, 0)).toEqual([]);
  });
});
