//! The "Emergency Call Notification" (EMG-7, Kari's Law): the editable template of the mail
//! sent to an agent's emergency contacts when they dial an emergency number, and the states of
//! that mail as the restricted emergency log shows them.
//!
//! A template is a subject and a body in which `{agent_name}`, `{time}`, `{number}`,
//! `{callback_number}` and `{location}` stand for the call's values. Braces are used only
//! around those names: any other use (an unknown name, `{` without its `}`, a `}` on its own)
//! is refused when the template is saved, so a template that exists always renders.

use crate::text::TextError;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The longest subject, in characters.
pub const SUBJECT_MAX: usize = 200;
/// The longest body, in characters.
pub const BODY_MAX: usize = 10_000;

/// What a template's placeholders may name.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Variable {
    /// The agent's display name.
    AgentName,
    /// When the agent dialled, in the center's time zone (`2026-05-04 11:30 CEST`).
    Time,
    /// The emergency number called (`911`).
    Number,
    /// The callback number leased to the agent, or words saying none was free.
    CallbackNumber,
    /// The civic address sent with the call, on one line, or words saying none was sent.
    Location,
}

impl Variable {
    pub const ALL: [Variable; 5] = [
        Variable::AgentName,
        Variable::Time,
        Variable::Number,
        Variable::CallbackNumber,
        Variable::Location,
    ];

    /// The name written between braces.
    pub const fn name(self) -> &'static str {
        match self {
            Variable::AgentName => "agent_name",
            Variable::Time => "time",
            Variable::Number => "number",
            Variable::CallbackNumber => "callback_number",
            Variable::Location => "location",
        }
    }

    pub fn parse(name: &str) -> Option<Variable> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// What the variable stands for, for people editing a template.
    pub const fn description(self) -> &'static str {
        match self {
            Variable::AgentName => "the agent's name",
            Variable::Time => "when the agent dialled, in the center's time zone",
            Variable::Number => "the emergency number called",
            Variable::CallbackNumber => "the callback number the emergency service can call back",
            Variable::Location => "the address sent to the emergency service",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Part {
    Text(String),
    Variable(Variable),
}

/// A checked piece of template text: literal text and variables.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Text {
    source: String,
    parts: Vec<Part>,
}

impl Text {
    fn parse(field: &'static str, source: &str, max: usize) -> Result<Text, TextError> {
        if source.trim().is_empty() {
            return Err(TextError::Empty { field });
        }
        if source.chars().count() > max {
            return Err(TextError::TooLong { field, max });
        }
        let invalid = |detail: String| TextError::Invalid { field, detail };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            if rest[at..].starts_with('}') {
                return Err(invalid(format!(
                    "a `}}` with no `{{` before it, after \"{}\"",
                    tail(&literal)
                )));
            }
            let after = &rest[at + 1..];
            let close = after
                .find(['{', '}'])
                .filter(|i| after[*i..].starts_with('}'));
            let Some(close) = close else {
                return Err(invalid(format!(
                    "a `{{` is not closed by `}}`, after \"{}\"",
                    tail(&literal)
                )));
            };
            let name = &after[..close];
            let variable = Variable::parse(name).ok_or_else(|| {
                invalid(format!(
                    "`{{{}}}` is not a variable; use {}",
                    name.chars().take(40).collect::<String>(),
                    Variable::ALL
                        .iter()
                        .map(|v| format!("{{{}}}", v.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Variable(variable));
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Text {
            source: source.to_owned(),
            parts,
        })
    }

    fn render(&self, values: &Values<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + 64);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Variable(variable) => out.push_str(&values.get(*variable)),
            }
        }
        out
    }
}

/// The last few characters of `text`, to say where in a template a mistake is.
fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(20)..].iter().collect()
}

/// The notification template: a subject (one line) and a body, both checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Template {
    subject: Text,
    body: Text,
}

impl Template {
    /// Checks a template: both parts present, the subject one line of at most `SUBJECT_MAX`
    /// characters, the body at most `BODY_MAX`, and braces only around known variables.
    pub fn parse(subject: &str, body: &str) -> Result<Template, TextError> {
        if subject.chars().any(char::is_control) {
            return Err(TextError::Invalid {
                field: "subject",
                detail: "the subject is one line, without control characters".into(),
            });
        }
        let subject = Text::parse("subject", subject.trim(), SUBJECT_MAX)?;
        if let Some(bad) = body
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(TextError::Invalid {
                field: "body",
                detail: format!("the body contains the control character {bad:?}"),
            });
        }
        let body = Text::parse("body", body, BODY_MAX)?;
        Ok(Template { subject, body })
    }

    /// The subject as written.
    pub fn subject(&self) -> &str {
        &self.subject.source
    }

    /// The body as written.
    pub fn body(&self) -> &str {
        &self.body.source
    }

    /// The subject and body with the call's values in place of the variables. The subject
    /// stays one line whatever the values hold.
    pub fn render(&self, values: &Values<'_>) -> (String, String) {
        let subject = self
            .subject
            .render(values)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        (subject, self.body.render(values))
    }
}

impl Default for Template {
    fn default() -> Self {
        Template::parse(
            "Emergency call: {agent_name} dialled {number}",
            "{agent_name} dialled the emergency number {number} at {time}.\n\
             \n\
             Callback number given to the emergency service: {callback_number}\n\
             Location sent: {location}\n\
             \n\
             You receive this because you are one of {agent_name}'s emergency contacts.\n\
             Switchboard sent it when the call was placed; it does not say how the call went.\n",
        )
        .expect("the default template is valid")
    }
}

/// The values a template is rendered with, for one emergency call.
#[derive(Clone, Debug)]
pub struct Values<'a> {
    pub agent_name: &'a str,
    /// When the agent dialled, written in the center's time zone (`format_time`).
    pub time: String,
    pub number: &'a str,
    /// `None` when every callback number was held and none could be leased.
    pub callback_number: Option<&'a str>,
    /// `None` when no address was sent.
    pub location: Option<&'a str>,
}

impl Values<'_> {
    fn get(&self, variable: Variable) -> String {
        match variable {
            Variable::AgentName => self.agent_name.to_owned(),
            Variable::Time => self.time.clone(),
            Variable::Number => self.number.to_owned(),
            Variable::CallbackNumber => self
                .callback_number
                .unwrap_or("none (no callback number was free)")
                .to_owned(),
            Variable::Location => self.location.unwrap_or("none was sent").to_owned(),
        }
    }

    /// Sample values, for a preview of a template being edited.
    pub fn sample() -> Values<'static> {
        Values {
            agent_name: "Alex Agent",
            time: "2026-05-04 11:30 CEST".into(),
            number: "911",
            callback_number: Some("15550190"),
            location: Some("12 Main St, Floor 3, Springfield IL 62701, US"),
        }
    }
}

/// A time as the notification writes it: in the center's time zone, to the minute, with the
/// zone's abbreviation (`2026-05-04 11:30 CEST`).
pub fn format_time(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Where the notification mail of one emergency call stands, as the emergency log shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum MailStatus {
    /// The agent has no emergency contacts: nobody was told.
    NoContacts,
    /// Stored as a job, not sent yet.
    Queued,
    /// Handed to the mail server (or written to the outbox).
    Sent,
    /// The last attempt failed (the log keeps its error); it is tried again until the retry
    /// policy gives up.
    Failed,
}

impl MailStatus {
    pub const ALL: [MailStatus; 4] = [
        MailStatus::NoContacts,
        MailStatus::Queued,
        MailStatus::Sent,
        MailStatus::Failed,
    ];

    /// The stable name used on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            MailStatus::NoContacts => "no_contacts",
            MailStatus::Queued => "queued",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<MailStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
