//! Business hours: weekly periods in a time zone, holidays and one-off closures (AHD-1).
//!
//! Opening is decided on the local wall clock, so a schedule stays right across daylight
//! saving changes: "08:00-18:00" is 08:00 to 18:00 local time every day, whatever the UTC
//! offset. A period whose end is before its start crosses midnight ("fri 22:00-02:00" is open
//! from Friday 22:00 to Saturday 02:00). A holiday closes one whole local day, from 00:00 to
//! 24:00, including the part of a night period that falls on it. A closure closes an exact
//! span of time.

use crate::ids::QueueId;
use crate::queue::Channel;
use crate::text::Language;
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::fmt;

/// Limits that keep one schedule small enough to evaluate quickly.
pub const MAX_PERIODS: usize = 64;
pub const MAX_HOLIDAYS: usize = 400;
pub const MAX_CLOSURES: usize = 400;
/// How far ahead `next_open_slots` looks.
pub const SLOT_HORIZON_DAYS: i64 = 400;
const MINUTES_PER_DAY: u16 = 24 * 60;

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("`{0}` is not a period like `mon 08:00-18:00`")]
    BadPeriod(String),
    #[error("`{0}` is not a holiday like `2026-12-25` (one date) or `12-25` (every year)")]
    BadHoliday(String),
    #[error("`{0}` is not a closure like `2026-12-24T12:00:00Z/2026-12-24T18:00:00Z`")]
    BadClosure(String),
    #[error("`{0}` is not an IANA time zone name such as Europe/Paris")]
    BadTimeZone(String),
    #[error("too many {what} (at most {max})")]
    TooMany { what: &'static str, max: usize },
    #[error("slot length must be between 5 minutes and 24 hours, and at most 100 slots asked for")]
    BadSlotRequest,
}

/// One weekly opening: a weekday and a span of local minutes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WeeklyPeriod {
    day: Weekday,
    /// Minutes after local midnight, 0..1440.
    start: u16,
    /// Minutes after local midnight, 1..=1440; less than `start` when crossing midnight.
    end: u16,
}

impl WeeklyPeriod {
    /// Parses `mon 08:00-18:00`; `24:00` is accepted as an end.
    pub fn parse(text: &str) -> Result<Self, HoursError> {
        let bad = || HoursError::BadPeriod(text.chars().take(60).collect());
        let (day, span) = text.trim().split_once(' ').ok_or_else(bad)?;
        let day = parse_weekday(day).ok_or_else(bad)?;
        let (start, end) = span.trim().split_once('-').ok_or_else(bad)?;
        let start = parse_minute(start)
            .filter(|m| *m < MINUTES_PER_DAY)
            .ok_or_else(bad)?;
        let mut end = parse_minute(end).ok_or_else(bad)?;
        if end == 0 {
            end = MINUTES_PER_DAY;
        }
        if end == start {
            return Err(bad());
        }
        Ok(Self { day, start, end })
    }

    fn crosses_midnight(self) -> bool {
        self.end < self.start
    }
}

impl fmt::Display for WeeklyPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = weekday_name(self.day);
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{day} {}-{}", hm(self.start), hm(self.end))
    }
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

fn weekday_name(day: Weekday) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day.num_days_from_monday() as usize]
}

fn parse_minute(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

/// A day the center is closed: one date, or a month and day every year.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Holiday {
    Date(NaiveDate),
    Yearly { month: u32, day: u32 },
}

impl Holiday {
    /// Parses `2026-12-25` (one date) or `12-25` (every year).
    pub fn parse(text: &str) -> Result<Self, HoursError> {
        let text = text.trim();
        let bad = || HoursError::BadHoliday(text.chars().take(40).collect());
        if text.len() == 10 {
            return NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Holiday::Date)
                .map_err(|_| bad());
        }
        let (month, day) = text.split_once('-').ok_or_else(bad)?;
        let (month, day): (u32, u32) = (
            month.parse().map_err(|_| bad())?,
            day.parse().map_err(|_| bad())?,
        );
        // 2024 is a leap year, so 02-29 is accepted.
        NaiveDate::from_ymd_opt(2024, month, day).ok_or_else(bad)?;
        Ok(Holiday::Yearly { month, day })
    }

    fn covers(self, date: NaiveDate) -> bool {
        match self {
            Holiday::Date(d) => d == date,
            Holiday::Yearly { month, day } => date.month() == month && date.day() == day,
        }
    }
}

impl fmt::Display for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holiday::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Holiday::Yearly { month, day } => write!(f, "{month:02}-{day:02}"),
        }
    }
}

/// A one-off closed span of time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Closure {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Closure {
    /// Parses two RFC 3339 instants separated by `/`; the second must be later.
    pub fn parse(text: &str) -> Result<Self, HoursError> {
        let bad = || HoursError::BadClosure(text.chars().take(80).collect());
        let (from, until) = text.trim().split_once('/').ok_or_else(bad)?;
        let from = DateTime::parse_from_rfc3339(from.trim())
            .map_err(|_| bad())?
            .with_timezone(&Utc);
        let until = DateTime::parse_from_rfc3339(until.trim())
            .map_err(|_| bad())?
            .with_timezone(&Utc);
        if until <= from {
            return Err(bad());
        }
        Ok(Self { from, until })
    }
}

impl fmt::Display for Closure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.from.to_rfc3339(), self.until.to_rfc3339())
    }
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(text: &str) -> Result<Tz, HoursError> {
    text.trim()
        .parse::<Tz>()
        .map_err(|_| HoursError::BadTimeZone(text.chars().take(60).collect()))
}

/// A weekly schedule in a time zone, with holidays and closures.
#[derive(Clone, PartialEq, Debug)]
pub struct Schedule {
    time_zone: Tz,
    periods: Vec<WeeklyPeriod>,
    holidays: Vec<Holiday>,
    closures: Vec<Closure>,
}

impl Schedule {
    pub fn new(
        time_zone: Tz,
        periods: Vec<WeeklyPeriod>,
        holidays: Vec<Holiday>,
        closures: Vec<Closure>,
    ) -> Result<Self, HoursError> {
        if periods.len() > MAX_PERIODS {
            return Err(HoursError::TooMany {
                what: "periods",
                max: MAX_PERIODS,
            });
        }
        if holidays.len() > MAX_HOLIDAYS {
            return Err(HoursError::TooMany {
                what: "holidays",
                max: MAX_HOLIDAYS,
            });
        }
        if closures.len() > MAX_CLOSURES {
            return Err(HoursError::TooMany {
                what: "closures",
                max: MAX_CLOSURES,
            });
        }
        Ok(Self {
            time_zone,
            periods,
            holidays,
            closures,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub fn periods(&self) -> &[WeeklyPeriod] {
        &self.periods
    }

    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    pub fn closures(&self) -> &[Closure] {
        &self.closures
    }

    /// Whether the center is open at this instant.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        if self.closures.iter().any(|c| c.from <= at && at < c.until) {
            return false;
        }
        let local = at.with_timezone(&self.time_zone);
        let date = local.date_naive();
        if self.holidays.iter().any(|h| h.covers(date)) {
            return false;
        }
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let yesterday = date.weekday().pred();
        self.periods.iter().any(|p| {
            (p.day == date.weekday()
                && p.start <= minute
                && (p.crosses_midnight() || minute < p.end))
                || (p.day == yesterday && p.crosses_midnight() && minute < p.end)
        })
    }

    /// The open spans that overlap `[from, until)`, merged and in order. A span open at `from`
    /// starts where it really opened (possibly before `from`, at most a day before).
    pub fn open_intervals(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let tz = self.time_zone;
        let first_day = from.with_timezone(&tz).date_naive() - Duration::days(1);
        let last_day = until.with_timezone(&tz).date_naive() + Duration::days(1);
        let window_start = local_to_utc(tz, first_day.and_time(NaiveTime::MIN));
        let mut edges: Vec<DateTime<Utc>> = vec![window_start, until];
        let mut day = first_day;
        while day <= last_day {
            let midnight = day.and_time(NaiveTime::MIN);
            edges.extend(all_utc(tz, midnight));
            for p in self.periods.iter().filter(|p| p.day == day.weekday()) {
                edges.extend(all_utc(tz, midnight + Duration::minutes(p.start.into())));
                let end_day = if p.crosses_midnight() {
                    midnight + Duration::days(1)
                } else {
                    midnight
                };
                edges.extend(all_utc(tz, end_day + Duration::minutes(p.end.into())));
            }
            if let Some(transition) = offset_change(
                tz,
                local_to_utc(tz, midnight),
                local_to_utc(tz, midnight + Duration::days(1)),
            ) {
                edges.push(transition);
            }
            day += Duration::days(1);
        }
        for c in &self.closures {
            edges.push(c.from);
            edges.push(c.until);
        }
        edges.retain(|e| *e >= window_start && *e <= until);
        edges.sort();
        edges.dedup();
        let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for pair in edges.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            if !self.is_open(start) {
                continue;
            }
            match spans.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => spans.push((start, end)),
            }
        }
        // Keep spans that reach past `from`; drop the look-back part that closed before it.
        spans.retain(|(_, end)| *end > from);
        spans
    }

    /// The start times of the next `count` free slots of `slot_length` that begin at or after
    /// `from` and fit wholly inside open hours. Slots are aligned to the opening time of each
    /// open span (opening 09:00 with 30-minute slots gives 09:00, 09:30, …).
    pub fn next_open_slots(
        &self,
        from: DateTime<Utc>,
        count: usize,
        slot_length: Duration,
    ) -> Result<Vec<DateTime<Utc>>, HoursError> {
        if slot_length < Duration::minutes(5) || slot_length > Duration::hours(24) || count > 100 {
            return Err(HoursError::BadSlotRequest);
        }
        let mut slots = Vec::with_capacity(count);
        if count == 0 {
            return Ok(slots);
        }
        for horizon in [14, 62, SLOT_HORIZON_DAYS] {
            slots.clear();
            let until = from + Duration::days(horizon);
            for (open, close) in self.open_intervals(from, until) {
                let mut start = open;
                if start < from {
                    let behind = (from - start).num_milliseconds();
                    let step = slot_length.num_milliseconds();
                    start += Duration::milliseconds((behind + step - 1) / step * step);
                }
                // A span that ends at the horizon may go on past it: only count it if whole.
                while start + slot_length <= close && (close < until || start + slot_length < until)
                {
                    slots.push(start);
                    if slots.len() == count {
                        return Ok(slots);
                    }
                    start += slot_length;
                }
            }
        }
        Ok(slots)
    }
}

/// Every UTC instant that shows this local time: one normally, two in a repeated hour, and
/// for a time skipped by a clock change, the instant the clock jumped (the first valid time).
fn all_utc(tz: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        LocalResult::None => vec![local_to_utc(tz, local)],
    }
}

/// The earliest UTC instant showing this local time, or the first valid time after a gap.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // Clock changes skip at most a few hours; step forward by minutes until time is valid.
    for _ in 0..=24 * 60 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    // No zone skips a whole day of minutes; treat the wall time as UTC rather than fail.
    Utc.from_utc_datetime(&local)
}

/// The instant within `[from, until)` where the zone's UTC offset changes, if it does.
fn offset_change(tz: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
    use chrono::Offset;
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    if offset(from) == offset(until) {
        return None;
    }
    let (mut low, mut high) = (from, until);
    while high - low > Duration::seconds(1) {
        let mid = low + (high - low) / 2;
        if offset(mid) == offset(low) {
            low = mid;
        } else {
            high = mid;
        }
    }
    Some(high.with_nanosecond(0).unwrap_or(high))
}

/// What a schedule applies to. Any field left `None` matches everything.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HoursScope {
    pub queue: Option<QueueId>,
    pub channel: Option<Channel>,
    pub language: Option<Language>,
}

impl HoursScope {
    fn matches(&self, queue: QueueId, channel: Channel, language: Option<&Language>) -> bool {
        self.queue.is_none_or(|q| q == queue)
            && self.channel.is_none_or(|c| c == channel)
            && self.language.as_ref().is_none_or(|l| Some(l) == language)
    }

    /// How specific the scope is: a queue outweighs a language, which outweighs a channel.
    pub fn specificity(&self) -> u8 {
        4 * u8::from(self.queue.is_some())
            + 2 * u8::from(self.language.is_some())
            + u8::from(self.channel.is_some())
    }

    /// A stable text key for the scope, unique per combination (used for storage).
    pub fn key(&self) -> String {
        format!(
            "q={};c={};l={}",
            self.queue.map(|q| q.to_string()).unwrap_or_default(),
            self.channel.map(Channel::as_str).unwrap_or_default(),
            self.language
                .as_ref()
                .map(Language::as_str)
                .unwrap_or_default()
        )
    }
}

/// The global schedule and its overrides; the most specific match applies (AHD-1).
///
/// The entries are indexed by queue, so a lookup looks only at the queue's own entries and
/// the entries that name no queue (the hours decision runs on every contact's arrival).
#[derive(Clone, Debug, Default)]
pub struct HoursSet {
    entries: Vec<(HoursScope, Schedule)>,
    /// Entries naming a queue, by queue.
    by_queue: HashMap<QueueId, Vec<usize>>,
    /// Entries naming no queue (the global schedule, and channel or language overrides).
    unscoped: Vec<usize>,
}

impl HoursSet {
    pub fn new(entries: Vec<(HoursScope, Schedule)>) -> Self {
        let mut by_queue: HashMap<QueueId, Vec<usize>> = HashMap::new();
        let mut unscoped = Vec::new();
        for (index, (scope, _)) in entries.iter().enumerate() {
            match scope.queue {
                Some(queue) => by_queue.entry(queue).or_default().push(index),
                None => unscoped.push(index),
            }
        }
        Self {
            entries,
            by_queue,
            unscoped,
        }
    }

    /// Which entry (by position, in the order given to `new`) decides for a contact in this
    /// queue, channel and language: the most specific match, on a tie the last given; `None`
    /// when no schedule applies.
    pub fn entry_for(
        &self,
        queue: QueueId,
        channel: Channel,
        language: Option<&Language>,
    ) -> Option<usize> {
        let own = self.by_queue.get(&queue).map_or(&[][..], Vec::as_slice);
        let mut best: Option<(u8, usize)> = None;
        for &index in own.iter().chain(&self.unscoped) {
            let scope = &self.entries[index].0;
            if !scope.matches(queue, channel, language) {
                continue;
            }
            let weight = scope.specificity();
            if best.is_none_or(|(w, i)| weight > w || (weight == w && index > i)) {
                best = Some((weight, index));
            }
        }
        best.map(|(_, index)| index)
    }

    /// The schedule for a contact in this queue, channel and language; `None` when no
    /// schedule applies (the center is then always open).
    pub fn schedule_for(
        &self,
        queue: QueueId,
        channel: Channel,
        language: Option<&Language>,
    ) -> Option<&Schedule> {
        self.entry_for(queue, channel, language)
            .map(|index| &self.entries[index].1)
    }

    /// Whether the queue is open for this contact at `at`.
    pub fn is_open(
        &self,
        queue: QueueId,
        channel: Channel,
        language: Option<&Language>,
        at: DateTime<Utc>,
    ) -> bool {
        self.schedule_for(queue, channel, language)
            .is_none_or(|s| s.is_open(at))
    }
}
