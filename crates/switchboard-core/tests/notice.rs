//! The emergency call notification's template (EMG-7): what it refuses, and how it renders.

use switchboard_core::emergency::notice::*;
use switchboard_core::hours::parse_time_zone;
use switchboard_core::TextError;

fn refused(subject: &str, body: &str) -> String {
    match Template::parse(subject, body) {
        Ok(template) => panic!("accepted {template:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn every_variable_renders_with_the_calls_values() {
    let template = Template::parse(
        "{agent_name} called {number}",
        "At {time} {agent_name} dialled {number}; call back on {callback_number}; at {location}.",
    )
    .unwrap();
    let zone = parse_time_zone("America/Chicago").unwrap();
    let values = Values {
        agent_name: "Dana Scully",
        time: format_time(crate::at(2026, 5, 4, 14, 5), zone),
        number: "911",
        callback_number: Some("15550190"),
        location: Some("12 Main St, Springfield IL 62701, US"),
    };
    assert_eq!(values.time, "2026-05-04 09:05 CDT");
    let (subject, body) = template.render(&values);
    assert_eq!(subject, "Dana Scully called 911");
    assert_eq!(
        body,
        "At 2026-05-04 09:05 CDT Dana Scully dialled 911; call back on 15550190; \
         at 12 Main St, Springfield IL 62701, US."
    );
    // A template is kept as written.
    assert_eq!(template.subject(), "{agent_name} called {number}");
    assert!(template.body().starts_with("At {time}"));
}

#[test]
fn missing_values_are_said_in_words() {
    let template = Template::parse("s", "{callback_number} / {location}").unwrap();
    let values = Values {
        callback_number: None,
        location: None,
        ..Values::sample()
    };
    assert_eq!(
        template.render(&values).1,
        "none (no callback number was free) / none was sent"
    );
}

#[test]
fn the_subject_stays_one_line_whatever_the_values() {
    let template = Template::parse("{location}", "b").unwrap();
    let values = Values {
        location: Some("line one\nline two"),
        ..Values::sample()
    };
    assert_eq!(template.render(&values).0, "line one line two");
}

#[test]
fn the_default_template_uses_every_variable() {
    let template = Template::default();
    let text = format!("{} {}", template.subject(), template.body());
    for variable in Variable::ALL {
        assert!(
            text.contains(&format!("{{{}}}", variable.name())),
            "{variable:?}"
        );
    }
    let (subject, body) = template.render(&Values::sample());
    assert_eq!(subject, "Emergency call: Alex Agent dialled 911");
    assert!(body.contains("Callback number given to the emergency service: 15550190"));
    assert!(!body.contains('{'));
}

#[test]
fn unknown_variables_and_unbalanced_braces_are_refused_with_the_reason() {
    let unknown = refused("Call from {agent}", "body");
    assert!(unknown.contains("`{agent}` is not a variable"), "{unknown}");
    assert!(unknown.contains("{agent_name}, {time}, {number}, {callback_number}, {location}"));
    let open = refused("subject", "Dialled {number at {time}");
    assert!(open.contains("is not closed"), "{open}");
    assert!(open.starts_with("body"), "{open}");
    let unclosed_end = refused("subject", "Dialled {number");
    assert!(unclosed_end.contains("is not closed"), "{unclosed_end}");
    let stray = refused("Dialled} {number}", "body");
    assert!(stray.contains("no `{` before it"), "{stray}");
    assert!(stray.starts_with("subject"), "{stray}");
    assert!(refused("{}", "body").contains("`{}` is not a variable"));
}

#[test]
fn lengths_and_lines_are_limited() {
    assert_eq!(
        Template::parse("  ", "body"),
        Err(TextError::Empty { field: "subject" })
    );
    assert_eq!(
        Template::parse("s", ""),
        Err(TextError::Empty { field: "body" })
    );
    assert_eq!(
        Template::parse(&"s".repeat(SUBJECT_MAX + 1), "b"),
        Err(TextError::TooLong {
            field: "subject",
            max: SUBJECT_MAX
        })
    );
    assert!(Template::parse(&"s".repeat(SUBJECT_MAX), "b").is_ok());
    assert_eq!(
        Template::parse("s", &"b".repeat(BODY_MAX + 1)),
        Err(TextError::TooLong {
            field: "body",
            max: BODY_MAX
        })
    );
    assert!(refused("two\nlines", "b").contains("one line"));
    assert!(refused("s", "bell \u{7}").contains("control character"));
    // New lines and tabs belong in a body.
    assert!(Template::parse("s", "a\r\n\tb").is_ok());
}

#[test]
fn mail_statuses_have_stable_names() {
    for status in MailStatus::ALL {
        assert_eq!(MailStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(MailStatus::parse("lost"), None);
    assert_eq!(MailStatus::NoContacts.as_str(), "no_contacts");
}
