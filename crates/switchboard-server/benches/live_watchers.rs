//! Live page benchmark (portal issue): 500 supervisor pages watching a center with 2,000
//! agents and 1,000 queued contacts; event delivery p99 under 200 ms, server memory per watcher
//! reported.
//!
//! The center is seeded through the store before the server starts (teams, SMS queues, 2,000
//! agents with room for one contact each, 300 supervisors and 200 managers, an Apps API key);
//! then the release server runs as its own process (`switchboard serve`, pinned to
//! core 0 when `taskset` exists) so its memory is measured alone, and this program is the load
//! on one thread (pinned to core 1 by `scripts/bench-live.sh`). The 1,000 queued contacts come
//! through the Apps API. Every watcher signs in and opens the event stream, 25 pages at a time;
//! the server's resident memory is read before and after (memory per watcher). Then each page
//! loads its snapshot as the portal's Live page does once its stream is open
//! (`web/portal/live.js`: live calls, open contacts and agents at once), timed per page.
//!
//! Then a steady stream of real changes through the production paths: each cycle makes an
//! agent available (presence changed; routing assigns them the oldest contact of their queues),
//! then busy, ends that contact as a supervisor, and queues a new contact in the same queue
//! through the Apps API (five events a cycle, the queue staying at 1,000). The load stamps
//! each change just before it sends the request that makes it; a watcher's delay is from that
//! stamp to its receipt of the event, so the server's handling of the request is included.
//! Run: `scripts/bench-live.sh` (or `-- --quick` for a short run).

#[path = "support/process.rs"]
mod process;
use futures_util::StreamExt;
use process::{cpu_seconds, rss_kib};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::process::Child;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_core::{
    BuiltinRole, CapacityProfile, CapacityProfileId, Channel, EmailList, Name, PresenceState,
    QueueId, QueueKind, QueueNode, RoleKey, Team, TeamId, User, UserId, Username,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PASSWORD: &str = "bench-password-1";

struct Options {
    database: String,
    agents: usize,
    teams: usize,
    queues: usize,
    queued: usize,
    supervisors: usize,
    managers: usize,
    /// Agent cycles started a second (five events each).
    cycles_per_second: u32,
    seconds: u64,
}

fn key(parts: &[&str]) -> u64 {
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    hasher.finish()
}

/// The change an event reports, as the load stamped it.
fn event_key(event: &Value) -> Option<u64> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let contact = &event["contact"];
    Some(match event["type"].as_str()? {
        "presence_changed" => key(&[
            "presence",
            &text(&event["user_id"])?,
            &text(&event["presence"])?,
        ]),
        "contact_assigned" => key(&["assigned", &text(&contact["agent_id"])?]),
        "contact_ended" => key(&["ended", &text(&contact["id"])?]),
        "contact_queued" => key(&["queued", &text(&contact["customer"])?]),
        _ => return None,
    })
}

struct Seeded {
    agents: Vec<UserId>,
    queues: Vec<QueueId>,
    watchers: Vec<String>,
    api_key: (String, String),
}

/// The center, written through the store before the server starts.
async fn seed(options: &Options) -> Seeded {
    let store = switchboard_store::open(&options.database)
        .await
        .expect("the bench database opens");
    let hash = switchboard::secret::hash_password(PASSWORD).unwrap();
    let now = chrono::Utc::now();
    let name = |text: String| Name::parse("name", &text).unwrap();
    let mut teams = Vec::new();
    for n in 0..options.teams {
        let team = Team {
            id: TeamId::from_uuid(Uuid::now_v7()),
            name: name(format!("Team {n}")),
            created_at: now,
        };
        store.create_team(&team).await.unwrap();
        teams.push(team.id);
    }
    let mut queues = Vec::new();
    for n in 0..options.queues {
        let node = QueueNode {
            id: QueueId::from_uuid(Uuid::now_v7()),
            channel: Channel::Sms,
            parent: None,
            name: name(format!("Queue {n}")),
            kind: QueueKind::Leaf,
            position: n as i32,
            priority: 0,
            languages: vec![],
        };
        store.create_queue(&node).await.unwrap();
        queues.push(node.id);
    }
    let profile = CapacityProfile::new(
        CapacityProfileId::from_uuid(Uuid::now_v7()),
        name("One at a time".into()),
        1,
        0,
        false,
    )
    .unwrap();
    store.create_capacity_profile(&profile).await.unwrap();
    let user = |username: String, role: BuiltinRole, teams: Vec<TeamId>| User {
        id: UserId::from_uuid(Uuid::now_v7()),
        display_name: name(username.clone()),
        username: Username::parse(&username).unwrap(),
        email: None,
        role: RoleKey::parse(role.key()).unwrap(),
        managed_teams: if role == BuiltinRole::Manager {
            teams.clone()
        } else {
            vec![]
        },
        teams,
        queues: vec![],
        languages: vec![],
        capacity_profile: None,
        emergency_contacts: EmailList::default(),
        site: None,
        presence: PresenceState::new(now),
        disabled: false,
        totp_enabled: false,
        created_at: now,
    };
    store
        .create_user(
            &user("bench-admin".into(), BuiltinRole::Admin, vec![]),
            Some(&hash),
        )
        .await
        .unwrap();
    let mut agents = Vec::new();
    for n in 0..options.agents {
        // Each team serves two neighbouring queues.
        let team = n % options.teams;
        let mut agent = user(format!("agent{n}"), BuiltinRole::Agent, vec![teams[team]]);
        agent.queues = vec![
            queues[(2 * team) % options.queues],
            queues[(2 * team + 1) % options.queues],
        ];
        agent.capacity_profile = Some(profile.id);
        store.create_user(&agent, None).await.unwrap();
        agents.push(agent.id);
    }
    let mut watchers = Vec::new();
    for n in 0..options.supervisors {
        let name = format!("supervisor{n}");
        store
            .create_user(
                &user(name.clone(), BuiltinRole::Supervisor, vec![]),
                Some(&hash),
            )
            .await
            .unwrap();
        watchers.push(name);
    }
    for n in 0..options.managers {
        let name = format!("manager{n}");
        let managed = vec![teams[n % options.teams]];
        store
            .create_user(
                &user(name.clone(), BuiltinRole::Manager, managed),
                Some(&hash),
            )
            .await
            .unwrap();
        watchers.push(name);
    }
    let (key, secret) = switchboard::secret::new_api_key("Bench".into(), now);
    store.create_api_key(&key).await.unwrap();
    Seeded {
        agents,
        queues,
        watchers,
        api_key: (key.key_id, secret),
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_server(port: u16, database: &str, data_dir: &std::path::Path) -> Child {
    let mut command = process::server_command();
    command
        .arg("serve")
        .env("SWITCHBOARD_HTTP", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_DATABASE_URL", database)
        // Voice on, so the pages load live calls as in production.
        .env("SWITCHBOARD_SIP", format!("127.0.0.1:{}", free_port()))
        .env("SWITCHBOARD_RTP_PORTS", "47000-47099")
        // Every watcher signs in from this one address.
        .env("SWITCHBOARD_LOGIN_FREE_FAILURES", "1000000")
        .env("SWITCHBOARD_LOGIN_SOURCE_REFUSE_AFTER", "1000000")
        .spawn()
        .expect("the release binary exists: cargo build --release -p switchboard")
}

/// The server process, stopped however the run ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

impl Api {
    /// Signs in; a busy answer (every password slot taken) is tried again.
    async fn login(client: &reqwest::Client, base: &str, username: &str) -> Api {
        loop {
            let response = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": username, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            assert!(response.status().is_success(), "{username} signs in");
            let cookie = response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            return Api {
                client: client.clone(),
                base: base.into(),
                cookie,
            };
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn socket(&self) -> Socket {
        let mut request = format!("{}/api/v1/events", self.base.replace("http", "ws"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(4096);
        tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .expect("event stream")
            .0
    }
}

/// Queues a contact through the Apps API; the customer names it for the stamps.
async fn queue_contact(
    client: &reqwest::Client,
    base: &str,
    api_key: &(String, String),
    queue: QueueId,
    customer: &str,
) {
    let response = client
        .post(format!("{base}/apps/api/v1/contacts"))
        .basic_auth(&api_key.0, Some(&api_key.1))
        .json(&json!({"queue_id": queue.to_string(), "customer": customer}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "contact queued");
}

/// Where the load learns the contact (id, queue) routing gave an agent.
type Given = tokio::sync::oneshot::Sender<(String, String)>;

/// What one watcher saw during the run.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    events: usize,
    unmatched: usize,
    lagged: u64,
}

async fn watch(
    mut socket: Socket,
    stamps: Rc<RefCell<HashMap<u64, Instant>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = stop.changed() => break,
        };
        let Some(Ok(frame)) = frame else { break };
        let Message::Text(text) = frame else { continue };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["type"] == "lagged" {
            seen.lagged += event["missed"].as_u64().unwrap_or(0);
            continue;
        }
        let Some(key) = event_key(&event) else {
            continue;
        };
        seen.events += 1;
        match stamps.borrow().get(&key) {
            Some(at) => seen.latencies.push(at.elapsed()),
            None => seen.unmatched += 1,
        }
    }
    seen
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or_default().as_secs_f64() * 1000.0
}

async fn run(options: &Options) {
    let port = free_port();
    let data_dir = std::env::temp_dir().join(format!("switchboard-bench-live-{port}"));
    std::fs::remove_dir_all(&data_dir).ok();
    std::fs::create_dir_all(&data_dir).unwrap();
    let options = &Options {
        database: if options.database == "sqlite" {
            format!("sqlite://{}/bench.db", data_dir.display())
        } else {
            options.database.clone()
        },
        ..*options
    };
    let backend = if options.database.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let began = Instant::now();
    let seeded = seed(options).await;
    let seed_seconds = began.elapsed().as_secs_f64();
    eprintln!("seeded in {seed_seconds:.1} s; starting the server");
    let server = Server(start_server(port, &options.database, &data_dir));
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The queued contacts, spread over the queues.
    let admin = Api::login(&client, &base, "bench-admin").await;
    let mut next_customer = 0usize;
    for n in 0..options.queued {
        let queue = seeded.queues[n % seeded.queues.len()];
        queue_contact(&client, &base, &seeded.api_key, queue, &format!("c{n}")).await;
        next_customer += 1;
    }
    let open = admin
        .call(reqwest::Method::GET, "/api/v1/contacts", None)
        .await;
    assert_eq!(
        open.as_array().map(Vec::len),
        Some(options.queued),
        "every contact waits"
    );

    eprintln!(
        "{} contacts queued; signing the watchers in",
        options.queued
    );
    // The watchers' sessions, then memory before and after their pages connect.
    let began = Instant::now();
    let mut sessions = Vec::new();
    for name in &seeded.watchers {
        sessions.push(Api::login(&client, &base, name).await);
    }
    let login_seconds = began.elapsed().as_secs_f64();
    // The load's own stream, to learn which contact each agent was given.
    let mut assignments = admin.socket().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid);
    // Pages open 25 at a time (a shift starting). Each opens the stream first, as live.js
    // does; the snapshot follows once the stream is open.
    let began = Instant::now();
    let mut sockets = Vec::new();
    for wave in sessions.chunks(25) {
        let pages = wave.iter().map(|session| async move {
            let mut socket = session.socket().await;
            let hello = match socket.next().await {
                Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(&text).unwrap(),
                other => panic!("no hello: {other:?}"),
            };
            assert_eq!(hello["type"], "hello");
            socket
        });
        sockets.extend(futures_util::future::join_all(pages).await);
    }
    let connect_seconds = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rss_streams = rss_kib(pid);
    let per_watcher_kib =
        rss_streams.saturating_sub(rss_before) as f64 / sockets.len().max(1) as f64;
    // The snapshot: live calls, open contacts and agents at once, 25 pages at a time.
    let began = Instant::now();
    let mut snapshot_times = Vec::new();
    for wave in sessions.chunks(25) {
        let pages = wave.iter().map(|session| async move {
            let asked = Instant::now();
            let (calls, contacts, agents) = tokio::join!(
                session.call(reqwest::Method::GET, "/api/v1/calls/live", None),
                session.call(reqwest::Method::GET, "/api/v1/contacts", None),
                session.call(reqwest::Method::GET, "/api/v1/agents", None),
            );
            assert!(calls.is_array() && contacts.is_array() && agents.is_array());
            asked.elapsed()
        });
        snapshot_times.extend(futures_util::future::join_all(pages).await);
    }
    let snapshot_seconds = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rss_after = rss_kib(pid);
    snapshot_times.sort_unstable();

    eprintln!(
        "{} pages connected; changes for {} s",
        sockets.len(),
        options.seconds
    );
    // The changes, and every watcher reading them.
    let stamps: Rc<RefCell<HashMap<u64, Instant>>> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let local = tokio::task::LocalSet::new();
    let watchers: Vec<_> = sockets
        .into_iter()
        .map(|socket| local.spawn_local(watch(socket, stamps.clone(), stopped.clone())))
        .collect();
    // Agent id -> the waiter for the contact routing gives them.
    let waiting: Rc<RefCell<HashMap<String, Given>>> = Default::default();
    local.spawn_local({
        let (waiting, mut stopped) = (waiting.clone(), stopped.clone());
        async move {
            loop {
                let frame = tokio::select! {
                    frame = assignments.next() => frame,
                    _ = stopped.changed() => break,
                };
                let Some(Ok(frame)) = frame else { break };
                let Message::Text(text) = frame else { continue };
                let event: Value = serde_json::from_str(&text).unwrap();
                if event["type"] == "contact_assigned" {
                    let contact = &event["contact"];
                    let agent = contact["agent_id"].as_str().unwrap_or_default();
                    if let Some(waiter) = waiting.borrow_mut().remove(agent) {
                        let _ = waiter.send((
                            contact["id"].as_str().unwrap_or_default().to_owned(),
                            contact["queue_id"].as_str().unwrap_or_default().to_owned(),
                        ));
                    }
                }
            }
        }
    });
    let admin = Rc::new(admin);
    let api_key = Arc::new(seeded.api_key.clone());
    let cpu_start = cpu_seconds(pid);
    let load_start = cpu_seconds(std::process::id());
    let started = Instant::now();
    let (changes, cycles_done) = local
        .run_until(async {
            let changes = Rc::new(RefCell::new(0usize));
            let done = Rc::new(RefCell::new(0usize));
            let every = Duration::from_secs_f64(1.0 / f64::from(options.cycles_per_second));
            let mut tick = tokio::time::interval(every);
            let mut cycles = Vec::new();
            let mut n = 0usize;
            while Instant::now() < deadline {
                tick.tick().await;
                let agent = seeded.agents[n % seeded.agents.len()].to_string();
                let customer = format!("c{next_customer}");
                next_customer += 1;
                n += 1;
                let (admin, stamps, waiting, changes, done) = (
                    admin.clone(),
                    stamps.clone(),
                    waiting.clone(),
                    changes.clone(),
                    done.clone(),
                );
                let (client, base, api_key) = (client.clone(), base.clone(), api_key.clone());
                cycles.push(tokio::task::spawn_local(async move {
                    let stamp = |parts: &[&str]| {
                        stamps.borrow_mut().insert(key(parts), Instant::now());
                        *changes.borrow_mut() += 1;
                    };
                    let presence = format!("/api/v1/agents/{agent}/presence");
                    let (given, assigned) = tokio::sync::oneshot::channel();
                    waiting.borrow_mut().insert(agent.clone(), given);
                    stamp(&["presence", &agent, "available"]);
                    stamp(&["assigned", &agent]);
                    admin
                        .call(
                            reqwest::Method::PUT,
                            &presence,
                            Some(json!({"presence": "available"})),
                        )
                        .await;
                    let (contact, queue) = tokio::time::timeout(Duration::from_secs(10), assigned)
                        .await
                        .expect("routing gives the available agent a contact")
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    stamp(&["presence", &agent, "busy"]);
                    admin
                        .call(
                            reqwest::Method::PUT,
                            &presence,
                            Some(json!({"presence": "busy"})),
                        )
                        .await;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    stamp(&["ended", &contact]);
                    admin
                        .call(
                            reqwest::Method::POST,
                            &format!("/api/v1/contacts/{contact}/end"),
                            None,
                        )
                        .await;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    stamp(&["queued", &customer]);
                    queue_contact(
                        &client,
                        &base,
                        &api_key,
                        QueueId::parse(&queue).unwrap(),
                        &customer,
                    )
                    .await;
                    *done.borrow_mut() += 1;
                }));
            }
            for cycle in cycles {
                cycle.await.unwrap();
            }
            let changes = *changes.borrow();
            let done = *done.borrow();
            (changes, done)
        })
        .await;
    let change_seconds = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(pid) - cpu_start;
    // The last changes' events are on their way: let them arrive, then stop the watchers.
    local
        .run_until(tokio::time::sleep(Duration::from_secs(2)))
        .await;
    let _ = stop.send(true);
    let mut seen = Vec::new();
    for watcher in watchers {
        seen.push(local.run_until(watcher).await.unwrap());
    }
    let load_cpu = cpu_seconds(std::process::id()) - load_start;
    let rss_end = rss_kib(pid);

    let mut latencies: Vec<Duration> = seen.iter().flat_map(|s| s.latencies.clone()).collect();
    latencies.sort_unstable();
    let delivered = latencies.len();
    let unmatched: usize = seen.iter().map(|s| s.unmatched).sum();
    let lagged: u64 = seen.iter().map(|s| s.lagged).sum();
    let supervisors = &seen[..options.supervisors];
    let fewest = supervisors.iter().map(|s| s.events).min().unwrap_or(0);
    let mut watcher_p99: Vec<f64> = seen
        .iter()
        .map(|s| {
            let mut mine = s.latencies.clone();
            mine.sort_unstable();
            percentile(&mine, 0.99)
        })
        .collect();
    watcher_p99.sort_by(f64::total_cmp);
    let snapshot_ms = |q: f64| percentile(&snapshot_times, q);
    println!(
        "{backend:<10} | seeded {} agents, {} supervisors and {} managers in {seed_seconds:.1} s; {} queued contacts; {} watchers signed in in {login_seconds:.1} s",
        options.agents, options.supervisors, options.managers, options.queued, seeded.watchers.len()
    );
    println!(
        "{backend:<10} | {} streams opened in {connect_seconds:.1} s: server RSS {:.1} MiB before, {:.1} MiB after = {per_watcher_kib:.1} KiB per watcher | snapshots in {snapshot_seconds:.1} s: per page p50 {:.1} ms p99 {:.1} ms max {:.1} ms; server RSS after them {:.1} MiB",
        seen.len(),
        rss_before as f64 / 1024.0,
        rss_streams as f64 / 1024.0,
        snapshot_ms(0.5),
        snapshot_ms(0.99),
        snapshot_ms(1.0),
        rss_after as f64 / 1024.0,
    );
    println!(
        "{backend:<10} | {changes} changes ({cycles_done} cycles) in {change_seconds:.1} s = {:.0} changes/s; {delivered} deliveries = {:.0} events/s out | delay p50 {:.1} ms p99 {:.1} ms max {:.1} ms | worst watcher's p99 {:.1} ms | fewest events a supervisor got {fewest} of {changes} | unmatched {unmatched}, lagged {lagged}",
        changes as f64 / change_seconds,
        delivered as f64 / change_seconds,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        watcher_p99.last().copied().unwrap_or_default(),
    );
    println!(
        "{backend:<10} | server CPU {:.0}% of a core, load CPU {:.0}% | server RSS at the end {:.1} MiB",
        100.0 * server_cpu / change_seconds,
        100.0 * load_cpu / change_seconds,
        rss_end as f64 / 1024.0,
    );
    drop(server);
    std::fs::remove_dir_all(&data_dir).ok();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let database = args
        .iter()
        .position(|a| a == "--db")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "sqlite".into());
    let database = if database == "postgres" {
        std::env::var("SWITCHBOARD_BENCH_POSTGRES")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/switchboard_bench".into())
    } else {
        database
    };
    let from_env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let options = Options {
        database,
        agents: 2_000,
        teams: 20,
        queues: 40,
        queued: 1_000,
        supervisors: if quick { 30 } else { 300 },
        managers: if quick { 20 } else { 200 },
        cycles_per_second: from_env("BENCH_CYCLES", 20) as u32,
        seconds: from_env("BENCH_SECONDS", if quick { 5 } else { 30 }),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&options));
}
