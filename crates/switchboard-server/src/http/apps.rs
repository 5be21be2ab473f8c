//! The Apps API for integrations (`/apps/api/v1`), authenticated with a company key and secret
//! over HTTP basic, as contact-center platforms do.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, AppsClient};
use super::live::agent_views;
use super::setup::{queue_views, ChannelFilter};
use super::wire::{AgentView, ContactView, MenuNode, NewContactInput, QueueView};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use switchboard_core::{Channel, ContactId, Language, QueueId};
use switchboard_services::contacts::NewContact;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(menu))
        .routes(routes!(agents))
        .routes(routes!(create_contact))
        .routes(routes!(get_contact))
        .routes(routes!(end_contact))
}

pub fn nest(views: &[QueueView], parent: Option<&str>) -> Vec<MenuNode> {
    views
        .iter()
        .filter(|v| v.parent_id.as_deref() == parent)
        .map(|v| MenuNode {
            id: v.id.clone(),
            name: v.name.clone(),
            kind: v.kind.clone(),
            path: v.path.clone(),
            children: nest(views, Some(&v.id)),
        })
        .collect()
}

/// A channel's menu tree, nested, as a consumer app shows it.
#[utoipa::path(get, path = "/apps/api/v1/queues", tag = "apps", security(("apps" = [])), params(ChannelFilter),
    responses((status = 200, body = [MenuNode]), (status = 401, body = super::error::ErrorBody)))]
async fn menu(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiQuery(filter): ApiQuery<ChannelFilter>,
) -> ApiResult<Json<Vec<MenuNode>>> {
    let channel = filter.channel.as_deref().map(Channel::parse).transpose()?;
    let views = queue_views(&app, channel).await?;
    Ok(Json(nest(&views, None)))
}

/// Agents and their presence.
#[utoipa::path(get, path = "/apps/api/v1/agents", tag = "apps", security(("apps" = [])), responses((status = 200, body = [AgentView]), (status = 401, body = super::error::ErrorBody)))]
async fn agents(
    State(app): State<AppState>,
    _client: AppsClient,
) -> ApiResult<Json<Vec<AgentView>>> {
    Ok(Json(agent_views(&app, |_| true).await?))
}

/// Puts a contact (a callback request, a task) in a leaf queue; routing takes it from there.
#[utoipa::path(post, path = "/apps/api/v1/contacts", tag = "apps", security(("apps" = [])), request_body = NewContactInput,
    responses((status = 201, body = ContactView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn create_contact(
    State(app): State<AppState>,
    client: AppsClient,
    ApiJson(input): ApiJson<NewContactInput>,
) -> ApiResult<(StatusCode, Json<ContactView>)> {
    let queue = QueueId::parse(&input.queue_id).map_err(|_| ApiError::not_found("queue"))?;
    if let Some(customer) = &input.customer {
        if customer.chars().count() > 200 || customer.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_field",
                "customer has at most 200 characters and no control characters",
            ));
        }
    }
    if input.priority.is_some_and(|p| !(-1000..=1000).contains(&p)) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "priority is between -1000 and 1000",
        ));
    }
    let request = NewContact {
        queue,
        priority: input.priority,
        language: input.language.as_deref().map(Language::parse).transpose()?,
        customer: input.customer,
        chat: None,
    };
    let contact = app
        .services
        .contacts
        .enqueue(request, ContactId::from_uuid(Uuid::now_v7()))
        .await?;
    tracing::info!(key = %client.key_id, contact = %contact.id, "contact created through the Apps API");
    Ok((StatusCode::CREATED, Json(ContactView::from(&contact))))
}

fn parse_contact_id(text: &str) -> ApiResult<ContactId> {
    ContactId::parse(text).map_err(|_| ApiError::not_found("contact"))
}

/// A contact's state.
#[utoipa::path(get, path = "/apps/api/v1/contacts/{id}", tag = "apps", security(("apps" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = super::error::ErrorBody)))]
async fn get_contact(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContactView>> {
    Ok(Json(ContactView::from(
        &app.services
            .store
            .get_contact(parse_contact_id(&id)?)
            .await?,
    )))
}

/// Ends a contact from the integration's side (the consumer went away, the task was done).
#[utoipa::path(post, path = "/apps/api/v1/contacts/{id}/end", tag = "apps", security(("apps" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn end_contact(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContactView>> {
    Ok(Json(ContactView::from(
        &app.services
            .contacts
            .end(parse_contact_id(&id)?, "ended_by_integration".into())
            .await?,
    )))
}
