//! The error answers every operation's description lists. The extractors and the store give
//! the same errors whatever the handler (a malformed body, path or query is a 400, a missing
//! session a 401, an unknown id a 404, a write that collides a 409, a body too large a 413, a
//! body that is not JSON a 415), so they are added here by the operation's shape rather than
//! repeated by hand on each of a hundred routes; what is particular to a route (429, 503, a
//! 409 with its own meaning) stays in its own `#[utoipa::path]`. `tests/openapi.rs` drives bad
//! requests at every route and fails when one answers a status its description does not list.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::SchemaFormat;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder, Schema};

/// Paths signed-in users use for themselves: no role is needed, so no 403.
const OWN_ACCOUNT: &str = "/api/v1/auth/";

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

fn add(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error_answer(description));
}

/// Path parameters named `id` are typed ids (UUIDs), except the tones', which are names of
/// built-in tones or of uploads.
fn mark_uuid_ids(path: &str, operation: &mut Operation) {
    if path.starts_with("/api/v1/tones/") {
        return;
    }
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.name == "id" && matches!(parameter.parameter_in, ParameterIn::Path) {
            if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
                object.format = Some(SchemaFormat::Custom("uuid".into()));
            }
        }
    }
}

/// Adds the answers that follow from an operation's shape to every operation in `openapi`,
/// and marks typed ids in paths as UUIDs.
pub fn document_error_answers(openapi: &mut OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            (&mut item.get, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.delete, true),
            (&mut item.patch, true),
        ];
        for (operation, writes) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            mark_uuid_ids(path, operation);
            let parameters = operation.parameters.as_deref().unwrap_or_default();
            let in_path = parameters
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let in_query = parameters
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query));
            let has_body = operation.request_body.is_some();
            let websocket = operation.responses.responses.contains_key("101");
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            if in_path || in_query || has_body || websocket {
                add(
                    operation,
                    "400",
                    "invalid_json, invalid_body, invalid_path, invalid_id, invalid_field (or the \
                     route's own code): the request is malformed or breaks a constraint",
                );
            }
            if secured {
                add(
                    operation,
                    "401",
                    "unauthorized: no valid session cookie or Apps API key",
                );
                if !path.starts_with(OWN_ACCOUNT) && !path.starts_with("/apps/") {
                    add(
                        operation,
                        "403",
                        "forbidden: the signed-in user's role does not allow this",
                    );
                }
            }
            if in_path {
                add(
                    operation,
                    "404",
                    "not_found: nothing with that id (or not visible to you)",
                );
            }
            if writes && secured {
                add(
                    operation,
                    "409",
                    "conflict: the change collides with the stored state",
                );
            }
            if has_body {
                add(
                    operation,
                    "413",
                    "payload_too_large: the body is larger than the API accepts",
                );
                add(
                    operation,
                    "415",
                    "unsupported_media_type: the body is not sent as the declared content type",
                );
            }
        }
    }
}
