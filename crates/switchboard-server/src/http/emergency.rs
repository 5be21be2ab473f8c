//! Emergency calls' settings over HTTP: the registry of emergency numbers with their direct
//! routes, sites with their civic addresses, and agents' own addresses, set by an admin for
//! them or by the agent in the adapter. An agent's location is their own address if set, else
//! their site's; without one they cannot dial an emergency number. The callback pool is a
//! center setting (`/api/v1/settings`), the emergency flag a trunk's (`/api/v1/voice/trunks`).

use super::directory::{may_view, user_target};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use switchboard_core::emergency::location::{AddressInput, CivicAddress, SetBy, Site};
use switchboard_core::emergency::{EmergencyNumber, Registry};
use switchboard_core::voice::TrunkDirection;
use switchboard_core::{Name, Permission, SiteId, Target, TextError, TrunkId, UserId};
use switchboard_services::config::ConfigArea;
use switchboard_store::StoreError;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// A refused emergency setting, said plainly: `state: use the two-letter USPS code…` rather
/// than the generic wording for characters that are not allowed.
pub(super) fn refused(error: TextError) -> ApiError {
    let message = match &error {
        TextError::Invalid { field, detail } => format!("{field}: {detail}"),
        other => other.to_string(),
    };
    ApiError::bad_request("invalid_field", message)
}

/// The most emergency numbers a center keeps.
const MAX_NUMBERS: usize = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_numbers, put_numbers))
        .routes(routes!(list_sites, create_site))
        .routes(routes!(get_site, update_site, delete_site))
        .routes(routes!(
            get_user_address,
            put_user_address,
            delete_user_address
        ))
        .routes(routes!(get_my_address, put_my_address, delete_my_address))
}

/// One emergency number of one country.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyNumberView {
    /// `US`, `CA`, `PR`, `GB` (or `UK`) or `DK`.
    pub country: String,
    /// 2 to 6 digits, as dialled (`911`, `112`).
    pub number: String,
    /// A carriers' test number (933): handled the same way, marked as a test.
    #[serde(default)]
    pub test: bool,
    /// A direct-routing rule: calls to this number leave through this outbound trunk rather
    /// than through a trunk allowed to carry emergency calls.
    #[serde(default)]
    pub trunk_id: Option<String>,
}

/// The emergency numbers the center recognises, in order.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyNumbersView {
    pub numbers: Vec<EmergencyNumberView>,
}

fn registry_view(registry: &Registry) -> EmergencyNumbersView {
    EmergencyNumbersView {
        numbers: registry
            .numbers
            .iter()
            .map(|n| EmergencyNumberView {
                country: n.country.as_str().to_owned(),
                number: n.number.clone(),
                test: n.test,
                trunk_id: n.trunk.map(|t| t.to_string()),
            })
            .collect(),
    }
}

fn settings_editor(current: &CurrentUser) -> ApiResult<()> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)
}

/// The emergency numbers the center recognises, per country, with their direct routes
/// (admins).
#[utoipa::path(get, path = "/api/v1/emergency/numbers", tag = "emergency", security(("session" = [])),
    responses((status = 200, body = EmergencyNumbersView), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn get_numbers(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<EmergencyNumbersView>> {
    settings_editor(&current)?;
    Ok(Json(registry_view(
        &app.services.store.emergency_registry().await?,
    )))
}

/// Replaces the emergency numbers (admins). Each row is checked (a supported country, 2 to 6
/// digits, a direct route only through an outbound trunk that exists), and no number may be
/// listed twice for a country; a refused list changes nothing. Audited.
#[utoipa::path(put, path = "/api/v1/emergency/numbers", tag = "emergency", security(("session" = [])), request_body = EmergencyNumbersView,
    responses((status = 200, body = EmergencyNumbersView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn put_numbers(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<EmergencyNumbersView>,
) -> ApiResult<Json<EmergencyNumbersView>> {
    settings_editor(&current)?;
    if input.numbers.len() > MAX_NUMBERS {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("a center keeps at most {MAX_NUMBERS} emergency numbers"),
        ));
    }
    let trunks = app.services.store.list_trunks().await?;
    let mut numbers = Vec::with_capacity(input.numbers.len());
    for (i, row) in input.numbers.iter().enumerate() {
        let at_row = |message: String| {
            ApiError::bad_request("invalid_field", format!("row {}: {message}", i + 1))
        };
        let trunk = match row.trunk_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let id = TrunkId::parse(text).map_err(|_| {
                    at_row(format!(
                        "`{}` is not a trunk id",
                        text.chars().take(64).collect::<String>()
                    ))
                })?;
                let trunk = trunks
                    .iter()
                    .find(|t| t.id == id)
                    .ok_or_else(|| at_row(format!("trunk {id} does not exist")))?;
                if trunk.direction != TrunkDirection::Outbound {
                    return Err(at_row(format!(
                        "trunk {} is not an outbound trunk",
                        trunk.name
                    )));
                }
                Some(id)
            }
        };
        let number = EmergencyNumber::new(&row.country, &row.number, row.test, trunk)
            .map_err(|e| at_row(refused(e).message))?;
        numbers.push(number);
    }
    let registry = Registry { numbers };
    registry.check().map_err(refused)?;
    app.services.store.set_emergency_registry(&registry).await?;
    app.services.config.changed(ConfigArea::Emergency).await?;
    let summary = registry
        .numbers
        .iter()
        .map(|n| {
            format!(
                "{} {}{}{}",
                n.country,
                n.number,
                if n.test { " (test)" } else { "" },
                n.trunk.map(|t| format!(" via {t}")).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.actor.user_id),
            "settings_changed",
            Some("emergency numbers".into()),
            summary,
        )
        .await;
    Ok(Json(registry_view(&registry)))
}

/// A civic address's fields (RFC 5139). Country, city, street and house number are needed, and
/// the state or province in the United States and Canada (two-letter codes).
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AddressBody {
    /// `US`, `CA`, `PR`, `GB` or `DK`.
    pub country: String,
    /// State, province or region (`IL`, `ON`).
    pub state: String,
    pub city: String,
    pub street: String,
    /// House number.
    pub number: String,
    pub postcode: String,
    pub building: String,
    pub floor: String,
    pub room: String,
    /// `Manual` (default) or `DHCP`: how the address was obtained.
    pub method: String,
}

impl AddressBody {
    fn parse(&self) -> ApiResult<CivicAddress> {
        CivicAddress::parse(&AddressInput {
            country: self.country.clone(),
            state: self.state.clone(),
            city: self.city.clone(),
            street: self.street.clone(),
            number: self.number.clone(),
            postcode: self.postcode.clone(),
            building: self.building.clone(),
            floor: self.floor.clone(),
            room: self.room.clone(),
            method: self.method.clone(),
        })
        .map_err(refused)
    }
}

fn address_body(address: &CivicAddress) -> AddressBody {
    let input = address.input();
    AddressBody {
        country: input.country,
        state: input.state,
        city: input.city,
        street: input.street,
        number: input.number,
        postcode: input.postcode,
        building: input.building,
        floor: input.floor,
        room: input.room,
        method: input.method,
    }
}

#[derive(Serialize, ToSchema)]
pub struct SiteView {
    pub id: String,
    pub name: String,
    pub address: AddressBody,
    /// The address on one line, for people.
    pub one_line: String,
}

fn site_view(site: &Site) -> SiteView {
    SiteView {
        id: site.id.to_string(),
        name: site.name.as_str().to_owned(),
        address: address_body(&site.address),
        one_line: site.address.one_line(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteInput {
    pub name: String,
    pub address: AddressBody,
}

fn parse_site_id(text: &str) -> ApiResult<SiteId> {
    SiteId::parse(text).map_err(|_| ApiError::not_found("site"))
}

/// Sites agents work at, with their civic addresses (everyone signed in: the user form picks
/// from them).
#[utoipa::path(get, path = "/api/v1/sites", tag = "emergency", security(("session" = [])),
    responses((status = 200, body = [SiteView]), (status = 401, body = super::error::ErrorBody)))]
async fn list_sites(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Vec<SiteView>>> {
    Ok(Json(
        app.services
            .store
            .list_sites()
            .await?
            .iter()
            .map(site_view)
            .collect(),
    ))
}

/// Adds a site (admins). The address is validated; a name is used once. Audited.
#[utoipa::path(post, path = "/api/v1/sites", tag = "emergency", security(("session" = [])), request_body = SiteInput,
    responses((status = 201, body = SiteView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn create_site(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<SiteInput>,
) -> ApiResult<(StatusCode, Json<SiteView>)> {
    settings_editor(&current)?;
    let site = Site {
        id: SiteId::from_uuid(Uuid::now_v7()),
        name: Name::parse("name", &input.name)?,
        address: input.address.parse()?,
    };
    app.services.store.create_site(&site).await?;
    app.services.config.changed(ConfigArea::Emergency).await?;
    audit_site(&app, &current, &site, "added").await;
    Ok((StatusCode::CREATED, Json(site_view(&site))))
}

async fn audit_site(app: &AppState, current: &CurrentUser, site: &Site, what: &str) {
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.actor.user_id),
            "settings_changed",
            Some(format!("site {}", site.id)),
            format!("{what}: {}, {}", site.name, site.address.one_line()),
        )
        .await;
}

/// One site.
#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "emergency", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = SiteView), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn get_site(
    State(app): State<AppState>,
    _current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SiteView>> {
    let site = app.services.store.get_site(parse_site_id(&id)?).await?;
    Ok(Json(site_view(&site)))
}

/// Changes a site's name and address (admins). Audited.
#[utoipa::path(put, path = "/api/v1/sites/{id}", tag = "emergency", security(("session" = [])), params(("id" = String, Path)), request_body = SiteInput,
    responses((status = 200, body = SiteView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody)))]
async fn update_site(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<SiteInput>,
) -> ApiResult<Json<SiteView>> {
    settings_editor(&current)?;
    let site = Site {
        id: parse_site_id(&id)?,
        name: Name::parse("name", &input.name)?,
        address: input.address.parse()?,
    };
    app.services.store.update_site(&site).await?;
    app.services.config.changed(ConfigArea::Emergency).await?;
    audit_site(&app, &current, &site, "changed").await;
    Ok(Json(site_view(&site)))
}

/// Removes a site (admins); refused while users work there. Audited.
#[utoipa::path(delete, path = "/api/v1/sites/{id}", tag = "emergency", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn delete_site(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    settings_editor(&current)?;
    let site = app.services.store.get_site(parse_site_id(&id)?).await?;
    app.services.store.delete_site(site.id).await?;
    app.services.config.changed(ConfigArea::Emergency).await?;
    audit_site(&app, &current, &site, "removed").await;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a user is for an emergency call, and why.
#[derive(Serialize, ToSchema)]
pub struct LocationView {
    /// `own` (the user's own address), `site` (their site's) or `none` (they cannot dial an
    /// emergency number until one is set).
    pub source: String,
    /// The effective address, if any.
    pub address: Option<AddressBody>,
    /// The effective address on one line.
    pub one_line: Option<String>,
    /// For an own address: `admin` or `agent`, who set it.
    pub set_by: Option<String>,
    /// The user's site, whether or not their own address overrides it.
    pub site_id: Option<String>,
    pub site_name: Option<String>,
}

async fn location_view(app: &AppState, user: UserId) -> ApiResult<LocationView> {
    let store = &app.services.store;
    let site = match store.get_user(user).await?.site {
        Some(id) => match store.get_site(id).await {
            Ok(site) => Some(site),
            Err(StoreError::NotFound(_)) => None,
            Err(other) => return Err(other.into()),
        },
        None => None,
    };
    let own = store.agent_address(user).await?;
    let (source, address, set_by) = match (&own, &site) {
        (Some((address, set_by)), _) => ("own", Some(address), Some(set_by.as_str())),
        (None, Some(site)) => ("site", Some(&site.address), None),
        (None, None) => ("none", None, None),
    };
    Ok(LocationView {
        source: source.into(),
        address: address.map(address_body),
        one_line: address.map(CivicAddress::one_line),
        set_by: set_by.map(str::to_owned),
        site_id: site.as_ref().map(|s| s.id.to_string()),
        site_name: site.as_ref().map(|s| s.name.as_str().to_owned()),
    })
}

/// A user whose address the actor may keep: one in their reach as a user editor.
async fn editable_user(app: &AppState, current: &CurrentUser, id: &str) -> ApiResult<UserId> {
    let id = UserId::parse(id).map_err(|_| ApiError::not_found("user"))?;
    let user = app.services.store.get_user(id).await?;
    if !may_view(&current.actor, &user) {
        return Err(ApiError::not_found("user"));
    }
    require(&current.actor, Permission::UsersEdit, user_target(&user))?;
    Ok(id)
}

/// A user's location for emergency calls (user editors).
#[utoipa::path(get, path = "/api/v1/users/{id}/address", tag = "emergency", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = LocationView), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
async fn get_user_address(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LocationView>> {
    let id = editable_user(&app, &current, &id).await?;
    Ok(Json(location_view(&app, id).await?))
}

/// Sets a user's own address, which wins over their site's (user editors). Audited.
#[utoipa::path(put, path = "/api/v1/users/{id}/address", tag = "emergency", security(("session" = [])), params(("id" = String, Path)), request_body = AddressBody,
    responses((status = 200, body = LocationView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn put_user_address(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<AddressBody>,
) -> ApiResult<Json<LocationView>> {
    let id = editable_user(&app, &current, &id).await?;
    let address = input.parse()?;
    set_address(&app, &current, id, Some((&address, SetBy::Admin))).await?;
    Ok(Json(location_view(&app, id).await?))
}

/// Removes a user's own address; their site's applies again (user editors). Audited.
#[utoipa::path(delete, path = "/api/v1/users/{id}/address", tag = "emergency", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = LocationView), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
async fn delete_user_address(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LocationView>> {
    let id = editable_user(&app, &current, &id).await?;
    set_address(&app, &current, id, None).await?;
    Ok(Json(location_view(&app, id).await?))
}

/// Stores or clears a user's own address, announces and audits it.
async fn set_address(
    app: &AppState,
    current: &CurrentUser,
    user: UserId,
    address: Option<(&CivicAddress, SetBy)>,
) -> ApiResult<()> {
    let store = &app.services.store;
    let detail = match address {
        Some((address, set_by)) => {
            store.set_agent_address(user, address, set_by).await?;
            format!("set by {}: {}", set_by.as_str(), address.one_line())
        }
        None => {
            store.clear_agent_address(user).await?;
            "cleared".to_owned()
        }
    };
    app.services.config.changed(ConfigArea::Emergency).await?;
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.actor.user_id),
            "address_changed",
            Some(format!("user {user}")),
            detail,
        )
        .await;
    Ok(())
}

/// The signed-in user's location for emergency calls: their own address, their site's, or
/// none.
#[utoipa::path(get, path = "/api/v1/me/address", tag = "emergency", security(("session" = [])),
    responses((status = 200, body = LocationView), (status = 401, body = super::error::ErrorBody)))]
async fn get_my_address(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<LocationView>> {
    Ok(Json(location_view(&app, current.user.id).await?))
}

/// Sets the signed-in user's own address (working from home, say); it wins over their site's.
#[utoipa::path(put, path = "/api/v1/me/address", tag = "emergency", security(("session" = [])), request_body = AddressBody,
    responses((status = 200, body = LocationView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody)))]
async fn put_my_address(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<AddressBody>,
) -> ApiResult<Json<LocationView>> {
    let address = input.parse()?;
    set_address(
        &app,
        &current,
        current.user.id,
        Some((&address, SetBy::Agent)),
    )
    .await?;
    Ok(Json(location_view(&app, current.user.id).await?))
}

/// Removes the signed-in user's own address; their site's applies again.
#[utoipa::path(delete, path = "/api/v1/me/address", tag = "emergency", security(("session" = [])),
    responses((status = 200, body = LocationView), (status = 401, body = super::error::ErrorBody)))]
async fn delete_my_address(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<LocationView>> {
    set_address(&app, &current, current.user.id, None).await?;
    Ok(Json(location_view(&app, current.user.id).await?))
}
