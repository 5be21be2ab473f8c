//! Dispatchable location (RAY BAUM'S Act; RFC 6442, RFC 4119, RFC 5139, RFC 5491): the civic
//! address of a site or an agent, validated when saved, and the PIDF-LO document an emergency
//! INVITE carries.

use super::{invalid, Country};
use crate::text::{Name, TextError};
use crate::SiteId;
use chrono::{DateTime, SecondsFormat, Utc};

/// A place agents work from, with its civic address. An agent on a site is located there
/// unless they have an address of their own.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Site {
    pub id: SiteId,
    pub name: Name,
    pub address: CivicAddress,
}

/// Who set an agent's own address: an admin for them, or the agent in the adapter (working
/// from home, say).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetBy {
    Admin,
    Agent,
}

impl SetBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SetBy::Admin => "admin",
            SetBy::Agent => "agent",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        match text {
            "admin" => Ok(SetBy::Admin),
            "agent" => Ok(SetBy::Agent),
            _ => Err(invalid("set_by", "an address is set by admin or agent")),
        }
    }
}

/// How the location was obtained (RFC 4119's `method`): typed by a person, or from the
/// network (DHCP, RFC 4776).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Method {
    #[default]
    Manual,
    Dhcp,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Manual => "Manual",
            Method::Dhcp => "DHCP",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "manual" => Ok(Method::Manual),
            "dhcp" => Ok(Method::Dhcp),
            _ => Err(invalid("method", "the method is Manual or DHCP")),
        }
    }
}

/// A civic address (RFC 5139 elements in brackets). Country, city, street and house number are
/// required; so is the state or province in North America.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CivicAddress {
    pub country: Country,
    /// State, province or region (A1).
    pub state: String,
    /// City or town (A3).
    pub city: String,
    /// Street (RD).
    pub street: String,
    /// House number (HNO).
    pub number: String,
    /// Postal code (PC).
    pub postcode: String,
    /// Building (BLD), floor (FLR), room (ROOM).
    pub building: String,
    pub floor: String,
    pub room: String,
    pub method: Method,
}

/// The fields of an address as they arrive (from the API or the store), before validation.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AddressInput {
    pub country: String,
    pub state: String,
    pub city: String,
    pub street: String,
    pub number: String,
    pub postcode: String,
    pub building: String,
    pub floor: String,
    pub room: String,
    pub method: String,
}

fn field(name: &'static str, text: &str, required: bool, max: usize) -> Result<String, TextError> {
    let text = text.trim();
    if text.is_empty() {
        return if required {
            Err(TextError::Empty { field: name })
        } else {
            Ok(String::new())
        };
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { field: name, max });
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(invalid(name, "control characters are not allowed"));
    }
    Ok(text.to_owned())
}

const US_STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "AS", "GU", "MP", "VI", "UM",
];
const CA_PROVINCES: [&str; 13] = [
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
];

impl CivicAddress {
    pub fn parse(input: &AddressInput) -> Result<Self, TextError> {
        let country = Country::parse(&input.country)?;
        let north_america = matches!(country.as_str(), "US" | "CA");
        let mut state = field("state", &input.state, north_america, 64)?;
        match country.as_str() {
            "US" => {
                state = state.to_ascii_uppercase();
                if !US_STATES.contains(&state.as_str()) {
                    return Err(invalid(
                        "state",
                        "use the two-letter USPS code (NY, CA, TX…)",
                    ));
                }
            }
            "CA" => {
                state = state.to_ascii_uppercase();
                if !CA_PROVINCES.contains(&state.as_str()) {
                    return Err(invalid(
                        "state",
                        "use the two-letter province code (ON, QC, BC…)",
                    ));
                }
            }
            _ => {}
        }
        let postcode = field("postcode", &input.postcode, false, 16)?.to_ascii_uppercase();
        if !postcode.is_empty() && !postcode_fits(country.as_str(), &postcode) {
            return Err(invalid(
                "postcode",
                match country.as_str() {
                    "US" | "PR" => "a ZIP code is 5 digits or ZIP+4 (12345-6789)",
                    "CA" => "a postal code looks like K1A 0B1",
                    "GB" => "a postcode looks like SW1A 1AA",
                    _ => "a Danish postcode is 4 digits",
                },
            ));
        }
        Ok(CivicAddress {
            state,
            city: field("city", &input.city, true, 100)?,
            street: field("street", &input.street, true, 100)?,
            number: field("number", &input.number, true, 16)?,
            postcode,
            building: field("building", &input.building, false, 100)?,
            floor: field("floor", &input.floor, false, 16)?,
            room: field("room", &input.room, false, 32)?,
            method: Method::parse(&input.method)?,
            country,
        })
    }

    /// Back to the plain fields (for the wire and the store).
    pub fn input(&self) -> AddressInput {
        AddressInput {
            country: self.country.as_str().to_owned(),
            state: self.state.clone(),
            city: self.city.clone(),
            street: self.street.clone(),
            number: self.number.clone(),
            postcode: self.postcode.clone(),
            building: self.building.clone(),
            floor: self.floor.clone(),
            room: self.room.clone(),
            method: self.method.as_str().to_owned(),
        }
    }

    /// One line for people: `12 Main St, Floor 3, Room 301, Springfield IL 62701, US`.
    pub fn one_line(&self) -> String {
        let mut parts = vec![format!("{} {}", self.number, self.street)];
        if !self.building.is_empty() {
            parts.push(self.building.clone());
        }
        if !self.floor.is_empty() {
            parts.push(format!("Floor {}", self.floor));
        }
        if !self.room.is_empty() {
            parts.push(format!("Room {}", self.room));
        }
        let place = [
            self.city.as_str(),
            self.state.as_str(),
            self.postcode.as_str(),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
        parts.push(place);
        parts.push(self.country.as_str().to_owned());
        parts.join(", ")
    }

    /// The PIDF-LO (RFC 4119, with RFC 5139's civic address inside a `device` element as
    /// RFC 5491 asks) for `entity` (a SIP or pres URI of the caller) at `now`.
    pub fn pidf_lo(&self, entity: &str, device: &str, now: DateTime<Utc>) -> String {
        let mut civic = String::new();
        for (tag, value) in [
            ("country", self.country.as_str()),
            ("A1", self.state.as_str()),
            ("A3", self.city.as_str()),
            ("RD", self.street.as_str()),
            ("HNO", self.number.as_str()),
            ("PC", self.postcode.as_str()),
            ("BLD", self.building.as_str()),
            ("FLR", self.floor.as_str()),
            ("ROOM", self.room.as_str()),
        ] {
            if !value.is_empty() {
                civic.push_str(&format!(
                    "          <ca:{tag}>{}</ca:{tag}>\n",
                    escape(value)
                ));
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\n\
    xmlns:gp=\"urn:ietf:params:xml:ns:pidf:geopriv10\"\n\
    xmlns:ca=\"urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr\"\n\
    xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\"\n\
    entity=\"{entity}\">\n\
  <dm:device id=\"{device}\">\n\
    <gp:geopriv>\n\
      <gp:location-info>\n\
        <ca:civicAddress xml:lang=\"en\">\n\
{civic}\
        </ca:civicAddress>\n\
      </gp:location-info>\n\
      <gp:usage-rules/>\n\
      <gp:method>{method}</gp:method>\n\
    </gp:geopriv>\n\
    <dm:deviceID>urn:uuid:{device}</dm:deviceID>\n\
    <dm:timestamp>{at}</dm:timestamp>\n\
  </dm:device>\n\
</presence>\n",
            entity = escape(entity),
            device = escape(device),
            method = self.method.as_str(),
            at = now.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    }
}

fn postcode_fits(country: &str, code: &str) -> bool {
    let b = code.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match country {
        "US" | "PR" => {
            (b.len() == 5 && digits(b))
                || (b.len() == 10 && digits(&b[..5]) && b[5] == b'-' && digits(&b[6..]))
        }
        "CA" => {
            let c: Vec<u8> = b.iter().copied().filter(|c| *c != b' ').collect();
            c.len() == 6
                && c.iter().enumerate().all(|(i, ch)| {
                    if i % 2 == 0 {
                        ch.is_ascii_uppercase()
                    } else {
                        ch.is_ascii_digit()
                    }
                })
        }
        "GB" => {
            // Outward code (2 to 4), a space, inward code (digit, two letters).
            let Some((out, inward)) = code.split_once(' ') else {
                return false;
            };
            let i = inward.as_bytes();
            (2..=4).contains(&out.len())
                && out.bytes().all(|c| c.is_ascii_alphanumeric())
                && out.as_bytes()[0].is_ascii_uppercase()
                && i.len() == 3
                && i[0].is_ascii_digit()
                && i[1].is_ascii_uppercase()
                && i[2].is_ascii_uppercase()
        }
        "DK" => b.len() == 4 && digits(b),
        _ => true,
    }
}

/// XML text and attribute escaping.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
