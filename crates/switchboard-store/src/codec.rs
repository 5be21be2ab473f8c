//! Conversions between stored columns and domain values that every area uses (times, ids,
//! comma-joined lists, permissions, presence), shared by both backends. Conversions only one
//! area needs live in that area's file (schedules in `directory.rs`, trunks in `voice.rs`).
//! Every decode is checked: a value that does not parse is `StoreError::Corrupt`, never a panic.

use crate::error::StoreError;
use crate::StoreResult;
use chrono::{DateTime, Utc};
use switchboard_core::{IdError, Language, Permission, PermissionSet, Presence};

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

pub fn split(text: &str) -> impl Iterator<Item = &str> {
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

/// A stored non-negative count.
pub fn count(value: i32) -> StoreResult<u32> {
    u32::try_from(value).map_err(corrupt)
}
