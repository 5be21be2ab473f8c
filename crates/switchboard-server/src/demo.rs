//! The demo center: a few queues in menu trees, business hours, teams, capacity profiles,
//! the site "Head office" in Springfield, IL (where the agents are located for emergency
//! calls), and the users `admin`, `supervisor`, `agent1` and `agent2`. Seeding is idempotent: on a
//! database that has the demo already, it only resets the demo users' passwords. The center
//! is written through the store and announced through the configuration events, as an
//! administrator's edits are; its fixed values are valid by construction.

use crate::app::AppState;
use crate::secret;
use chrono::Utc;
use switchboard_core::hours::{parse_time_zone, Holiday, HoursScope, Schedule, WeeklyPeriod};
use switchboard_core::presence::PresenceState;
use switchboard_core::{
    BuiltinRole, CapacityProfile, CapacityProfileId, Channel, EmailList, Language, Name, QueueId,
    QueueKind, QueueNode, RoleKey, SiteId, Team, TeamId, User, UserId, Username,
};
use switchboard_services::config::ConfigArea;
use switchboard_store::{CenterSettings, HoursRecord, Store, StoreError};
use uuid::Uuid;

/// What the demo prints for people to use.
pub struct DemoCredentials {
    pub password: String,
    pub api_key_id: String,
    pub api_secret: String,
}

/// Why seeding failed: the database, or hashing the password.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SeedError {
    pub message: String,
}

impl From<StoreError> for SeedError {
    fn from(error: StoreError) -> Self {
        Self {
            message: error.to_string(),
        }
    }
}

type SeedResult<T> = Result<T, SeedError>;

fn name(text: &str) -> Name {
    Name::parse("name", text).expect("demo names are valid")
}

fn lang(text: &str) -> Language {
    Language::parse(text).expect("demo languages are valid")
}

fn parse_username(text: &str) -> Username {
    Username::parse(text).expect("demo usernames are valid")
}

async fn hash_password(password: String) -> SeedResult<String> {
    secret::hash_password_off_thread(password)
        .await
        .map_err(|message| SeedError { message })
}

async fn team(store: &dyn Store, team_name: &str) -> SeedResult<TeamId> {
    if let Some(existing) = store
        .list_teams()
        .await?
        .into_iter()
        .find(|t| t.name.as_str() == team_name)
    {
        return Ok(existing.id);
    }
    let team = Team {
        id: TeamId::from_uuid(Uuid::now_v7()),
        name: name(team_name),
        created_at: Utc::now(),
    };
    store.create_team(&team).await?;
    Ok(team.id)
}

async fn profile(
    store: &dyn Store,
    profile_name: &str,
    chats: u16,
    calls: u16,
    outbound: bool,
) -> SeedResult<CapacityProfileId> {
    if let Some(existing) = store
        .list_capacity_profiles()
        .await?
        .into_iter()
        .find(|p| p.name.as_str() == profile_name)
    {
        return Ok(existing.id);
    }
    let profile = CapacityProfile::new(
        CapacityProfileId::from_uuid(Uuid::now_v7()),
        name(profile_name),
        chats,
        calls,
        outbound,
    )
    .expect("demo capacity profiles are valid");
    store.create_capacity_profile(&profile).await?;
    Ok(profile.id)
}

async fn queue(
    store: &dyn Store,
    channel: Channel,
    parent: Option<QueueId>,
    queue_name: &str,
    kind: QueueKind,
    position: i32,
) -> SeedResult<QueueId> {
    let existing = store.list_queues().await?;
    if let Some(node) = existing
        .iter()
        .find(|n| n.channel == channel && n.parent == parent && n.name.as_str() == queue_name)
    {
        return Ok(node.id);
    }
    let node = QueueNode {
        id: QueueId::from_uuid(Uuid::now_v7()),
        channel,
        parent,
        name: name(queue_name),
        kind,
        position,
        priority: 0,
        languages: vec![],
    };
    store.create_queue(&node).await?;
    Ok(node.id)
}

struct DemoUser<'a> {
    username: &'a str,
    display_name: &'a str,
    role: BuiltinRole,
    teams: Vec<TeamId>,
    queues: Vec<QueueId>,
    languages: Vec<Language>,
    profile: Option<CapacityProfileId>,
    /// Where the user works (their location for emergency calls).
    site: Option<SiteId>,
}

async fn user(store: &dyn Store, spec: DemoUser<'_>, password_hash: &str) -> SeedResult<()> {
    let username = parse_username(spec.username);
    if let Some(existing) = store.find_user(&username).await? {
        store.set_password(existing.id, password_hash).await?;
        // A demo from before sites existed gets its users placed on the site.
        if existing.site.is_none() && spec.site.is_some() {
            store
                .update_user(&User {
                    site: spec.site,
                    ..existing
                })
                .await?;
        }
        return Ok(());
    }
    let now = Utc::now();
    let user = User {
        id: UserId::from_uuid(Uuid::now_v7()),
        username,
        display_name: name(spec.display_name),
        email: None,
        role: RoleKey::parse(spec.role.key()).expect("built-in role keys are valid"),
        managed_teams: if spec.role == BuiltinRole::Supervisor {
            spec.teams.clone()
        } else {
            vec![]
        },
        teams: spec.teams,
        queues: spec.queues,
        languages: spec.languages,
        capacity_profile: spec.profile,
        emergency_contacts: EmailList::default(),
        site: spec.site,
        presence: PresenceState::new(now),
        disabled: false,
        totp_enabled: false,
        created_at: now,
    };
    store.create_user(&user, Some(password_hash)).await?;
    Ok(())
}

/// The site the demo's people work at.
async fn head_office(store: &dyn Store) -> SeedResult<SiteId> {
    use switchboard_core::emergency::location::{AddressInput, CivicAddress, Site};
    if let Some(site) = store
        .list_sites()
        .await?
        .into_iter()
        .find(|s| s.name.as_str() == "Head office")
    {
        return Ok(site.id);
    }
    let site = Site {
        id: SiteId::from_uuid(Uuid::now_v7()),
        name: name("Head office"),
        address: CivicAddress::parse(&AddressInput {
            country: "US".into(),
            state: "IL".into(),
            city: "Springfield".into(),
            street: "Main Street".into(),
            number: "100".into(),
            postcode: "62701".into(),
            floor: "2".into(),
            ..AddressInput::default()
        })
        .expect("the demo address is valid"),
    };
    store.create_site(&site).await?;
    Ok(site.id)
}

/// The demo's callback pool: numbers leased to agents who dial an emergency number, which the
/// demo carrier also delivers to the center.
pub const DEMO_CALLBACK_POOL: &str = "15550190-15550199";

/// The demo's voice side: calls from 127.0.0.1 are the carrier trunk, the number 15550100
/// answers with the IVR (1 sales, 2 support), as do the callback numbers 15550190 to 15550199
/// when no agent holds them; agent1 and agent2 register SIP phones with the demo password, and
/// calls to numbers leave through an outbound trunk to `carrier` (9 for an outside line,
/// dropped before sending), which may carry emergency calls.
async fn voice(store: &dyn Store, password: &str, carrier: std::net::SocketAddr) -> SeedResult<()> {
    use switchboard_core::voice::{DialRule, Did, Network, PhoneNumber, Trunk, TrunkDirection};
    let trunks = store.list_trunks().await?;
    let outbound = Trunk {
        id: trunks
            .iter()
            .find(|t| t.name.as_str() == "Demo carrier out")
            .map_or_else(
                || switchboard_core::TrunkId::from_uuid(Uuid::now_v7()),
                |t| t.id,
            ),
        name: name("Demo carrier out"),
        direction: TrunkDirection::Outbound,
        addresses: vec![],
        username: None,
        secret: None,
        host: Some(carrier.ip().to_string()),
        port: Some(carrier.port()),
        tcp: false,
        caller_id: Some(
            PhoneNumber::parse("caller_id", DEMO_CALLER_ID).expect("the demo caller id is valid"),
        ),
        dial_rules: vec![DialRule {
            prefix: "9".into(),
            strip: 1,
            prepend: String::new(),
        }],
        max_calls: None,
        max_calls_per_second: None,
        header_flags: vec![],
        emergency: true,
    };
    store.put_trunk(&outbound).await?;
    if !store
        .list_trunks()
        .await?
        .iter()
        .any(|t| t.name.as_str() == "Demo carrier")
    {
        let trunk = Trunk {
            id: switchboard_core::TrunkId::from_uuid(Uuid::now_v7()),
            name: name("Demo carrier"),
            direction: TrunkDirection::Inbound,
            addresses: ["127.0.0.1", "::1"]
                .map(|a| Network::parse(a).expect("demo addresses are valid"))
                .to_vec(),
            username: None,
            secret: None,
            host: None,
            port: None,
            tcp: false,
            caller_id: None,
            dial_rules: vec![],
            max_calls: None,
            max_calls_per_second: None,
            header_flags: vec![],
            emergency: false,
        };
        store.put_trunk(&trunk).await?;
    }
    let callback_numbers = switchboard_core::emergency::parse_pool(DEMO_CALLBACK_POOL)
        .expect("the demo callback pool is valid");
    for number in std::iter::once(DEMO_NUMBER.to_owned()).chain(callback_numbers) {
        store
            .put_did(&Did {
                number: PhoneNumber::parse("number", &number).expect("the demo numbers are valid"),
                entry: None,
                language: Some(lang("en")),
            })
            .await?;
    }
    for username in ["agent1", "agent2"] {
        if let Some(agent) = store.find_user(&parse_username(username)).await? {
            let ha1 = switchboard_sip::digest::ha1(username, crate::voice::REALM, password);
            store.set_sip_phone(agent.id, Some(&ha1)).await?;
        }
    }
    // What agents pick from when they wrap up a call or a chat.
    if store.dispositions().await?.is_empty() {
        let labels = ["Resolved", "Follow-up needed", "Sale made", "Wrong number"];
        store.set_dispositions(&labels.map(String::from)).await?;
    }
    // Agents hear "Inbound call from Sales" before the caller is connected, unless an admin
    // chose otherwise.
    use switchboard_core::whisper::{Whisper, WhisperMessage};
    if store.whisper_settings().await?.center == Whisper::default() {
        store
            .put_center_whisper(&Whisper {
                message: WhisperMessage::CallType,
                ..Whisper::default()
            })
            .await?;
    }
    Ok(())
}

/// The demo's dialled number.
pub const DEMO_NUMBER: &str = "15550100";
/// The caller id the demo's outbound trunk sends.
pub const DEMO_CALLER_ID: &str = "+15550100";

/// Seeds the demo center and returns what to print.
pub async fn seed(app: &AppState, password: String) -> SeedResult<DemoCredentials> {
    let store = app.services.store.as_ref();
    let settings = CenterSettings {
        name: "Switchboard Demo".into(),
        time_zone: "America/New_York".into(),
        languages: vec![lang("en"), lang("es")],
        country: "US".into(),
        callback_pool: DEMO_CALLBACK_POOL.into(),
    };
    store.update_center_settings(&settings).await?;
    let office = head_office(store).await?;

    let sales_team = team(store, "Sales team").await?;
    let support_team = team(store, "Support team").await?;
    let blended = profile(store, "Blended", 3, 1, true).await?;
    profile(store, "Chat only", 4, 0, false).await?;

    // Voice: the IVR offers 1 for sales, 2 for support (position order).
    let voice_sales = queue(store, Channel::Voice, None, "Sales", QueueKind::Leaf, 1).await?;
    let voice_support = queue(store, Channel::Voice, None, "Support", QueueKind::Leaf, 2).await?;
    let billing = queue(store, Channel::Web, None, "Billing", QueueKind::Menu, 1).await?;
    let refunds = queue(
        store,
        Channel::Web,
        Some(billing),
        "Refunds",
        QueueKind::Leaf,
        1,
    )
    .await?;
    let invoices = queue(
        store,
        Channel::Web,
        Some(billing),
        "Invoices",
        QueueKind::Leaf,
        2,
    )
    .await?;
    let tech = queue(
        store,
        Channel::Web,
        None,
        "Technical support",
        QueueKind::Leaf,
        2,
    )
    .await?;
    let sms = queue(store, Channel::Sms, None, "Text us", QueueKind::Leaf, 1).await?;

    if store.list_hours().await?.is_empty() {
        let period = |text: &str| WeeklyPeriod::parse(text).expect("demo periods are valid");
        let mut periods: Vec<WeeklyPeriod> = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| period(&format!("{d} 08:00-20:00")))
            .collect();
        periods.push(period("sat 10:00-16:00"));
        let schedule = Schedule::new(
            parse_time_zone("America/New_York").expect("the demo time zone exists"),
            periods,
            ["12-25", "01-01"]
                .map(|h| Holiday::parse(h).expect("demo holidays are valid"))
                .to_vec(),
            vec![],
        )
        .expect("the demo schedule is valid");
        store
            .put_hours(&HoursRecord {
                id: Uuid::now_v7().to_string(),
                name: "Center hours".into(),
                scope: HoursScope::default(),
                schedule,
            })
            .await?;
    }
    match store.create_custom_status("Training").await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(other) => return Err(other.into()),
    }

    let hash = hash_password(password.clone()).await?;
    let users = [
        DemoUser {
            username: "admin",
            display_name: "Ada Admin",
            role: BuiltinRole::Admin,
            teams: vec![],
            queues: vec![],
            languages: vec![],
            profile: None,
            site: None,
        },
        DemoUser {
            username: "supervisor",
            display_name: "Sam Supervisor",
            role: BuiltinRole::Supervisor,
            teams: vec![sales_team, support_team],
            queues: vec![],
            languages: vec![],
            profile: None,
            site: Some(office),
        },
        DemoUser {
            username: "agent1",
            display_name: "Alex Agent",
            role: BuiltinRole::Agent,
            teams: vec![sales_team],
            queues: vec![voice_sales, refunds, invoices],
            languages: vec![lang("en")],
            profile: Some(blended),
            site: Some(office),
        },
        DemoUser {
            username: "agent2",
            display_name: "Bea Agent",
            role: BuiltinRole::Agent,
            teams: vec![support_team],
            queues: vec![voice_support, tech, sms],
            languages: vec![lang("en"), lang("es")],
            profile: Some(blended),
            site: Some(office),
        },
    ];
    for spec in users {
        user(store, spec, &hash).await?;
    }
    voice(store, &password, app.config.demo_carrier).await?;

    // A fresh Apps API key each start, so its secret can be printed; the previous one goes.
    for key in store
        .list_api_keys()
        .await?
        .into_iter()
        .filter(|k| k.name == "Demo integration")
    {
        store.delete_api_key(&key.key_id).await?;
    }
    let (key, api_secret) = secret::new_api_key("Demo integration".into(), Utc::now());
    store.create_api_key(&key).await?;
    // Everything the demo wrote, announced at once: routing is rebuilt once, voice reloads.
    app.services
        .config
        .changed_all(vec![
            ConfigArea::Settings,
            ConfigArea::Teams,
            ConfigArea::CapacityProfiles,
            ConfigArea::Queues,
            ConfigArea::Hours,
            ConfigArea::CustomStatuses,
            ConfigArea::Users,
            ConfigArea::Trunks,
            ConfigArea::Numbers,
            ConfigArea::SipPhones,
            ConfigArea::ApiKeys,
            ConfigArea::Emergency,
        ])
        .await?;
    Ok(DemoCredentials {
        password,
        api_key_id: key.key_id,
        api_secret,
    })
}

/// On `serve` with no users at all, creates the first admin so someone can sign in.
pub async fn ensure_first_admin(
    app: &AppState,
    password: Option<String>,
) -> SeedResult<Option<String>> {
    let store = app.services.store.as_ref();
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let password = password.unwrap_or_else(crate::secret::random_password);
    let hash = hash_password(password.clone()).await?;
    let spec = DemoUser {
        username: "admin",
        display_name: "Administrator",
        role: BuiltinRole::Admin,
        teams: vec![],
        queues: vec![],
        languages: vec![],
        profile: None,
        site: None,
    };
    user(store, spec, &hash).await?;
    app.services.config.changed(ConfigArea::Users).await?;
    Ok(Some(password))
}
