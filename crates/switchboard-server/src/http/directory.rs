//! Users, teams and roles.

use super::auth::{check_password_policy, hash_password};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::require;
use super::wire::{
    NewRole, NewUser, RoleChanges, RoleView, SetPassword, TeamInput, TeamView, UserChanges,
    UserView,
};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use switchboard_core::presence::PresenceState;
use switchboard_core::{
    Actor, CapacityProfileId, Email, EmailList, Language, Name, Permission, PermissionSet, QueueId,
    Role, RoleKey, RoleScope, SiteId, Target, Team, TeamId, User, UserId, Username,
};
use switchboard_services::config::ConfigArea;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_user_password))
        .routes(routes!(list_teams, create_team))
        .routes(routes!(update_team, delete_team))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(update_role, delete_role))
}

pub fn parse_ids<T: Ord>(
    texts: &[String],
    parse: fn(&str) -> Result<T, switchboard_core::IdError>,
) -> ApiResult<Vec<T>> {
    let mut ids: Vec<T> = texts.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

pub fn parse_languages(texts: &[String]) -> ApiResult<Vec<Language>> {
    let mut list: Vec<Language> = texts
        .iter()
        .map(|t| Language::parse(t))
        .collect::<Result<_, _>>()?;
    list.sort();
    list.dedup();
    Ok(list)
}

/// The site a user is placed on, which must exist.
async fn site_of(app: &AppState, text: Option<&str>) -> ApiResult<Option<SiteId>> {
    let Some(text) = text else { return Ok(None) };
    let id = SiteId::parse(text)?;
    match app.services.store.get_site(id).await {
        Ok(_) => Ok(Some(id)),
        Err(switchboard_store::StoreError::NotFound(_)) => Err(ApiError::bad_request(
            "invalid_field",
            format!("site `{id}` does not exist"),
        )),
        Err(other) => Err(other.into()),
    }
}

pub(super) fn user_target(user: &User) -> Target<'_> {
    Target::User {
        id: user.id,
        teams: &user.teams,
    }
}

/// Whether the actor may see this user's record: themselves, or someone in their reach as a
/// user editor or monitor.
pub(super) fn may_view(actor: &Actor, user: &User) -> bool {
    user.id == actor.user_id
        || [
            Permission::UsersEdit,
            Permission::MonitorCallsListen,
            Permission::MonitorChatsView,
        ]
        .into_iter()
        .any(|p| actor.can(p, user_target(user)))
}

/// Checks that the actor may give `user` their role, teams and managed teams.
async fn check_assignment(app: &AppState, actor: &Actor, user: &User) -> ApiResult<()> {
    let role = app.services.store.get_role(&user.role).await.map_err(|_| {
        ApiError::bad_request(
            "invalid_field",
            format!("role `{}` does not exist", user.role),
        )
    })?;
    if !actor.role.may_grant(&role) {
        return Err(ApiError::forbidden(format!(
            "your role cannot grant the role `{}`",
            role.key
        )));
    }
    if actor.role.scope == RoleScope::AssignedTeams {
        if !actor.may_assign_teams(&user.teams) {
            return Err(ApiError::forbidden(
                "place the user in at least one team you manage, and only in teams you manage",
            ));
        }
        if !user
            .managed_teams
            .iter()
            .all(|t| actor.managed_teams.contains(t))
        {
            return Err(ApiError::forbidden(
                "you can hand over only teams you manage",
            ));
        }
    }
    Ok(())
}

/// Users in the caller's reach.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("session" = [])), responses((status = 200, body = [UserView])))]
async fn list_users(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<UserView>>> {
    let users = app.services.store.list_users().await?;
    Ok(Json(
        users
            .iter()
            .filter(|u| may_view(&current.actor, u))
            .map(UserView::from)
            .collect(),
    ))
}

/// Creates a user (needs users_edit; managers create users only in their teams).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("session" = [])), request_body = NewUser,
    responses((status = 201, body = UserView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn create_user(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    if !current.actor.holds(Permission::UsersEdit) {
        return Err(ApiError::forbidden("your role does not allow users_edit"));
    }
    let username = Username::parse(&input.username)?;
    let now = Utc::now();
    let user = User {
        id: UserId::from_uuid(Uuid::now_v7()),
        display_name: Name::parse(
            "display_name",
            input.display_name.as_deref().unwrap_or(username.as_str()),
        )?,
        username,
        email: input.email.as_deref().map(Email::parse).transpose()?,
        role: RoleKey::parse(&input.role)?,
        teams: parse_ids(&input.teams, TeamId::parse)?,
        managed_teams: parse_ids(&input.managed_teams, TeamId::parse)?,
        queues: parse_ids(&input.queues, QueueId::parse)?,
        languages: parse_languages(&input.languages)?,
        capacity_profile: input
            .capacity_profile_id
            .as_deref()
            .map(CapacityProfileId::parse)
            .transpose()?,
        emergency_contacts: EmailList::parse(input.emergency_contacts.as_deref().unwrap_or(""))?,
        site: site_of(&app, input.site_id.as_deref()).await?,
        presence: PresenceState::new(now),
        disabled: false,
        totp_enabled: false,
        created_at: now,
    };
    check_assignment(&app, &current.actor, &user).await?;
    let hash = match input.password {
        Some(password) => {
            check_password_policy(&password)?;
            Some(hash_password(&app, password).await?)
        }
        None => None,
    };
    app.services
        .store
        .create_user(&user, hash.as_deref())
        .await?;
    app.services.config.changed(ConfigArea::Users).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

fn parse_user_id(text: &str) -> ApiResult<UserId> {
    UserId::parse(text).map_err(|_| ApiError::not_found("user"))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = super::error::ErrorBody)))]
async fn get_user(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    let user = app.services.store.get_user(parse_user_id(&id)?).await?;
    if !may_view(&current.actor, &user) {
        return Err(ApiError::not_found("user"));
    }
    Ok(Json(UserView::from(&user)))
}

/// Changes a user: absent fields stay, `null` clears a nullable field.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("session" = [])), params(("id" = String, Path)), request_body = UserChanges,
    responses((status = 200, body = UserView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn update_user(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(changes): ApiJson<UserChanges>,
) -> ApiResult<Json<UserView>> {
    let before = app.services.store.get_user(parse_user_id(&id)?).await?;
    if !may_view(&current.actor, &before) {
        return Err(ApiError::not_found("user"));
    }
    require(&current.actor, Permission::UsersEdit, user_target(&before))?;
    let mut user = before.clone();
    if let Some(text) = &changes.username {
        user.username = Username::parse(text)?;
    }
    if let Some(text) = &changes.display_name {
        user.display_name = Name::parse("display_name", text)?;
    }
    if let Some(email) = &changes.email {
        user.email = email.as_deref().map(Email::parse).transpose()?;
    }
    if let Some(role) = &changes.role {
        user.role = RoleKey::parse(role)?;
    }
    if let Some(teams) = &changes.teams {
        user.teams = parse_ids(teams, TeamId::parse)?;
    }
    if let Some(teams) = &changes.managed_teams {
        user.managed_teams = parse_ids(teams, TeamId::parse)?;
    }
    if let Some(queues) = &changes.queues {
        user.queues = parse_ids(queues, QueueId::parse)?;
    }
    if let Some(languages) = &changes.languages {
        user.languages = parse_languages(languages)?;
    }
    if let Some(profile) = &changes.capacity_profile_id {
        user.capacity_profile = profile
            .as_deref()
            .map(CapacityProfileId::parse)
            .transpose()?;
    }
    if let Some(text) = &changes.emergency_contacts {
        user.emergency_contacts = EmailList::parse(text)?;
    }
    if let Some(site) = &changes.site_id {
        user.site = site_of(&app, site.as_deref()).await?;
    }
    if let Some(disabled) = changes.disabled {
        user.disabled = disabled;
    }
    if user.id == current.user.id && (user.role != before.role || user.disabled) {
        return Err(ApiError::conflict(
            "you cannot change your own role or disable yourself",
        ));
    }
    if user.role != before.role
        || user.teams != before.teams
        || user.managed_teams != before.managed_teams
    {
        check_assignment(&app, &current.actor, &user).await?;
    }
    app.services.store.update_user(&user).await?;
    app.services.config.changed(ConfigArea::Users).await?;
    Ok(Json(UserView::from(&user)))
}

/// Removes a user who has no contact history (disable the others instead).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn delete_user(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let user = app.services.store.get_user(parse_user_id(&id)?).await?;
    if !may_view(&current.actor, &user) {
        return Err(ApiError::not_found("user"));
    }
    require(&current.actor, Permission::UsersEdit, user_target(&user))?;
    if user.id == current.user.id {
        return Err(ApiError::conflict("you cannot remove yourself"));
    }
    app.services.store.delete_user(user.id).await?;
    app.services.config.changed(ConfigArea::Users).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets another user's password (an administrator's reset); the user's sessions end.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", security(("session" = [])), params(("id" = String, Path)), request_body = SetPassword,
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn set_user_password(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    let user = app.services.store.get_user(parse_user_id(&id)?).await?;
    if !may_view(&current.actor, &user) {
        return Err(ApiError::not_found("user"));
    }
    require(&current.actor, Permission::UsersEdit, user_target(&user))?;
    check_password_policy(&input.password)?;
    let hash = hash_password(&app, input.password).await?;
    app.services.store.set_password(user.id, &hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// All teams.
#[utoipa::path(get, path = "/api/v1/teams", tag = "users", security(("session" = [])), responses((status = 200, body = [TeamView])))]
async fn list_teams(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Vec<TeamView>>> {
    Ok(Json(
        app.services
            .store
            .list_teams()
            .await?
            .iter()
            .map(TeamView::from)
            .collect(),
    ))
}

/// Creates a team (center-wide users_edit).
#[utoipa::path(post, path = "/api/v1/teams", tag = "users", security(("session" = [])), request_body = TeamInput,
    responses((status = 201, body = TeamView), (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn create_team(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult<(StatusCode, Json<TeamView>)> {
    require(&current.actor, Permission::UsersEdit, Target::Center)?;
    let team = Team {
        id: TeamId::from_uuid(Uuid::now_v7()),
        name: Name::parse("name", &input.name)?,
        created_at: Utc::now(),
    };
    app.services.store.create_team(&team).await?;
    app.services.config.changed(ConfigArea::Teams).await?;
    Ok((StatusCode::CREATED, Json(TeamView::from(&team))))
}

fn parse_team_id(text: &str) -> ApiResult<TeamId> {
    TeamId::parse(text).map_err(|_| ApiError::not_found("team"))
}

/// Renames a team.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "users", security(("session" = [])), params(("id" = String, Path)), request_body = TeamInput,
    responses((status = 200, body = TeamView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn update_team(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult<Json<TeamView>> {
    require(&current.actor, Permission::UsersEdit, Target::Center)?;
    let mut team = app.services.store.get_team(parse_team_id(&id)?).await?;
    team.name = Name::parse("name", &input.name)?;
    app.services.store.update_team(&team).await?;
    app.services.config.changed(ConfigArea::Teams).await?;
    Ok(Json(TeamView::from(&team)))
}

/// Removes a team; its members stay, without it.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "users", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_team(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::UsersEdit, Target::Center)?;
    app.services.store.delete_team(parse_team_id(&id)?).await?;
    app.services.config.changed(ConfigArea::Teams).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Built-in and custom roles.
#[utoipa::path(get, path = "/api/v1/roles", tag = "users", security(("session" = [])), responses((status = 200, body = [RoleView])))]
async fn list_roles(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Vec<RoleView>>> {
    Ok(Json(
        app.services
            .store
            .list_roles()
            .await?
            .iter()
            .map(RoleView::from)
            .collect(),
    ))
}

fn parse_permissions(texts: &[String]) -> ApiResult<PermissionSet> {
    let list = texts
        .iter()
        .map(|t| switchboard_core::Permission::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PermissionSet::of(&list))
}

fn role_name(text: &str) -> ApiResult<String> {
    Ok(Name::parse("name", text)?.to_string())
}

/// Creates a custom role (settings_edit).
#[utoipa::path(post, path = "/api/v1/roles", tag = "users", security(("session" = [])), request_body = NewRole,
    responses((status = 201, body = RoleView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn create_role(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<NewRole>,
) -> ApiResult<(StatusCode, Json<RoleView>)> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let key = RoleKey::parse(&input.key)?;
    if key.is_builtin() {
        return Err(ApiError::conflict("that key belongs to a built-in role"));
    }
    let role = Role {
        key,
        name: role_name(&input.name)?,
        permissions: parse_permissions(&input.permissions)?,
        scope: RoleScope::parse(input.scope.as_deref().unwrap_or("center"))?,
        builtin: false,
    };
    app.services.store.create_role(&role).await?;
    app.services.config.changed(ConfigArea::Roles).await?;
    Ok((StatusCode::CREATED, Json(RoleView::from(&role))))
}

async fn custom_role(app: &AppState, key: &str) -> ApiResult<Role> {
    let key = RoleKey::parse(key).map_err(|_| ApiError::not_found("role"))?;
    let role = app.services.store.get_role(&key).await?;
    if role.builtin {
        return Err(ApiError::conflict(
            "built-in roles cannot be changed or removed",
        ));
    }
    Ok(role)
}

/// Changes a custom role.
#[utoipa::path(patch, path = "/api/v1/roles/{key}", tag = "users", security(("session" = [])), params(("key" = String, Path)), request_body = RoleChanges,
    responses((status = 200, body = RoleView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn update_role(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(key): ApiPath<String>,
    ApiJson(changes): ApiJson<RoleChanges>,
) -> ApiResult<Json<RoleView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let mut role = custom_role(&app, &key).await?;
    if let Some(name) = &changes.name {
        role.name = role_name(name)?;
    }
    if let Some(permissions) = &changes.permissions {
        role.permissions = parse_permissions(permissions)?;
    }
    if let Some(scope) = &changes.scope {
        role.scope = RoleScope::parse(scope)?;
    }
    app.services.store.update_role(&role).await?;
    app.services.config.changed(ConfigArea::Roles).await?;
    Ok(Json(RoleView::from(&role)))
}

/// Removes a custom role nobody holds.
#[utoipa::path(delete, path = "/api/v1/roles/{key}", tag = "users", security(("session" = [])), params(("key" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn delete_role(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let role = custom_role(&app, &key).await?;
    app.services.store.delete_role(&role.key).await?;
    app.services.config.changed(ConfigArea::Roles).await?;
    Ok(StatusCode::NO_CONTENT)
}
