//! The shell of emergency calls made by agents (EMG-1..9): placing one the dialling service
//! planned, from the adapter or from the agent's SIP phone, and what happens beside it and
//! after it. Nothing slow stands before the INVITE: Do Not Disturb, the emergency log, the
//! notification mail and the supervisors' alert start once the engine has the call, and never
//! fail it.

use crate::app::AppState;
use crate::voice::VoiceError;
use chrono::{DateTime, Utc};
use switchboard_call::{EmergencyDial, PhoneRefusal};
use switchboard_core::voice::{CallRecord, Emergency};
use switchboard_core::{Actor, CallId, Presence, User, UserId};
use switchboard_services::dialing::{DialError, EmergencyPlan};
use switchboard_services::emergency::EmergencyPlaced;

/// How the engine is to place the call `plan` describes for `user`: the callback number and
/// the agent's location as a PIDF-LO.
fn prepare(app: &AppState, user: &User, plan: &EmergencyPlan, now: DateTime<Utc>) -> EmergencyDial {
    let voice = &app.config.voice;
    let host = voice
        .public_ip
        .or(voice.sip.map(|a| a.ip()))
        .map_or_else(|| "switchboard.invalid".to_owned(), |ip| ip.to_string());
    EmergencyDial {
        number: plan.entry.number.clone(),
        trunk: plan.trunk,
        callback: plan.lease.lease().map(|l| l.number.clone()),
        location: Some(plan.location.pidf_lo(
            &format!("pres:{}@{host}", user.username),
            &user.id.to_string(),
            now,
        )),
    }
}

/// What follows an emergency call the engine has taken, beside it: the engine learns the
/// lease, the agent goes to Do Not Disturb, the log, the mail and the alert.
fn beside(app: &AppState, agent: UserId, call: CallId, plan: EmergencyPlan, now: DateTime<Utc>) {
    let app = app.clone();
    tokio::spawn(async move {
        // The engine learns the lease first, so a callback a moment later reaches the agent.
        match app.services.dialing.callback_leases().await {
            Ok(leases) => {
                let _ = app.voice.callbacks(leases);
            }
            Err(error) => tracing::error!(%error, "could not read the callback leases"),
        }
        if let Err(error) = app
            .services
            .contacts
            .force_presence(agent, Presence::DoNotDisturb)
            .await
        {
            tracing::error!(%error, "could not set Do Not Disturb for an emergency call");
        }
        app.services
            .emergency
            .placed(EmergencyPlaced {
                call,
                agent,
                at: now,
                dialled: plan.recognised.dialled,
                number: plan.entry.number,
                test: plan.entry.test,
                callback: plan.lease.lease().map(|l| l.number.clone()),
                location: Some(plan.location.one_line()),
            })
            .await;
    });
}

/// Places the emergency call `plan` describes for `user`, from the adapter `from` (or every
/// device of theirs).
pub async fn dial(
    app: &AppState,
    user: &User,
    plan: EmergencyPlan,
    from: Option<u64>,
    now: DateTime<Utc>,
) -> Result<CallRecord, VoiceError> {
    let dial = prepare(app, user, &plan, now);
    let record = app
        .voice
        .dial(user.id, plan.recognised.dialled.clone(), from, Some(dial))
        .await?;
    beside(app, user.id, record.id, plan, now);
    Ok(record)
}

/// Decides on a number `agent` dialled from their SIP phone: an emergency number they may
/// call (placed at once, with what follows beside it), a number their profile and the
/// dialling policy allow, or a refusal with the reason for the phone's display.
pub async fn phone_dialled(
    app: &AppState,
    call: CallId,
    agent: UserId,
    number: &str,
) -> Result<Option<EmergencyDial>, PhoneRefusal> {
    let refusal = |status: u16, warning: String| PhoneRefusal { status, warning };
    let store = &app.services.store;
    let user = store
        .get_user(agent)
        .await
        .map_err(|_| refusal(403, "this phone's user is gone".into()))?;
    if user.disabled {
        return Err(refusal(403, "this phone's user is disabled".into()));
    }
    let role = store
        .get_role(&user.role)
        .await
        .map_err(|e| refusal(500, format!("cannot read your role: {e}")))?;
    let actor = Actor::of(&user, role);
    let now = Utc::now();
    let why = |error: DialError| match error {
        DialError::Store(e) => {
            refusal(500, format!("the center cannot check that number now: {e}"))
        }
        other => refusal(403, other.to_string()),
    };
    let typed = switchboard_core::dialing::strip_separators(number);
    match app
        .services
        .dialing
        .emergency(&actor, &user, &typed, now)
        .await
        .map_err(why)?
    {
        Some(plan) => {
            let dial = prepare(app, &user, &plan, now);
            beside(app, agent, call, plan, now);
            Ok(Some(dial))
        }
        None => {
            app.services
                .dialing
                .check_dial_out(&actor, &user, &typed)
                .await
                .map_err(why)?;
            Ok(None)
        }
    }
}

/// An agent's emergency call ended: their presence goes back to what it was, unless someone
/// changed it meanwhile (EMG-8), and the log says when it ended.
pub fn ended(app: &AppState, record: &CallRecord) {
    if record.emergency != Some(Emergency::Outgoing) {
        return;
    }
    let (Some(agent), Some(at)) = (record.agent, record.ended_at) else {
        return;
    };
    let (app, call) = (app.clone(), record.id);
    tokio::spawn(async move {
        if let Err(error) = app.services.contacts.restore_presence(agent).await {
            tracing::error!(%error, "could not give back the presence an emergency call replaced");
        }
        app.services.emergency.ended(call, at).await;
    });
}
