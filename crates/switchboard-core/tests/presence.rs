use crate::at;
use switchboard_core::presence::{Presence, PresenceState};
use switchboard_core::Name;

#[test]
fn forced_change_is_restored_to_the_status_before_it() {
    let t0 = at(2026, 1, 5, 9, 0);
    let mut state = PresenceState::new(t0);
    state.set(Presence::Available, t0);
    let change = state
        .force(Presence::DoNotDisturb, at(2026, 1, 5, 9, 5))
        .expect("a change");
    assert_eq!(change.from, Presence::Available);
    // A second forced change keeps the original status to restore.
    state.force(Presence::Busy, at(2026, 1, 5, 9, 6));
    let restored = state.restore(at(2026, 1, 5, 9, 10)).expect("a change back");
    assert_eq!(restored.to, Presence::Available);
    assert_eq!(state.current(), &Presence::Available);
    assert_eq!(state.since(), at(2026, 1, 5, 9, 10));
    assert!(
        state.restore(at(2026, 1, 5, 9, 11)).is_none(),
        "nothing left to restore"
    );
}

#[test]
fn a_chosen_status_ends_the_forced_one() {
    let t0 = at(2026, 1, 5, 9, 0);
    let mut state = PresenceState::new(t0);
    state.set(Presence::Break, t0);
    state.force(Presence::DoNotDisturb, t0);
    state.set(Presence::Offline, t0);
    assert!(state.forced_from().is_none());
    assert!(state.restore(t0).is_none());
    assert_eq!(state.current(), &Presence::Offline);
}

#[test]
fn presence_parses_its_wire_form_and_only_that() {
    for text in [
        "available",
        "busy",
        "break",
        "do_not_disturb",
        "offline",
        "custom:Training",
    ] {
        let presence = Presence::parse(text).expect(text);
        assert_eq!(presence.to_string(), text);
    }
    assert_eq!(
        Presence::parse("custom:Lunch").unwrap(),
        Presence::Custom(Name::parse("x", "Lunch").unwrap())
    );
    for bad in ["", "Available", "away", "custom:", "custom:a>b"] {
        assert!(Presence::parse(bad).is_err(), "{bad:?} should be refused");
    }
    assert!(Presence::Available.is_routable());
    assert!(!Presence::Custom(Name::parse("x", "Training").unwrap()).is_routable());
}
