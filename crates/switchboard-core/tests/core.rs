//! The core's test binary: routing properties, business hours, queue trees, roles, presence,
//! emergency numbers and locations.

mod after_hours;
mod attendance;
mod callback;
mod chat;
mod crm;
mod dashboard;
mod dialing;
mod emergency;
mod hours;
mod notice;
mod offer;
mod permissions;
mod presence;
mod queues;
mod rate;
mod routing;
mod sms;
mod throttle;
mod voice;
mod whisper;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

/// A deterministic id from a number, so failures name readable ids.
pub fn uuid(n: u64) -> Uuid {
    Uuid::from_u64_pair(0, n)
}

pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("test dates are valid")
}
