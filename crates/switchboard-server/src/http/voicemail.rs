//! Voicemail over HTTP (AHD-7, AHD-3): an agent's voicemails (what the adapter shows after a
//! reconnect), a voicemail's audio (its WAV, for the agent it is with or a user with
//! `recordings_access`), Done (the contact ends and the call's ticket goes to the CRM with the
//! audio), and, for mobile and web clients before sign-in, what each chat queue offers by
//! phone (the number to call and whether voicemail is available now).

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, CurrentUser};
use crate::app::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::voice::RecordingStatus;
use switchboard_core::{Channel, Permission, QueueKind, QueueTree, RecordingId, Target};
use switchboard_store::{StoreError, Voicemail};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_voicemails))
        .routes(routes!(audio))
        .routes(routes!(done))
        .routes(routes!(phone_options))
}

/// A voicemail with the agent it was routed to.
#[derive(Serialize, ToSchema)]
pub struct VoicemailView {
    pub voicemail_id: String,
    /// Its contact (routed like a call).
    pub contact_id: String,
    /// The caller's number.
    pub caller: String,
    /// The closed queue's path ("Sales > Renewals").
    pub queue_path: String,
    pub duration_ms: u64,
    pub left_at: DateTime<Utc>,
    /// Where its WAV is served.
    pub audio_url: String,
}

fn view(contact: switchboard_core::ContactId, voicemail: &Voicemail) -> VoicemailView {
    VoicemailView {
        voicemail_id: voicemail.recording.to_string(),
        contact_id: contact.to_string(),
        caller: voicemail.caller.clone(),
        queue_path: voicemail.queue_path.clone(),
        duration_ms: voicemail.duration_ms,
        left_at: voicemail.created_at,
        audio_url: crate::voicemail::audio_url(voicemail),
    }
}

/// The voicemails routed to the signed-in agent and not yet done, oldest first.
#[utoipa::path(get, path = "/api/v1/me/voicemails", tag = "voice", security(("session" = [])),
    responses((status = 200, body = [VoicemailView])))]
async fn my_voicemails(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<VoicemailView>>> {
    let found = crate::voicemail::of_agent(&app, current.user.id).await?;
    Ok(Json(found.iter().map(|(c, v)| view(*c, v)).collect()))
}

/// The voicemail `id`, if the user may hear it: the agent it is with now, or a user who may
/// play recordings. Anyone else is told it does not exist.
async fn readable(app: &AppState, current: &CurrentUser, id: &str) -> ApiResult<Voicemail> {
    let id = RecordingId::parse(id).map_err(|_| ApiError::not_found("voicemail"))?;
    let voicemail = match app.services.store.get_voicemail(id).await {
        Ok(voicemail) => voicemail,
        Err(StoreError::NotFound(_)) => return Err(ApiError::not_found("voicemail")),
        Err(error) => return Err(error.into()),
    };
    let mine = match voicemail.contact {
        Some(contact) => app
            .services
            .contacts
            .open_contact(contact)
            .await
            .is_some_and(|c| c.agent == Some(current.user.id)),
        None => false,
    };
    if mine
        || current
            .actor
            .can(Permission::RecordingsAccess, Target::Center)
    {
        Ok(voicemail)
    } else {
        Err(ApiError::not_found("voicemail"))
    }
}

/// The voicemail's audio: a WAV file (8 kHz, 16-bit, stereo: the caller left, silence right).
#[utoipa::path(get, path = "/api/v1/voicemails/{id}/audio", tag = "voice", security(("session" = [])),
    params(("id" = String, Path)),
    responses((status = 200, content_type = "audio/wav", description = "the WAV file"),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn audio(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let voicemail = readable(&app, &current, &id).await?;
    match app.services.store.get_recording(voicemail.recording).await {
        Ok(recording) if recording.status == RecordingStatus::Recording => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "recording_in_progress",
                "the voicemail's file is still being finished; try again in a moment",
            ))
        }
        Ok(_) => {}
        // Sent to the CRM and deleted here, or past retention.
        Err(StoreError::NotFound(_)) => return Err(ApiError::not_found("voicemail audio")),
        Err(error) => return Err(error.into()),
    }
    let (size, file) = app
        .recordings
        .open_reader(&voicemail.blob_key)
        .await
        .map_err(|e| ApiError::from_blob(e, "voicemail audio"))?;
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; 64 * 1024];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(read) => {
                chunk.truncate(read);
                Some((Ok::<_, std::io::Error>(chunk), file))
            }
            Err(error) => Some((Err(error), file)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The agent is done with the voicemail: its contact ends, and the call's ticket goes to the
/// CRM with the audio attached.
#[utoipa::path(post, path = "/api/v1/voicemails/{id}/done", tag = "voice", security(("session" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn done(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = RecordingId::parse(&id).map_err(|_| ApiError::not_found("voicemail"))?;
    let voicemail = match app.services.store.get_voicemail(id).await {
        Ok(voicemail) => voicemail,
        Err(StoreError::NotFound(_)) => return Err(ApiError::not_found("voicemail")),
        Err(error) => return Err(error.into()),
    };
    let Some(contact) = voicemail.contact else {
        return Err(ApiError::not_found("voicemail"));
    };
    match app.services.contacts.open_contact(contact).await {
        Some(open) if open.agent == Some(current.user.id) => {}
        Some(_) => return Err(ApiError::not_found("voicemail")),
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_ended",
                "this voicemail is already done",
            ))
        }
    }
    app.services
        .contacts
        .end(contact, "voicemail done".into())
        .await?;
    crate::crm::enqueue(
        &app.services.jobs,
        crate::crm::Event::CallEnded {
            call: voicemail.call,
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PhoneOptionsQuery {
    /// `mobile` (default) or `web`.
    pub channel: Option<String>,
}

/// A chat queue and what it offers by phone.
#[derive(Serialize, ToSchema)]
pub struct PhoneOptionsView {
    pub queue_id: String,
    /// The queue's path ("Billing > Refunds").
    pub path: String,
    /// Whether the queue is in its hours now.
    pub open: bool,
    /// The number to call instead (the voice queue of the same path's, else the IVR's);
    /// null when the center has none.
    pub phone_number: Option<String>,
    /// Whether a caller of that number can leave a voicemail now (the voice queue is closed
    /// and takes voicemail).
    pub voicemail: bool,
}

/// What each leaf queue of the mobile (or web) channel offers by phone now: for the mobile
/// SDK's after-hours options (no sign-in).
#[utoipa::path(get, path = "/chat/v1/phone-options", tag = "chat", params(PhoneOptionsQuery),
    responses((status = 200, body = [PhoneOptionsView]), (status = 400, body = super::error::ErrorBody)))]
async fn phone_options(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<PhoneOptionsQuery>,
) -> ApiResult<Json<Vec<PhoneOptionsView>>> {
    let channel = Channel::parse(query.channel.as_deref().unwrap_or("mobile"))?;
    if !matches!(channel, Channel::Mobile | Channel::Web) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "channel must be mobile or web",
        ));
    }
    let store = app.services.store.as_ref();
    let hours = super::after_hours::load(store).await?;
    let nodes = store.list_queues().await?;
    let dids = store.list_dids().await?;
    let tree = QueueTree::new(nodes.clone())
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "invalid_tree", e.to_string()))?;
    let now = app.config.wall_clock.now();
    let mut views: Vec<PhoneOptionsView> = nodes
        .iter()
        .filter(|n| n.channel == channel && n.kind == QueueKind::Leaf)
        .map(|n| {
            let option = switchboard_core::voicemail::phone_option(&hours, &tree, &dids, n.id, now);
            PhoneOptionsView {
                queue_id: n.id.to_string(),
                path: tree.path(n.id).unwrap_or_default(),
                open: hours.is_open(n.id, channel, None, now),
                phone_number: option.as_ref().map(|o| o.number.as_str().to_owned()),
                voicemail: option.is_some_and(|o| o.voicemail),
            }
        })
        .collect();
    views.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Json(views))
}
