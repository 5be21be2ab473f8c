//! Who may dial what (class of service): the kind of a dialled number, and the policy that says
//! which kinds and patterns a role or team may call or transfer to. Toll fraud starts with
//! an agent's transfer to a premium-rate or satellite number; here international and
//! premium-rate numbers are refused unless a policy allows them, and emergency numbers are
//! always allowed.
//!
//! Numbers are read against the center's home country (its E.164 country code): `+…`, `00…`
//! and, in the North American plan, `011…` are international unless they carry the home
//! country code. Premium-rate ranges are known for the countries the center supports; the
//! international networks (+881, +882, +883: satellite and global services) are a kind of
//! their own because they are the classic fraud destination.

use crate::text::TextError;

/// The kind of a number, as far as dialling policy cares.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum NumberKind {
    /// A short code the center treats as an emergency number (decided before dial rules).
    Emergency,
    /// In the home country, not premium rate.
    National,
    /// In the home country, premium rate (+1 900, +44 9…, +45 90…).
    PremiumRate,
    International,
    /// +881, +882, +883: satellite phones and global networks.
    Satellite,
}

impl NumberKind {
    pub const ALL: [NumberKind; 5] = [
        NumberKind::Emergency,
        NumberKind::National,
        NumberKind::PremiumRate,
        NumberKind::International,
        NumberKind::Satellite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Emergency => "emergency",
            NumberKind::National => "national",
            NumberKind::PremiumRate => "premium_rate",
            NumberKind::International => "international",
            NumberKind::Satellite => "satellite",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| TextError::Invalid {
                field: "kinds",
                detail: format!(
                    "`{text}` is not a number kind (national, premium_rate, international, satellite, emergency)"
                ),
            })
    }
}

/// The center's home numbering plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HomePlan {
    /// The E.164 country code, digits only (`1`, `44`, `45`).
    pub country_code: String,
    /// Emergency short codes dialled as they are (`911`, `112`, `999`).
    pub emergency: Vec<String>,
}

impl HomePlan {
    /// The plan of a country by its ISO code (`US`, `CA`, `PR`, `GB`, `DK`).
    pub fn of_country(iso: &str) -> Option<HomePlan> {
        let (code, emergency): (&str, &[&str]) = match iso.to_ascii_uppercase().as_str() {
            "US" | "CA" | "PR" => ("1", &["911", "933"]),
            "GB" | "UK" => ("44", &["999", "112"]),
            "DK" => ("45", &["112"]),
            _ => return None,
        };
        Some(HomePlan {
            country_code: code.into(),
            emergency: emergency.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn north_american(&self) -> bool {
        self.country_code == "1"
    }

    /// The number in E.164 digits (without `+`) when it is international or fully national.
    fn e164(&self, digits: &str, plus: bool) -> Option<String> {
        if plus {
            return Some(digits.to_owned());
        }
        if let Some(rest) = digits.strip_prefix("00") {
            return Some(rest.to_owned());
        }
        if self.north_american() {
            if let Some(rest) = digits.strip_prefix("011") {
                return Some(rest.to_owned());
            }
            // 1 + NPA + NXX + XXXX, or ten digits without the 1.
            return match digits.len() {
                11 if digits.starts_with('1') => Some(digits.to_owned()),
                10 => Some(format!("1{digits}")),
                _ => None,
            };
        }
        // National numbers with a trunk prefix 0 (UK) or without (DK, eight digits).
        if let Some(rest) = digits.strip_prefix('0') {
            return Some(format!("{}{rest}", self.country_code));
        }
        Some(format!("{}{digits}", self.country_code))
    }

    /// The number in E.164 with `+` (`+15551234567`), when it can be read as one.
    pub fn normalize(&self, number: &str) -> Option<String> {
        let plus = number.trim_start().starts_with('+');
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        self.e164(&digits, plus).map(|e| format!("+{e}"))
    }

    /// What kind of number `number` is (digits, an optional leading `+`, `-` and spaces
    /// ignored).
    pub fn classify(&self, number: &str) -> NumberKind {
        let plus = number.trim_start().starts_with('+');
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        if !plus && self.emergency.contains(&digits) {
            return NumberKind::Emergency;
        }
        let Some(e164) = self.e164(&digits, plus) else {
            // Seven digits are a local number in North America; anything else that cannot be
            // read as a number here is treated as international, so a policy that refuses
            // international numbers refuses it too.
            return if self.north_american() && !plus && digits.len() == 7 {
                NumberKind::National
            } else {
                NumberKind::International
            };
        };
        if ["881", "882", "883"].iter().any(|p| e164.starts_with(p)) {
            return NumberKind::Satellite;
        }
        let Some(national) = e164.strip_prefix(self.country_code.as_str()) else {
            return NumberKind::International;
        };
        // NANP: the country code 1 also covers Canada and the Caribbean; they stay "national"
        // for a center there, as carriers bill them alike.
        let premium = match self.country_code.as_str() {
            "1" => national.starts_with("900") || national.starts_with("976"),
            "44" => national.starts_with('9'),
            "45" => national.starts_with("90"),
            _ => false,
        };
        if premium {
            NumberKind::PremiumRate
        } else {
            NumberKind::National
        }
    }
}

/// A policy: the kinds allowed, plus patterns that allow or deny specific numbers (a pattern
/// is a digit prefix with an optional leading `+`; `*` alone matches everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialPolicy {
    pub allowed: Vec<NumberKind>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl Default for DialPolicy {
    /// National numbers only (emergency numbers are always allowed whatever the policy).
    fn default() -> Self {
        DialPolicy {
            allowed: vec![NumberKind::National],
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

/// Why a number may not be dialled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialRefusal {
    #[error("{kind} numbers may not be dialled", kind = .0.as_str().replace('_', "-"))]
    Kind(NumberKind),
    #[error("this number is blocked for you")]
    Denied,
}

impl DialPolicy {
    /// Checks pattern syntax.
    pub fn check(&self) -> Result<(), TextError> {
        for pattern in self.allow.iter().chain(&self.deny) {
            let body = pattern.strip_prefix('+').unwrap_or(pattern);
            let ok = pattern == "*"
                || (!body.is_empty()
                    && body.len() <= 32
                    && body.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                return Err(TextError::Invalid {
                    field: "patterns",
                    detail: format!("`{pattern}` is not a digit prefix (optionally with +) or *"),
                });
            }
        }
        Ok(())
    }

    fn matches(pattern: &str, number: &str) -> bool {
        pattern == "*" || number.starts_with(pattern)
    }

    /// Whether `number` may be dialled under this policy in `plan`. Emergency numbers always
    /// may; then a deny pattern refuses, an allow pattern allows, and otherwise the kind
    /// decides. A pattern matches the number as dialled (without spaces and dashes) or in its
    /// E.164 form, so `+44` covers `+44…`, `0044…` and, from North America, `01144…`.
    pub fn permits(&self, plan: &HomePlan, number: &str) -> Result<NumberKind, DialRefusal> {
        let kind = plan.classify(number);
        if kind == NumberKind::Emergency {
            return Ok(kind);
        }
        let compact: String = number
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        let e164 = plan.normalize(number);
        let hits = |patterns: &[String]| {
            patterns.iter().any(|p| {
                Self::matches(p, &compact) || e164.as_deref().is_some_and(|e| Self::matches(p, e))
            })
        };
        if hits(&self.deny) {
            return Err(DialRefusal::Denied);
        }
        if hits(&self.allow) {
            return Ok(kind);
        }
        if self.allowed.contains(&kind) {
            Ok(kind)
        } else {
            Err(DialRefusal::Kind(kind))
        }
    }

    /// The union of several policies (a user's role and teams): what any of them allows, unless
    /// any of them denies it.
    pub fn union<'a>(policies: impl IntoIterator<Item = &'a DialPolicy>) -> DialPolicy {
        let mut out = DialPolicy {
            allowed: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
        };
        for policy in policies {
            for kind in &policy.allowed {
                if !out.allowed.contains(kind) {
                    out.allowed.push(*kind);
                }
            }
            out.allow.extend(policy.allow.iter().cloned());
            out.deny.extend(policy.deny.iter().cloned());
        }
        out
    }
}

/// A number as people type it ("+1 (555) 010-0199", "555.0100") with the spaces, dashes,
/// dots and parentheses taken out; what is left is checked as a phone number.
pub fn strip_separators(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect()
}
