//! Conversions between stored columns and domain values, shared by both backends.
//! Every decode is checked: a value that does not parse is `StoreError::Corrupt`, never a panic.

use crate::error::StoreError;
use crate::StoreResult;
use chrono::{DateTime, Utc};
use switchboard_core::hours::{
    parse_time_zone, Closure, Holiday, HoursScope, Schedule, WeeklyPeriod,
};
use switchboard_core::{Channel, IdError, Language, Permission, PermissionSet, Presence};

pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn time(millis: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {millis}")))
}

pub fn opt_time(millis: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    millis.map(time).transpose()
}

pub fn id<T>(text: &str, parse: fn(&str) -> Result<T, IdError>) -> StoreResult<T> {
    parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn corrupt<E: std::fmt::Display>(error: E) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// Comma-joined list; the values never contain commas (they are validated tags and names).
pub fn join<T: AsRef<str>>(items: &[T]) -> String {
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').filter(|part| !part.is_empty())
}

pub fn languages(text: &str) -> StoreResult<Vec<Language>> {
    split(text)
        .map(|l| Language::parse(l).map_err(corrupt))
        .collect()
}

pub fn language_texts(languages: &[Language]) -> String {
    join(&languages.iter().map(Language::as_str).collect::<Vec<_>>())
}

pub fn permissions_text(set: PermissionSet) -> String {
    join(&set.iter().map(Permission::as_str).collect::<Vec<_>>())
}

pub fn permissions(text: &str) -> StoreResult<PermissionSet> {
    let list = split(text)
        .map(|p| Permission::parse(p).map_err(corrupt))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(PermissionSet::of(&list))
}

pub fn presence(text: &str) -> StoreResult<Presence> {
    Presence::parse(text).map_err(corrupt)
}

/// A schedule's parts as stored: time zone and three JSON arrays of their text forms.
pub struct ScheduleColumns {
    pub time_zone: String,
    pub periods: String,
    pub holidays: String,
    pub closures: String,
}

fn json_texts<T: ToString>(items: &[T]) -> String {
    serde_json::to_string(&items.iter().map(T::to_string).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn from_json_texts<T, E: std::fmt::Display>(
    text: &str,
    parse: fn(&str) -> Result<T, E>,
) -> StoreResult<Vec<T>> {
    let texts: Vec<String> = serde_json::from_str(text).map_err(corrupt)?;
    texts.iter().map(|t| parse(t).map_err(corrupt)).collect()
}

pub fn schedule_columns(schedule: &Schedule) -> ScheduleColumns {
    ScheduleColumns {
        time_zone: schedule.time_zone().name().to_owned(),
        periods: json_texts(schedule.periods()),
        holidays: json_texts(schedule.holidays()),
        closures: json_texts(schedule.closures()),
    }
}

pub fn schedule(columns: &ScheduleColumns) -> StoreResult<Schedule> {
    Schedule::new(
        parse_time_zone(&columns.time_zone).map_err(corrupt)?,
        from_json_texts(&columns.periods, WeeklyPeriod::parse)?,
        from_json_texts(&columns.holidays, Holiday::parse)?,
        from_json_texts(&columns.closures, Closure::parse)?,
    )
    .map_err(corrupt)
}

pub fn scope(
    queue: Option<&str>,
    channel: Option<&str>,
    language: Option<&str>,
) -> StoreResult<HoursScope> {
    Ok(HoursScope {
        queue: queue
            .map(|q| id(q, switchboard_core::QueueId::parse))
            .transpose()?,
        channel: channel
            .map(|c| Channel::parse(c).map_err(corrupt))
            .transpose()?,
        language: language
            .map(|l| Language::parse(l).map_err(corrupt))
            .transpose()?,
    })
}

/// Trunk source networks, comma-joined (`192.0.2.0/24,198.51.100.7`).
pub fn networks(text: &str) -> StoreResult<Vec<switchboard_core::voice::Network>> {
    split(text)
        .map(|n| switchboard_core::voice::Network::parse(n).map_err(corrupt))
        .collect()
}

pub fn networks_text(networks: &[switchboard_core::voice::Network]) -> String {
    join(&networks.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// Dial rules as JSON: `[{"prefix":"9","strip":1,"prepend":""}]`.
pub fn dial_rules(text: &str) -> StoreResult<Vec<switchboard_core::voice::DialRule>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(corrupt)?;
    values
        .iter()
        .map(|v| {
            let field = |name: &str| {
                v.get(name)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
            };
            let strip = v
                .get("strip")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            switchboard_core::voice::DialRule::new(
                field("prefix"),
                u8::try_from(strip).map_err(corrupt)?,
                field("prepend"),
            )
            .map_err(corrupt)
        })
        .collect()
}

pub fn dial_rules_text(rules: &[switchboard_core::voice::DialRule]) -> String {
    serde_json::Value::Array(
        rules
            .iter()
            .map(
                |r| serde_json::json!({"prefix": r.prefix, "strip": r.strip, "prepend": r.prepend}),
            )
            .collect(),
    )
    .to_string()
}

/// A stored non-negative count.
pub fn count(value: i32) -> StoreResult<u32> {
    u32::try_from(value).map_err(corrupt)
}
