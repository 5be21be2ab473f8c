//! Validated text values: usernames, display names, emails and language tags.
//! Each has a `parse` constructor and a private field, so a value that exists is valid.

use std::fmt;

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} contains characters that are not allowed: {detail}")]
    Invalid { field: &'static str, detail: String },
}

fn check_length(field: &'static str, text: &str, max: usize) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::Empty { field });
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    Ok(())
}

/// A login name: 2 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let text = text.trim();
        check_length("username", text, 64)?;
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        let first_ok = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if text.len() < 2 || !first_ok || !text.chars().all(ok_char) {
            return Err(TextError::Invalid {
                field: "username",
                detail:
                    "use 2 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
                        .into(),
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A human-facing name (display name, team name, queue name): trimmed, 1 to 100 characters,
/// no control characters, and no `>` because that character separates a queue path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, TextError> {
        let text = text.trim();
        check_length(field, text, 100)?;
        if let Some(bad) = text.chars().find(|c| c.is_control() || *c == '>') {
            return Err(TextError::Invalid {
                field,
                detail: format!("{bad:?}"),
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, checked for shape only (one `@`, a dotted domain, no spaces).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let text = text.trim();
        check_length("email", text, 254)?;
        let invalid = || TextError::Invalid {
            field: "email",
            detail: text.chars().take(80).collect(),
        };
        let (local, domain) = text.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '@' && c != ';' && c != ',');
        if !domain_ok || !local_ok {
            return Err(invalid());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A semicolon-separated list of emails, as the emergency-contacts field is written
/// (`a@x.org;b@y.org`, EMG-7). Empty text is an empty list.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct EmailList(Vec<Email>);

impl EmailList {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let emails = text
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(Email::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if emails.len() > 20 {
            return Err(TextError::TooLong {
                field: "emergency contacts",
                max: 20,
            });
        }
        Ok(Self(emails))
    }

    pub fn emails(&self) -> &[Email] {
        &self.0
    }

    /// The list in its stored form, `a@x.org;b@y.org`.
    pub fn joined(&self) -> String {
        self.0
            .iter()
            .map(Email::as_str)
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// A language tag such as `en`, `fr` or `en-US`: a 2-3 letter primary subtag (lowercased)
/// and optional subtags; a 2-letter region is uppercased, so `en-us` and `en-US` are equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Language(String);

impl Language {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let text = text.trim();
        check_length("language", text, 35)?;
        let invalid = || TextError::Invalid {
            field: "language",
            detail: text.to_owned(),
        };
        let mut parts = text.split(['-', '_']);
        let primary = parts.next().ok_or_else(invalid)?;
        if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(invalid());
        }
        let mut tag = primary.to_ascii_lowercase();
        for part in parts {
            if !(2..=8).contains(&part.len()) || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid());
            }
            tag.push('-');
            if part.len() == 2 {
                tag.push_str(&part.to_ascii_uppercase());
            } else {
                tag.push_str(&part.to_ascii_lowercase());
            }
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number as its digits alone (`+1 (555) 123-4567` and `15551234567` are the same
/// number), so that a caller's number and a consumer's number from their identity token can be
/// compared; `None` for anything else (a SIP user name, `anonymous`). Full international
/// numbers compare reliably; a national form without the country code is another number.
pub fn phone_digits(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    let mut digits = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    (5..=20).contains(&digits.len()).then_some(digits)
}
