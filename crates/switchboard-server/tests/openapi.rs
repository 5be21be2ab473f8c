//! The served OpenAPI description matches the server: every route's parameters are where the
//! description says, and bad requests driven at every route get only statuses its description
//! lists.

use crate::{Backend, Server};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

fn path_names(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Every operation: (method, path, operation), the ones that sign out last.
fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut list = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(operation) = item.get(method) {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                list.push((method, path.clone(), operation.clone()));
            }
        }
    }
    list.sort_by_key(|(_, path, _)| path.ends_with("/logout"));
    list
}

fn parameters<'a>(operation: &'a Value, place: &str) -> Vec<&'a Value> {
    operation["parameters"]
        .as_array()
        .map(|list| list.iter().filter(|p| p["in"] == place).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_are_where_the_description_says() {
    let server = Server::start(Backend::Sqlite).await;
    let doc: Value = reqwest::get(server.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut problems = Vec::new();
    for (method, path, operation) in operations(&doc) {
        let declared: BTreeSet<String> = parameters(&operation, "path")
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        if declared != path_names(&path) {
            problems.push(format!(
                "{method} {path}: path parameters declared {declared:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let limit = &parameters(&doc["paths"]["/api/v1/calls"]["get"], "query")[0];
    assert_eq!(limit["name"], "limit");
    assert_eq!(limit["required"], false);
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 1000);
    let id = &parameters(&doc["paths"]["/api/v1/users/{id}"]["get"], "path")[0];
    assert_eq!(id["schema"]["format"], "uuid");
    let chat = &parameters(&doc["paths"]["/chat/v1/attachments"]["post"], "query");
    assert!(
        chat.iter()
            .any(|p| p["name"] == "chat_id" && p["required"] == true),
        "{chat:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_only_statuses_its_description_lists() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let doc: Value = reqwest::get(server.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let anonymous = reqwest::Client::new();
    let mut problems = Vec::new();
    let mut tried = 0;
    for (method, path, operation) in operations(&doc) {
        let listed: BTreeSet<String> = operation["responses"]
            .as_object()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        let security = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let apps = security.iter().any(|s| s.get("apps").is_some());
        let secured = !security.is_empty();
        let body = operation["requestBody"]["content"]
            .as_object()
            .and_then(|c| c.keys().next().cloned());
        let has_query = !parameters(&operation, "query").is_empty();
        let fill = |value: &str| {
            path_names(&path).iter().fold(path.clone(), |p, name| {
                p.replace(&format!("{{{name}}}"), value)
            })
        };
        let authed = |url: String| -> RequestBuilder {
            let request = admin.client.request(method.clone(), server.url(&url));
            if apps {
                request.basic_auth(&server.api_key.0, Some(&server.api_key.1))
            } else {
                request
            }
        };
        let unknown = uuid::Uuid::new_v4().to_string();
        let mut requests: Vec<(&str, RequestBuilder)> = Vec::new();
        if secured {
            requests.push((
                "no credentials",
                anonymous.request(method.clone(), server.url(&fill(&unknown))),
            ));
        }
        if path.contains('{') {
            requests.push(("malformed id", authed(fill("not%20an%20id"))));
            requests.push(("unknown id", authed(fill(&unknown))));
        } else if body.is_none() && method == Method::GET {
            requests.push(("plain", authed(path.clone())));
        }
        if has_query {
            requests.push((
                "unknown query parameter",
                authed(format!("{}?bogus=1", fill(&unknown))),
            ));
            requests.push((
                "malformed query",
                authed(format!("{}?limit=x&since=x&chat_id=", fill(&unknown))),
            ));
        }
        if let Some(content_type) = &body {
            let target = fill(&unknown);
            requests.push((
                "broken body",
                authed(target.clone())
                    .header("content-type", content_type.as_str())
                    .body("{"),
            ));
            requests.push((
                "wrong content type",
                authed(target.clone())
                    .header("content-type", "text/plain")
                    .body("{}"),
            ));
            requests.push((
                "empty object",
                authed(target.clone())
                    .header("content-type", "application/json")
                    .body("{}"),
            ));
            requests.push((
                "too large",
                authed(target)
                    .header("content-type", content_type.as_str())
                    .body(vec![b' '; 300 * 1024]),
            ));
        }
        for (label, request) in requests {
            tried += 1;
            let response = request.send().await.unwrap();
            let status = response.status();
            assert!(
                !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path} ({label}): {status} {}",
                response.text().await.unwrap_or_default()
            );
            if !listed.contains(status.as_str()) {
                let text = response.text().await.unwrap_or_default();
                problems.push(format!(
                    "{method} {path} ({label}): {status} {text} not in {listed:?}"
                ));
            }
        }
    }
    assert!(tried > 300, "{tried} requests");
    assert!(
        problems.is_empty(),
        "{} problems: {problems:#?}",
        problems.len()
    );
}
