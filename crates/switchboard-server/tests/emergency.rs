//! Emergency calls' settings over HTTP, on each backend: the registry of emergency numbers with
//! a direct route, trunks allowed to carry emergency calls, sites, users placed on them, the
//! admin's and the agent's own addresses and the effective location, the callback pool; and
//! the demo's head office, callback numbers and emergency trunk.

use crate::{backends, find, Backend, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn springfield(number: &str) -> Value {
    json!({"country": "US", "state": "IL", "city": "Springfield", "street": "Main Street",
        "number": number, "postcode": "62701"})
}

async fn story(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = server.login("admin").await;

    // The demo: its outbound trunk carries emergency calls, its callback numbers reach the
    // center, its agents work at the head office.
    let trunks = admin.get("/api/v1/voice/trunks").await;
    let outbound = find(&trunks, "name", "Demo carrier out").clone();
    assert_eq!(outbound["emergency"], true);
    assert_eq!(find(&trunks, "name", "Demo carrier")["emergency"], false);
    let settings = admin.get("/api/v1/settings").await;
    assert_eq!(settings["callback_pool"], "15550190-15550199");
    let numbers = admin.get("/api/v1/voice/numbers").await;
    for number in ["15550100", "15550190", "15550199"] {
        find(&numbers, "number", number);
    }
    let sites = admin.get("/api/v1/sites").await;
    let office = find(&sites, "name", "Head office").clone();
    assert_eq!(
        office["one_line"],
        "100 Main Street, Floor 2, Springfield IL 62701, US"
    );
    let agent = server.login("agent1").await;
    let here = agent.get("/api/v1/me/address").await;
    assert_eq!(here["source"], "site", "{here}");
    assert_eq!(here["site_name"], "Head office");
    assert_eq!(here["address"]["city"], "Springfield");

    // The registry starts with the known countries' numbers; an admin adds a direct route.
    let registry = admin.get("/api/v1/emergency/numbers").await;
    let rows = registry["numbers"].as_array().unwrap();
    assert_eq!(rows.len(), 9, "{registry}");
    assert_eq!(
        rows[0],
        json!({"country": "US", "number": "911", "test": false, "trunk_id": null})
    );
    let saved = admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/emergency/numbers",
            json!({"numbers": [
                {"country": "us", "number": " 911 ", "trunk_id": outbound["id"]},
                {"country": "US", "number": "933", "test": true},
                {"country": "UK", "number": "999"},
            ]}),
        )
        .await;
    assert_eq!(
        saved,
        json!({"numbers": [
            {"country": "US", "number": "911", "test": false, "trunk_id": outbound["id"]},
            {"country": "US", "number": "933", "test": true, "trunk_id": null},
            {"country": "GB", "number": "999", "test": false, "trunk_id": null},
        ]})
    );
    assert_eq!(admin.get("/api/v1/emergency/numbers").await, saved);
    // The trunk a number routes through stays, and stays outbound.
    let trunk_path = format!("/api/v1/voice/trunks/{}", outbound["id"].as_str().unwrap());
    let (status, answer) = admin.call(Method::DELETE, &trunk_path, None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, answer) = admin
        .call(
            Method::PUT,
            &trunk_path,
            Some(json!({"name": "Demo carrier out", "direction": "inbound", "addresses": ["127.0.0.2"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    // A new trunk may carry emergency calls.
    let created = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/voice/trunks",
            json!({"name": "E911 carrier", "direction": "outbound", "host": "127.0.0.1", "emergency": true}),
        )
        .await;
    assert_eq!(created["emergency"], true);

    // Sites: added, renamed, refused while in use.
    let annex = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/sites",
            json!({"name": "Annex", "address": springfield("7")}),
        )
        .await;
    let annex_path = format!("/api/v1/sites/{}", annex["id"].as_str().unwrap());
    let renamed = admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            &annex_path,
            json!({"name": "North annex", "address": {"country": "US", "state": "il", "city": "Springfield",
                "street": "Elm Street", "number": "7", "room": "12", "method": "dhcp"}}),
        )
        .await;
    assert_eq!(renamed["address"]["state"], "IL");
    assert_eq!(renamed["address"]["method"], "DHCP");
    assert_eq!(admin.get(&annex_path).await["name"], "North annex");

    // A user placed on the site is located there; an admin gives them an address of their own.
    let carol = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/users",
            json!({"username": "carol", "role": "agent", "password": crate::PASSWORD, "site_id": annex["id"]}),
        )
        .await;
    assert_eq!(carol["site_id"], annex["id"]);
    let carol_address = format!("/api/v1/users/{}/address", carol["id"].as_str().unwrap());
    let location = admin.get(&carol_address).await;
    assert_eq!(
        (location["source"].as_str(), location["site_name"].as_str()),
        (Some("site"), Some("North annex"))
    );
    let (status, _) = admin.call(Method::DELETE, &annex_path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a site in use stays");
    let location = admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            &carol_address,
            springfield("200"),
        )
        .await;
    assert_eq!(
        (location["source"].as_str(), location["set_by"].as_str()),
        (Some("own"), Some("admin"))
    );
    assert_eq!(
        location["one_line"],
        "200 Main Street, Springfield IL 62701, US"
    );
    // Carol at home sets her own address, then clears it: the site's applies again.
    let carol_session = server.login("carol").await;
    let home = carol_session
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/me/address",
            json!({"country": "US", "state": "IL", "city": "Chatham", "street": "Oak Avenue", "number": "12"}),
        )
        .await;
    assert_eq!(
        (
            home["source"].as_str(),
            home["set_by"].as_str(),
            home["site_name"].as_str()
        ),
        (Some("own"), Some("agent"), Some("North annex"))
    );
    assert_eq!(
        admin.get(&carol_address).await["address"]["city"],
        "Chatham"
    );
    let cleared = carol_session
        .expect(
            StatusCode::OK,
            Method::DELETE,
            "/api/v1/me/address",
            json!({}),
        )
        .await;
    assert_eq!(cleared["source"], "site");
    // Off the site and without an address, nowhere.
    let carol_path = format!("/api/v1/users/{}", carol["id"].as_str().unwrap());
    let moved = admin
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &carol_path,
            json!({"site_id": null}),
        )
        .await;
    assert_eq!(moved["site_id"], Value::Null);
    let nowhere = carol_session.get("/api/v1/me/address").await;
    assert_eq!(
        nowhere,
        json!({"source": "none", "address": null, "one_line": null, "set_by": null, "site_id": null, "site_name": null})
    );
    // An emergency dial is planned from the configuration as it is at that moment: each
    // change below is seen by the very next dial.
    let dial_911 = || async {
        let (status, body) = carol_session
            .call(
                Method::POST,
                "/api/v1/calls",
                Some(json!({"number": "911"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        body["code"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(dial_911().await, "emergency_no_outbound");
    let profile = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/capacity-profiles",
            json!({"name": "Annex dialer", "max_chats": 1, "max_calls": 1, "voice_outbound": false}),
        )
        .await;
    let profile_path = format!(
        "/api/v1/capacity-profiles/{}",
        profile["id"].as_str().unwrap()
    );
    admin
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &carol_path,
            json!({"capacity_profile_id": profile["id"]}),
        )
        .await;
    assert_eq!(dial_911().await, "emergency_no_outbound");
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            &profile_path,
            json!({"name": "Annex dialer", "max_chats": 1, "max_calls": 1, "voice_outbound": true}),
        )
        .await;
    assert_eq!(dial_911().await, "emergency_no_location");
    carol_session
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/me/address",
            json!({"country": "DK", "city": "Copenhagen", "street": "Stroget", "number": "1"}),
        )
        .await;
    assert_eq!(dial_911().await, "emergency_not_in_country");
    carol_session
        .expect(
            StatusCode::OK,
            Method::DELETE,
            "/api/v1/me/address",
            json!({}),
        )
        .await;
    assert_eq!(dial_911().await, "emergency_no_location");
    // An agent cannot keep someone else's address, or the center's numbers.
    let (status, _) = carol_session
        .call(Method::PUT, &carol_address, Some(springfield("1")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = carol_session
        .call(Method::GET, "/api/v1/emergency/numbers", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    admin
        .expect(
            StatusCode::NO_CONTENT,
            Method::DELETE,
            &annex_path,
            json!({}),
        )
        .await;

    // The callback pool is a setting.
    let mut changed = settings.clone();
    changed["callback_pool"] = json!("15550190-15550194; +15550180");
    let saved = admin
        .expect(StatusCode::OK, Method::PUT, "/api/v1/settings", changed)
        .await;
    assert_eq!(saved["callback_pool"], "15550190-15550194; +15550180");
    let mut kept = settings.clone();
    kept.as_object_mut().unwrap().remove("callback_pool");
    admin
        .expect(StatusCode::OK, Method::PUT, "/api/v1/settings", kept)
        .await;
    assert_eq!(
        admin.get("/api/v1/settings").await["callback_pool"],
        "15550190-15550194; +15550180",
        "absent keeps the pool"
    );

    // A restart keeps it all.
    let (config, cleanup) = server.stop().await;
    let server = Server::start_with(config, cleanup).await;
    let admin = server.login("admin").await;
    assert_eq!(
        admin.get("/api/v1/emergency/numbers").await["numbers"][0]["trunk_id"],
        outbound["id"]
    );
    assert_eq!(
        admin.get(&carol_address).await["source"],
        "none",
        "the demo places only its own users"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_settings_are_kept_on_each_backend() {
    for backend in backends() {
        story(backend).await;
    }
}
