//! Voice configuration and call history as data: trunks and their dial rules, dialled numbers,
//! source-address matching, the IVR's digit choices, and a call's record.

use crate::chat::{PropertyValue, ReservedProperties};
use crate::ids::{CallId, ContactId, QueueId, TrunkId, UserId};
use crate::queue::{Channel, QueueNode};
use crate::text::{Language, Name, TextError};
use chrono::{DateTime, Utc};
use std::net::IpAddr;

fn invalid(field: &'static str, detail: impl Into<String>) -> TextError {
    TextError::Invalid {
        field,
        detail: detail.into(),
    }
}

/// A phone number as dialled: digits with an optional leading `+` (1 to 32 characters).
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, TextError> {
        let digits = text.strip_prefix('+').unwrap_or(text);
        if digits.is_empty()
            || digits.len() > 32
            || !digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Err(invalid(
                field,
                "a phone number is digits (and * or #) with an optional leading +, at most 32",
            ));
        }
        Ok(PhoneNumber(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An address or network a trunk's calls come from: `192.0.2.10` or `192.0.2.0/24`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            invalid(
                "addresses",
                format!("`{text}` is not an IP address or network"),
            )
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix =
            match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                    invalid("addresses", format!("`{text}` has a bad prefix length"))
                })?,
            };
        Ok(Network { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.address, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.address.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.address)
        } else {
            write!(f, "{}/{}", self.address, self.prefix)
        }
    }
}

/// A dial rule for an outbound trunk: a number starting with `prefix` loses `strip` leading
/// characters and gains `prepend`. The first matching rule applies; no match dials as is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DialRule {
    pub prefix: String,
    pub strip: u8,
    pub prepend: String,
}

impl DialRule {
    pub fn new(prefix: &str, strip: u8, prepend: &str) -> Result<Self, TextError> {
        let ok = |s: &str| s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit() || b == b'+');
        if !ok(prefix) || !ok(prepend) || usize::from(strip) > 32 {
            return Err(invalid(
                "dial_rules",
                "prefix and prepend are up to 32 digits (or +); strip at most 32",
            ));
        }
        Ok(DialRule {
            prefix: prefix.into(),
            strip,
            prepend: prepend.into(),
        })
    }
}

/// The number to send to the carrier for `number` under `rules`. Short codes of three digits
/// or fewer (911, 112, 999, 411) are sent as dialled: an outside-line prefix rule must never
/// turn 911 into 11.
pub fn apply_dial_rules(rules: &[DialRule], number: &str) -> String {
    if number.len() <= 3 && number.bytes().all(|b| b.is_ascii_digit()) {
        return number.to_owned();
    }
    match rules.iter().find(|r| number.starts_with(&r.prefix)) {
        Some(rule) => {
            let rest: String = number.chars().skip(usize::from(rule.strip)).collect();
            format!("{}{rest}", rule.prepend)
        }
        None => number.to_owned(),
    }
}

/// One incoming SIP header that a trunk maps onto a reserved data property (RDP-2), such as
/// `X-Verified-Customer` onto `reserved_verified_customer`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HeaderFlag {
    pub header: String,
    pub property: String,
}

impl HeaderFlag {
    pub fn new(header: &str, property: &str) -> Result<Self, TextError> {
        let header = header.trim();
        let token = !header.is_empty()
            && header.len() <= 64
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b));
        if !token {
            return Err(invalid(
                "header_flags",
                "a header name is 1 to 64 letters, digits or -_.!%*+`'~",
            ));
        }
        if !ReservedProperties::KEYS.contains(&property) {
            return Err(invalid(
                "header_flags",
                format!(
                    "the property is one of {}",
                    ReservedProperties::KEYS.join(", ")
                ),
            ));
        }
        Ok(HeaderFlag {
            header: header.to_owned(),
            property: property.to_owned(),
        })
    }
}

/// The reserved properties an INVITE carries under a trunk's header flags: a header saying
/// `true`, `yes` or `1` sets its property, `false`, `no` or `0` clears it, and anything else
/// (or no such header) leaves it unset. `header` finds a header's value by name (any case).
pub fn header_properties<'h>(
    flags: &[HeaderFlag],
    header: impl Fn(&str) -> Option<&'h str>,
) -> ReservedProperties {
    let mut properties = ReservedProperties::default();
    let sent = flags.iter().filter_map(|flag| {
        let value = match header(&flag.header)?.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => return None,
        };
        Some((flag.property.as_str(), PropertyValue::Bool(value)))
    });
    // Each flag's property was checked when it was made, so this cannot be refused.
    let _ = properties.apply(sent);
    properties
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrunkDirection {
    /// The carrier sends calls to us.
    Inbound,
    /// We send calls (transfers to numbers, agent calls) to the carrier.
    Outbound,
}

impl TrunkDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkDirection::Inbound => "inbound",
            TrunkDirection::Outbound => "outbound",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        match text {
            "inbound" => Ok(TrunkDirection::Inbound),
            "outbound" => Ok(TrunkDirection::Outbound),
            _ => Err(invalid("direction", "direction is inbound or outbound")),
        }
    }
}

/// A SIP trunk. Inbound trunks are recognised by source address or by digest credentials
/// (`username` with a stored HA1 in `secret`); outbound trunks send to `host:port`, answering
/// the carrier's challenge with `username` and the password in `secret`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Trunk {
    pub id: TrunkId,
    pub name: Name,
    pub direction: TrunkDirection,
    pub addresses: Vec<Network>,
    pub username: Option<String>,
    pub secret: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tcp: bool,
    pub caller_id: Option<PhoneNumber>,
    pub dial_rules: Vec<DialRule>,
    /// Inbound: concurrent calls at most, and new calls per second at most; `None` takes the
    /// server's defaults.
    pub max_calls: Option<u32>,
    pub max_calls_per_second: Option<u32>,
    /// Inbound: SIP headers read onto the call's reserved properties.
    pub header_flags: Vec<HeaderFlag>,
    /// Outbound: the trunk may carry emergency calls (EMG-9), for emergency numbers that have
    /// no direct-routing rule of their own.
    pub emergency: bool,
}

impl Trunk {
    /// Checks the fields that depend on the direction.
    pub fn check(&self) -> Result<(), TextError> {
        match self.direction {
            TrunkDirection::Inbound => {
                if self.addresses.is_empty() && self.username.is_none() {
                    return Err(invalid(
                        "addresses",
                        "an inbound trunk needs source addresses or a username and password",
                    ));
                }
            }
            TrunkDirection::Outbound => {
                if self.host.as_deref().is_none_or(str::is_empty) {
                    return Err(invalid("host", "an outbound trunk needs a host"));
                }
            }
        }
        if self.emergency && self.direction != TrunkDirection::Outbound {
            return Err(invalid(
                "emergency",
                "only an outbound trunk can carry emergency calls",
            ));
        }
        if self.username.is_some() != self.secret.is_some() {
            return Err(invalid(
                "password",
                "a username needs a password, and the other way round",
            ));
        }
        Ok(())
    }

    pub fn accepts_address(&self, ip: IpAddr) -> bool {
        self.direction == TrunkDirection::Inbound && self.addresses.iter().any(|n| n.contains(ip))
    }
}

/// A dialled number and where its calls go: a voice menu or leaf queue, or (`None`) the voice
/// channel's top-level menu.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Did {
    pub number: PhoneNumber,
    pub entry: Option<QueueId>,
    /// The language of prompts and routing for calls to this number.
    pub language: Option<Language>,
}

/// The choices a caller has at a menu: the voice nodes under `menu` (top level for `None`) in
/// position order, digit 1 for the first. At most nine.
pub fn menu_choices(nodes: &[QueueNode], menu: Option<QueueId>) -> Vec<&QueueNode> {
    let mut choices: Vec<&QueueNode> = nodes
        .iter()
        .filter(|n| n.channel == Channel::Voice && n.parent == menu)
        .collect();
    choices.sort_by_key(|n| (n.position, n.name.as_str().to_owned()));
    choices.truncate(9);
    choices
}

/// The node a digit picks among `choices`.
pub fn choose<'a>(choices: &[&'a QueueNode], digit: char) -> Option<&'a QueueNode> {
    let index = digit.to_digit(10)?.checked_sub(1)?;
    choices.get(index as usize).copied()
}

/// How a call ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Disposition {
    /// Still going.
    InProgress,
    /// Talked to an agent.
    Answered,
    /// The caller hung up while waiting in a queue or while an agent's phone rang.
    Abandoned,
    /// The caller left in the IVR, before reaching a queue.
    LeftInMenu,
    /// Sent to a number outside the center.
    TransferredOut,
    /// Could not be connected (no media, a failed leg).
    Failed,
    /// An agent's outbound call that the number did not answer (busy, refused, no answer), or
    /// that the agent gave up before it was answered.
    Unanswered,
    /// The server stopped while the call was up; closed when it started again.
    Interrupted,
}

impl Disposition {
    pub const ALL: [Disposition; 8] = [
        Disposition::InProgress,
        Disposition::Answered,
        Disposition::Abandoned,
        Disposition::LeftInMenu,
        Disposition::TransferredOut,
        Disposition::Failed,
        Disposition::Interrupted,
        Disposition::Unanswered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::InProgress => "in_progress",
            Disposition::Answered => "answered",
            Disposition::Abandoned => "abandoned",
            Disposition::LeftInMenu => "left_in_menu",
            Disposition::TransferredOut => "transferred_out",
            Disposition::Failed => "failed",
            Disposition::Interrupted => "interrupted",
            Disposition::Unanswered => "unanswered",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == text)
            .ok_or_else(|| invalid("disposition", format!("unknown disposition `{text}`")))
    }
}

/// A call's history record.
#[derive(Clone, PartialEq, Debug)]
pub struct CallRecord {
    pub id: CallId,
    /// The caller's number or SIP user.
    pub caller: String,
    /// The number dialled.
    pub did: String,
    /// Digits pressed in the IVR, in order.
    pub ivr_path: String,
    pub queue: Option<QueueId>,
    pub agent: Option<UserId>,
    pub contact: Option<ContactId>,
    pub started_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub ringing_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub disposition: Disposition,
    /// Who hung up: `caller`, `agent` or `system`.
    pub ended_by: Option<String>,
    /// Each transfer, as `queue:<id>`, `agent:<id>` or `number:<digits>`.
    pub transfers: Vec<String>,
    /// RTP packets received from and sent to the caller, and from and to the agents and
    /// numbers the caller talked to.
    pub rtp: RtpCounts,
    /// The caller's profile flags: from the trunk's header flags, and set over the Apps API
    /// during the call.
    pub properties: ReservedProperties,
    /// Who placed the call: a caller from outside, or an agent dialling out.
    pub direction: CallDirection,
    /// How long the agent heard the whisper (and countdown) before the caller was connected;
    /// part of the wait.
    pub whisper_ms: Option<u32>,
    /// The recording running now, if any (live state for the agent's card: not stored with
    /// the call; the recordings themselves are listed per call).
    pub recording: Option<LiveRecording>,
    /// An emergency call (EMG-6): confidential, so never stored as call history, recorded,
    /// sent to the CRM, listed for monitoring or monitored. Live state only.
    pub emergency: Option<Emergency>,
}

/// Which side of an emergency an emergency call is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Emergency {
    /// The agent dialled an emergency number.
    Outgoing,
    /// The emergency service called back on the agent's leased number (EMG-4).
    Callback,
}

impl Emergency {
    pub fn as_str(self) -> &'static str {
        match self {
            Emergency::Outgoing => "outgoing",
            Emergency::Callback => "callback",
        }
    }
}

/// A call's running figures (`CallRecord::times_at`), in milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CallTimes {
    /// In the queue, until an agent's phone rang (or the caller left).
    pub wait_ms: Option<i64>,
    /// Ringing the agent, until answered.
    pub ring_ms: Option<i64>,
    /// From the answer until now or the end.
    pub talk_ms: Option<i64>,
}

/// Who placed a call. An outbound call's `caller` is the number presented (the trunk's caller
/// id) and its `did` the number the agent dialled.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum CallDirection {
    #[default]
    Inbound,
    Outbound,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        match text {
            "inbound" => Ok(CallDirection::Inbound),
            "outbound" => Ok(CallDirection::Outbound),
            _ => Err(invalid(
                "direction",
                format!("unknown call direction `{text}`"),
            )),
        }
    }
}

/// The recording of a live call, as its card shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LiveRecording {
    pub id: crate::ids::RecordingId,
    /// The agent paused it (redact): the file gets silence until it is resumed.
    pub paused: bool,
}

/// Where a stored recording stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecordingStatus {
    /// Being written (the call goes on).
    Recording,
    /// Written in full.
    Complete,
    /// Cut short: the server stopped while it was being written; the file holds what was
    /// written until then.
    Interrupted,
}

impl RecordingStatus {
    pub const ALL: [RecordingStatus; 3] = [
        RecordingStatus::Recording,
        RecordingStatus::Complete,
        RecordingStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Recording => "recording",
            RecordingStatus::Complete => "complete",
            RecordingStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| invalid("status", format!("unknown recording status `{text}`")))
    }
}

/// A stored recording's metadata (REC-7: its paused spans are kept here).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Recording {
    pub id: crate::ids::RecordingId,
    pub call: CallId,
    /// The agent whose conversation it is (the right channel).
    pub agent: Option<UserId>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Its length in ms (paused spans included, as silence).
    pub duration_ms: u64,
    /// The file's size in bytes.
    pub size_bytes: u64,
    /// Spans the agent paused, as (start, end) in ms from the recording's start.
    pub paused: Vec<(u64, u64)>,
    pub status: RecordingStatus,
    /// Where its bytes are in the recordings' blob store.
    pub blob_key: String,
}

/// How long a recording is kept at most, whatever else happens (REC-4).
pub const RECORDING_RETENTION_DAYS: i64 = 7;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RtpCounts {
    pub from_caller: u32,
    pub to_caller: u32,
    pub from_agent: u32,
    pub to_agent: u32,
}

impl CallRecord {
    pub fn new(id: CallId, caller: String, did: String, now: DateTime<Utc>) -> Self {
        CallRecord {
            id,
            caller,
            did,
            ivr_path: String::new(),
            queue: None,
            agent: None,
            contact: None,
            started_at: now,
            queued_at: None,
            ringing_at: None,
            answered_at: None,
            ended_at: None,
            disposition: Disposition::InProgress,
            ended_by: None,
            transfers: Vec::new(),
            rtp: RtpCounts::default(),
            properties: ReservedProperties::default(),
            direction: CallDirection::Inbound,
            whisper_ms: None,
            recording: None,
            emergency: None,
        }
    }

    /// Time in queue: from queueing until an agent answered, or until the call ended.
    pub fn wait_ms(&self) -> Option<i64> {
        let start = self.queued_at?;
        let end = self.answered_at.or(self.ended_at)?;
        Some((end - start).num_milliseconds().max(0))
    }

    /// Time talking to agents: from the first answer to the end.
    pub fn talk_ms(&self) -> Option<i64> {
        let start = self.answered_at?;
        let end = self.ended_at?;
        Some((end - start).num_milliseconds().max(0))
    }

    /// How long the call has waited, rung and talked by `now` (or by its end): the call
    /// details' running figures. A stage not reached yet is `None`; one that ended is fixed.
    pub fn times_at(&self, now: DateTime<Utc>) -> CallTimes {
        let until = |end: Option<DateTime<Utc>>| end.or(self.ended_at).unwrap_or(now);
        let span = |start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>| {
            start.map(|start| (until(end) - start).num_milliseconds().max(0))
        };
        CallTimes {
            wait_ms: span(self.queued_at, self.answered_at.or(self.ringing_at)),
            ring_ms: span(self.ringing_at, self.answered_at),
            talk_ms: span(self.answered_at, None),
        }
    }

    /// Closes the record; the disposition follows from how far the call got unless given.
    pub fn end(&mut self, now: DateTime<Utc>, by: &str, disposition: Option<Disposition>) {
        if self.ended_at.is_some() {
            return;
        }
        self.ended_at = Some(now);
        self.ended_by = Some(by.to_owned());
        // Whatever was being recorded stops with the call.
        self.recording = None;
        self.disposition = disposition.unwrap_or(if self.answered_at.is_some() {
            Disposition::Answered
        } else if self.queued_at.is_some() {
            Disposition::Abandoned
        } else {
            Disposition::LeftInMenu
        });
    }
}
