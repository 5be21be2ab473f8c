//! Emergency calls made by agents (EMG-1..9): the registry of emergency numbers per country,
//! recognising a dial string as one before any dial rule rewrites it, and the callback number
//! leased to the agent who dialled (EMG-3, EMG-4). `location` holds the civic address and the
//! PIDF-LO that carries it; `notice` the notification mail's template (EMG-7).

pub mod location;
pub mod notice;

use crate::dialing::strip_separators;
use crate::text::TextError;
use crate::voice::DialRule;
use crate::{TrunkId, UserId};
use chrono::{DateTime, Duration, Utc};

/// The countries whose emergency numbers Switchboard knows how to call (ISO 3166-1 alpha-2).
pub const SUPPORTED_COUNTRIES: [&str; 5] = ["US", "CA", "PR", "GB", "DK"];

/// How long a callback number stays with the agent who dialled (EMG-3).
pub fn lease_length() -> Duration {
    Duration::minutes(60)
}

fn invalid(field: &'static str, detail: impl Into<String>) -> TextError {
    TextError::Invalid {
        field,
        detail: detail.into(),
    }
}

/// A supported country, by its ISO code in capitals (`GB` for the United Kingdom; `UK` is read
/// as `GB`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Country(String);

impl Country {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let code = text.trim().to_ascii_uppercase();
        let code = if code == "UK" { "GB".to_owned() } else { code };
        if SUPPORTED_COUNTRIES.contains(&code.as_str()) {
            Ok(Country(code))
        } else {
            Err(invalid(
                "country",
                format!(
                    "`{}` is not a supported country ({})",
                    text.chars().take(16).collect::<String>(),
                    SUPPORTED_COUNTRIES.join(", ")
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One emergency number of one country.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EmergencyNumber {
    pub country: Country,
    /// Digits only, as dialled (`911`, `112`).
    pub number: String,
    /// A carriers' test number (933 in North America): handled the same way, marked as a test.
    pub test: bool,
    /// A direct-routing rule: calls to this number leave through this trunk; otherwise through
    /// the emergency-capable outbound trunk.
    pub trunk: Option<TrunkId>,
}

impl EmergencyNumber {
    pub fn new(
        country: &str,
        number: &str,
        test: bool,
        trunk: Option<TrunkId>,
    ) -> Result<Self, TextError> {
        let country = Country::parse(country)?;
        let number = number.trim();
        if !(2..=6).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "number",
                "an emergency number is 2 to 6 digits, as dialled (911, 112, 999)",
            ));
        }
        Ok(EmergencyNumber {
            country,
            number: number.to_owned(),
            test,
            trunk,
        })
    }
}

/// The emergency numbers the center recognises.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Registry {
    pub numbers: Vec<EmergencyNumber>,
}

impl Default for Registry {
    /// North America's 911 (and 933, the carriers' test number), the United Kingdom's 999 and
    /// 112, Denmark's 112.
    fn default() -> Self {
        let rows = [
            ("US", "911", false),
            ("US", "933", true),
            ("CA", "911", false),
            ("CA", "933", true),
            ("PR", "911", false),
            ("PR", "933", true),
            ("GB", "999", false),
            ("GB", "112", false),
            ("DK", "112", false),
        ];
        Registry {
            numbers: rows
                .into_iter()
                .map(|(country, number, test)| EmergencyNumber {
                    country: Country(country.into()),
                    number: number.into(),
                    test,
                    trunk: None,
                })
                .collect(),
        }
    }
}

/// A dial string recognised as an emergency number.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Recognised {
    /// The emergency number itself (`911` for `9-911`).
    pub number: String,
    /// As the agent typed it.
    pub dialled: String,
}

/// Why an emergency call cannot be placed; each says what to do about it.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EmergencyRefusal {
    #[error("your capacity profile does not include outbound calls, so you cannot dial {0}: ask an admin to add voice outbound to it")]
    NoOutbound(String),
    #[error("your location is not set, so {0} cannot be told where you are: set your address in the adapter (or ask an admin to set your site)")]
    NoLocation(String),
    #[error("{number} is not an emergency number in {country}, where you are located")]
    NotInCountry { number: String, country: Country },
    #[error("no outbound trunk may carry emergency calls: an admin must allow one")]
    NoTrunk,
}

impl EmergencyRefusal {
    /// A stable code for the API and the adapter.
    pub fn code(&self) -> &'static str {
        match self {
            EmergencyRefusal::NoOutbound(_) => "emergency_no_outbound",
            EmergencyRefusal::NoLocation(_) => "emergency_no_location",
            EmergencyRefusal::NotInCountry { .. } => "emergency_not_in_country",
            EmergencyRefusal::NoTrunk => "emergency_no_trunk",
        }
    }
}

impl Registry {
    /// Checks a registry before it is saved: no number twice in one country.
    pub fn check(&self) -> Result<(), TextError> {
        for (i, a) in self.numbers.iter().enumerate() {
            if self.numbers[..i]
                .iter()
                .any(|b| b.country == a.country && b.number == a.number)
            {
                return Err(invalid(
                    "numbers",
                    format!("{} is listed twice for {}", a.number, a.country),
                ));
            }
        }
        Ok(())
    }

    fn known(&self, digits: &str) -> bool {
        self.numbers.iter().any(|n| n.number == digits)
    }

    /// Whether `typed` is an emergency number of any country in the registry, as typed
    /// (separators ignored) or behind one of the center's outside-line prefixes (`9911`,
    /// `9-911` where 9 is the outside line). Decided on the string the agent typed, before
    /// any dial rule rewrites it. A number with `+` is never an emergency number.
    pub fn recognise(&self, typed: &str, outside_prefixes: &[String]) -> Option<Recognised> {
        let compact = strip_separators(typed.trim());
        if compact.is_empty() || !compact.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = if self.known(&compact) {
            compact.clone()
        } else {
            outside_prefixes
                .iter()
                .filter(|p| !p.is_empty())
                .filter_map(|p| compact.strip_prefix(p.as_str()))
                .find(|rest| self.known(rest))?
                .to_owned()
        };
        Some(Recognised {
            number,
            dialled: compact,
        })
    }

    /// The entry to call for a recognised number from an agent located in `country`: the
    /// number itself when it is one of that country's; otherwise that country's first
    /// (non-test) number, as a mobile phone turns 112 into the local number. `None` when the
    /// country has no emergency number in the registry.
    pub fn for_country(
        &self,
        recognised: &Recognised,
        country: &Country,
    ) -> Option<&EmergencyNumber> {
        let own = self.numbers.iter().filter(|n| &n.country == country);
        own.clone()
            .find(|n| n.number == recognised.number)
            .or_else(|| own.clone().find(|n| !n.test))
    }
}

/// The outside-line prefixes a trunk's dial rules imply: a rule that only strips its own
/// prefix (`9` stripped, nothing prepended) is the center's way to reach an outside line.
pub fn outside_prefixes(rules: &[DialRule]) -> Vec<String> {
    rules
        .iter()
        .filter(|r| {
            r.prepend.is_empty()
                && !r.prefix.is_empty()
                && usize::from(r.strip) == r.prefix.len()
                && r.prefix.bytes().all(|b| b.is_ascii_digit())
        })
        .map(|r| r.prefix.clone())
        .collect()
}

/// A callback number leased to an agent (EMG-3): a call to `number` until `expires_at` goes
/// straight to `agent` (EMG-4).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lease {
    pub number: String,
    pub agent: UserId,
    pub leased_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// What leasing a callback number decided.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LeaseChoice {
    /// The agent's lease from an earlier emergency call in the window: the same number, for
    /// another 60 minutes from now.
    Kept(Lease),
    /// A number from the pool that nobody holds.
    New(Lease),
    /// Every number of the pool is held (or there is no pool): the call still goes out, with
    /// the trunk's caller id, and the admins are warned.
    Exhausted,
}

impl LeaseChoice {
    pub fn lease(&self) -> Option<&Lease> {
        match self {
            LeaseChoice::Kept(lease) | LeaseChoice::New(lease) => Some(lease),
            LeaseChoice::Exhausted => None,
        }
    }
}

/// Leases a callback number to `agent` at `now`, from `pool` given the `leases` stored (active
/// and expired). An agent who holds a number keeps it; otherwise the free number whose last
/// lease ended longest ago (one never leased first) is taken, so a number is reused as late as
/// possible after its callback window.
pub fn lease(pool: &[String], leases: &[Lease], agent: UserId, now: DateTime<Utc>) -> LeaseChoice {
    let expires_at = now + lease_length();
    if let Some(held) = leases
        .iter()
        .filter(|l| l.agent == agent && l.active(now) && pool.contains(&l.number))
        .max_by_key(|l| l.expires_at)
    {
        return LeaseChoice::Kept(Lease {
            expires_at,
            ..held.clone()
        });
    }
    let last_end = |number: &str| {
        leases
            .iter()
            .filter(|l| l.number == number)
            .map(|l| l.expires_at)
            .max()
    };
    let free = pool
        .iter()
        .filter(|n| !leases.iter().any(|l| &l.number == *n && l.active(now)))
        .min_by_key(|n| last_end(n));
    match free {
        Some(number) => LeaseChoice::New(Lease {
            number: number.clone(),
            agent,
            leased_at: now,
            expires_at,
        }),
        None => LeaseChoice::Exhausted,
    }
}

/// Who holds `number` at `now`, if anyone (the priority callback, EMG-4).
pub fn holder(leases: &[Lease], number: &str, now: DateTime<Utc>) -> Option<UserId> {
    let bare = number.trim_start_matches('+');
    leases
        .iter()
        .filter(|l| l.active(now) && l.number.trim_start_matches('+') == bare)
        .max_by_key(|l| l.expires_at)
        .map(|l| l.agent)
}

/// A pool of callback numbers as an admin writes it: numbers separated by commas, semicolons
/// or new lines, and ranges `15550190-15550199` (at most 1,000 numbers).
pub fn parse_pool(text: &str) -> Result<Vec<String>, TextError> {
    let mut out: Vec<String> = Vec::new();
    for item in text
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let digits = |s: &str| {
            let s = s.trim();
            let body = s.strip_prefix('+').unwrap_or(s);
            (!body.is_empty() && body.len() <= 15 && body.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.to_owned())
        };
        let bad = || {
            invalid(
                "callback_pool",
                format!(
                    "`{}` is not a number or a range like 15550190-15550199",
                    item.chars().take(40).collect::<String>()
                ),
            )
        };
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (digits(a).ok_or_else(bad)?, digits(b).ok_or_else(bad)?);
                let plus = a.starts_with('+');
                let (lo, hi) = (a.trim_start_matches('+'), b.trim_start_matches('+'));
                if lo.len() != hi.len() || plus != b.starts_with('+') {
                    return Err(bad());
                }
                let (lo_n, hi_n): (u64, u64) = (
                    lo.parse().map_err(|_| bad())?,
                    hi.parse().map_err(|_| bad())?,
                );
                if hi_n < lo_n || hi_n - lo_n >= 1000 {
                    return Err(invalid(
                        "callback_pool",
                        format!("`{item}` must go upwards and hold at most 1,000 numbers"),
                    ));
                }
                for n in lo_n..=hi_n {
                    let text = format!(
                        "{}{n:0width$}",
                        if plus { "+" } else { "" },
                        width = lo.len()
                    );
                    if !out.contains(&text) {
                        out.push(text);
                    }
                }
            }
            None => {
                let n = digits(item).ok_or_else(bad)?;
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        if out.len() > 1000 {
            return Err(invalid(
                "callback_pool",
                "a pool holds at most 1,000 numbers",
            ));
        }
    }
    Ok(out)
}
