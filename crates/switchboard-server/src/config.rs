//! Configuration: defaults, then `switchboard.toml` (or the file `SWITCHBOARD_CONFIG` names),
//! then `SWITCHBOARD_*` environment variables, each overriding the one before.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration problem, said plainly at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name}={value:?} is not valid: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `sqlite://path` (the default, `sqlite://<data dir>/switchboard.db`) or `postgres://…`.
    pub database_url: String,
    /// Where the HTTP API listens.
    pub http: SocketAddr,
    /// Where Switchboard keeps its files (the SQLite database by default, the key file, blobs).
    pub data_dir: PathBuf,
    /// How long a portal session lasts, in hours.
    pub session_hours: i64,
    /// Whether session cookies carry `Secure` (set when the portal is served over HTTPS).
    pub secure_cookies: bool,
    /// The password for the demo users; generated and printed when unset.
    pub demo_password: Option<String>,
    /// Where the demo's outbound trunk sends calls (`SWITCHBOARD_DEMO_CARRIER`, default
    /// 127.0.0.1:5080, so that a SIP peer listening there plays the carrier).
    pub demo_carrier: SocketAddr,
    /// The first admin's password when `serve` starts on an empty database; generated and
    /// printed when unset.
    pub admin_password: Option<String>,
    /// The largest chat attachment, in bytes (SMA-2).
    pub attachment_max_bytes: u64,
    /// How long an agent whose adapters are all gone (closed or cut) and who has no
    /// registered SIP phone keeps their status before going offline, in seconds
    /// (`SWITCHBOARD_PRESENCE_GRACE_SECONDS`, default 60). Reconnecting within it changes
    /// nothing.
    pub presence_grace_seconds: u64,
    /// How long a waiting chat may have no consumer connection before it is ended as
    /// abandoned, in seconds (`SWITCHBOARD_CHAT_ABANDON_SECONDS`, default 120).
    pub chat_abandon_seconds: u64,
    /// Voice settings.
    pub voice: VoiceConfig,
    /// Limits that keep strangers from locking users out or exhausting the server.
    pub security: SecurityConfig,
    /// The master key for data at rest (stored secrets, and the keys of recordings,
    /// attachments and tones), 32 bytes as 64 hex digits or base64 (`SWITCHBOARD_SECRET_KEY`);
    /// when unset, the first line of `<data dir>/secret.key`, made on first start.
    pub secret_key: Option<String>,
    /// Older keys that still open what they sealed, during a rotation
    /// (`SWITCHBOARD_SECRET_KEY_OLD`, comma-separated).
    pub secret_key_old: Vec<String>,
    /// Outgoing mail (the emergency notification).
    pub mail: MailConfig,
    /// The wall clock business hours are read against (the system's; tests move it).
    pub wall_clock: WallClock,
}

/// The wall clock that decides whether queues are open: the system's, or one moved to a
/// chosen instant that runs on from there at the real pace (so a test can place a real call
/// on a Sunday night). Read by the hours decisions of calls (the voice engine's start time)
/// and chats (`ChatService::start`), and by the transfer targets.
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock {
    /// How far this clock is ahead of the system's.
    offset: chrono::Duration,
}

impl WallClock {
    /// A clock that reads `at` now.
    pub fn starting_at(at: chrono::DateTime<chrono::Utc>) -> Self {
        WallClock {
            offset: at - chrono::Utc::now(),
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.offset
    }
}

/// Where outgoing mail goes.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// The SMTP server (`SWITCHBOARD_SMTP_URL`, such as `smtp://127.0.0.1:2525`, or
    /// `smtps://user:password@mail.example.com` and `smtp://…?tls=required` for TLS); when
    /// unset, messages are written as `.eml` files to `outbox/` under the data directory.
    pub smtp_url: Option<String>,
    /// The sender (`SWITCHBOARD_MAIL_FROM`, default `switchboard@localhost`).
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            from: "switchboard@localhost".into(),
        }
    }
}

/// HTTP security limits; every one has a default that suits a center of any size.
#[derive(Clone, Debug)]
pub struct SecurityConfig {
    /// Failed sign-ins throttled by source address and by account. Only the counts are
    /// configurable (`SWITCHBOARD_LOGIN_FREE_FAILURES`, default 3;
    /// `SWITCHBOARD_LOGIN_SOURCE_REFUSE_AFTER`, 20; `SWITCHBOARD_LOGIN_ACCOUNT_SLOW_AFTER`, 10;
    /// `SWITCHBOARD_LOGIN_ACCOUNT_REFUSE_AFTER`, 50); delays grow from 0.5 s to 8 s and
    /// failures count for 15 minutes.
    pub login_throttle: switchboard_core::throttle::Policy,
    /// Password hashes computed at once at most (`SWITCHBOARD_PASSWORD_HASH_SLOTS`, default
    /// the number of cores); beyond it sign-in answers 503 `busy` at once.
    pub password_hash_slots: usize,
    /// Attachment bytes one chat may hold (`SWITCHBOARD_CHAT_MAX_MB`, default 50).
    pub chat_max_bytes: u64,
    /// Attachment bytes one visitor may upload over all their chats
    /// (`SWITCHBOARD_VISITOR_MAX_MB`, default 100).
    pub visitor_max_bytes: u64,
    /// Attachments one visitor may upload in a minute (`SWITCHBOARD_ATTACHMENTS_PER_MINUTE`,
    /// default 10).
    pub attachments_per_minute: u32,
    /// Visitors one source address may create in a minute (`SWITCHBOARD_VISITORS_PER_MINUTE`,
    /// default 30).
    pub visitors_per_minute: u32,
    /// Origins besides the server's own whose pages may open the agent and event WebSockets
    /// (`SWITCHBOARD_ALLOWED_ORIGINS`, comma-separated, such as `https://crm.example.com`;
    /// default none). The widget's consumer socket is open to every embedding site.
    pub allowed_origins: Vec<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            login_throttle: Default::default(),
            password_hash_slots: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            chat_max_bytes: 50 * 1024 * 1024,
            visitor_max_bytes: 100 * 1024 * 1024,
            attachments_per_minute: 10,
            visitors_per_minute: 30,
            allowed_origins: Vec::new(),
        }
    }
}

/// Where SIP listens and how calls behave.
#[derive(Clone, Debug)]
pub struct VoiceConfig {
    /// SIP over UDP and TCP (`SWITCHBOARD_SIP`, default 0.0.0.0:5060; `off` turns voice off).
    pub sip: Option<SocketAddr>,
    /// The address put in Via, Contact and SDP (`SWITCHBOARD_SIP_PUBLIC_IP`); defaults to the
    /// listening address, or 127.0.0.1 when listening on every interface.
    pub public_ip: Option<std::net::IpAddr>,
    /// RTP ports, first and last (`SWITCHBOARD_RTP_PORTS`, default 20000-29999).
    pub rtp_ports: (u16, u16),
    /// How long an agent's phone rings before the next agent is tried (`SWITCHBOARD_RING_SECONDS`).
    pub ring_seconds: u64,
    /// How often a waiting caller hears their position (`SWITCHBOARD_ANNOUNCE_SECONDS`).
    pub announce_seconds: u64,
    /// A call whose caller sends no RTP for this long has gone (`SWITCHBOARD_MEDIA_TIMEOUT_SECONDS`).
    pub media_timeout_seconds: u64,
    /// The text-to-speech engine: `flite` (default), `espeak-ng`, or `none` for tones only
    /// (`SWITCHBOARD_TTS`).
    pub tts: String,
    /// SIP over TCP: connections at most (`SWITCHBOARD_SIP_TCP_MAX`, default 1024), from one
    /// address at most (`SWITCHBOARD_SIP_TCP_PER_SOURCE`, default 32), and how long one may
    /// stay silent, keep-alives counting as traffic (`SWITCHBOARD_SIP_TCP_IDLE_SECONDS`,
    /// default 300).
    pub tcp_max_connections: usize,
    pub tcp_per_source: usize,
    pub tcp_idle_seconds: u64,
    /// An inbound trunk's concurrent calls at most (`SWITCHBOARD_TRUNK_MAX_CALLS`, default
    /// 1000) and new calls per second at most (`SWITCHBOARD_TRUNK_MAX_CPS`, default 100),
    /// unless the trunk sets its own.
    pub trunk_max_calls: usize,
    pub trunk_max_cps: usize,
    /// Threads that carry the calls' media (`SWITCHBOARD_MEDIA_THREADS`, default one per
    /// core). The media runs apart from SIP, HTTP and the database, so that a request or a
    /// call set-up never waits behind a thousand calls' packets.
    pub media_threads: usize,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            sip: Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
            public_ip: None,
            rtp_ports: (20000, 29999),
            ring_seconds: 20,
            announce_seconds: 30,
            media_timeout_seconds: 120,
            tts: "flite".into(),
            tcp_max_connections: 1024,
            tcp_per_source: 32,
            tcp_idle_seconds: 300,
            trunk_max_calls: 1000,
            trunk_max_cps: 100,
            media_threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The file form: every key optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    http: Option<String>,
    data_dir: Option<PathBuf>,
    session_hours: Option<i64>,
    secure_cookies: Option<bool>,
    attachment_max_mb: Option<u64>,
    presence_grace_seconds: Option<u64>,
    chat_abandon_seconds: Option<u64>,
    sip: Option<String>,
    sip_public_ip: Option<String>,
    rtp_ports: Option<String>,
    ring_seconds: Option<u64>,
    announce_seconds: Option<u64>,
    media_timeout_seconds: Option<u64>,
    tts: Option<String>,
    sip_tcp_max: Option<usize>,
    sip_tcp_per_source: Option<usize>,
    sip_tcp_idle_seconds: Option<u64>,
    trunk_max_calls: Option<usize>,
    trunk_max_cps: Option<usize>,
    media_threads: Option<usize>,
    login_free_failures: Option<u32>,
    login_source_refuse_after: Option<u32>,
    login_account_slow_after: Option<u32>,
    login_account_refuse_after: Option<u32>,
    password_hash_slots: Option<usize>,
    chat_max_mb: Option<u64>,
    visitor_max_mb: Option<u64>,
    attachments_per_minute: Option<u32>,
    visitors_per_minute: Option<u32>,
    allowed_origins: Option<Vec<String>>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
}

impl Config {
    /// Loads configuration from the working directory's `switchboard.toml` and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let path = std::env::var_os("SWITCHBOARD_CONFIG").map(PathBuf::from);
        let file = match &path {
            Some(path) => Some(read_file(path)?),
            None if Path::new("switchboard.toml").exists() => {
                Some(read_file(Path::new("switchboard.toml"))?)
            }
            None => None,
        };
        Self::from_sources(file.unwrap_or_default(), |name| std::env::var(name).ok())
    }

    fn from_sources(
        file: FileConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let voice = voice_config(&file, &env)?;
        let security = security_config(&file, &env)?;
        let data_dir = env("SWITCHBOARD_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("."));
        let database_url = env("SWITCHBOARD_DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("switchboard.db").display()));
        let http_text = env("SWITCHBOARD_HTTP")
            .or(file.http)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let http = http_text
            .parse()
            .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                name: "SWITCHBOARD_HTTP",
                value: http_text.clone(),
                reason: e.to_string(),
            })?;
        let session_hours = match env("SWITCHBOARD_SESSION_HOURS") {
            Some(text) => text
                .parse()
                .ok()
                .filter(|h| (1..=720).contains(h))
                .ok_or_else(|| ConfigError::Env {
                    name: "SWITCHBOARD_SESSION_HOURS",
                    value: text,
                    reason: "a whole number of hours from 1 to 720".into(),
                })?,
            None => file.session_hours.unwrap_or(12),
        };
        let secure_cookies = match env("SWITCHBOARD_SECURE_COOKIES").as_deref() {
            Some("1" | "true") => true,
            Some("0" | "false") => false,
            Some(other) => {
                return Err(ConfigError::Env {
                    name: "SWITCHBOARD_SECURE_COOKIES",
                    value: other.into(),
                    reason: "true or false".into(),
                })
            }
            None => file.secure_cookies.unwrap_or(false),
        };
        let attachment_max_mb = match env("SWITCHBOARD_ATTACHMENT_MAX_MB") {
            Some(text) => text
                .parse()
                .ok()
                .filter(|mb| (1..=1024).contains(mb))
                .ok_or_else(|| ConfigError::Env {
                    name: "SWITCHBOARD_ATTACHMENT_MAX_MB",
                    value: text,
                    reason: "a whole number of megabytes from 1 to 1024".into(),
                })?,
            None => file.attachment_max_mb.unwrap_or(25),
        };
        let seconds = |name: &'static str, file_value: Option<u64>, default: u64| {
            whole_number(
                &env,
                name,
                file_value,
                default,
                3600,
                "a whole number of seconds from 1 to 3600 (in the environment or the file)",
            )
        };
        let presence_grace_seconds = seconds(
            "SWITCHBOARD_PRESENCE_GRACE_SECONDS",
            file.presence_grace_seconds,
            60,
        )?;
        let chat_abandon_seconds = seconds(
            "SWITCHBOARD_CHAT_ABANDON_SECONDS",
            file.chat_abandon_seconds,
            120,
        )?;
        Ok(Self {
            voice,
            security,
            attachment_max_bytes: attachment_max_mb * 1024 * 1024,
            presence_grace_seconds,
            chat_abandon_seconds,
            database_url,
            http,
            data_dir,
            session_hours,
            secure_cookies,
            secret_key: env("SWITCHBOARD_SECRET_KEY").filter(|k| !k.is_empty()),
            secret_key_old: env("SWITCHBOARD_SECRET_KEY_OLD")
                .map(|text| {
                    text.split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            demo_password: env("SWITCHBOARD_DEMO_PASSWORD").filter(|p| !p.is_empty()),
            demo_carrier: match env("SWITCHBOARD_DEMO_CARRIER").filter(|v| !v.is_empty()) {
                Some(value) => value.parse().map_err(|_| ConfigError::Env {
                    name: "SWITCHBOARD_DEMO_CARRIER",
                    reason: "an address and port such as 127.0.0.1:5080".into(),
                    value,
                })?,
                None => SocketAddr::from(([127, 0, 0, 1], 5080)),
            },
            admin_password: env("SWITCHBOARD_ADMIN_PASSWORD").filter(|p| !p.is_empty()),
            mail: MailConfig {
                smtp_url: env("SWITCHBOARD_SMTP_URL")
                    .or(file.smtp_url)
                    .filter(|u| !u.trim().is_empty()),
                from: env("SWITCHBOARD_MAIL_FROM")
                    .or(file.mail_from)
                    .filter(|f| !f.trim().is_empty())
                    .unwrap_or_else(|| MailConfig::default().from),
            },
            wall_clock: WallClock::default(),
        })
    }

    /// A configuration for tests: SQLite in `data_dir`, listening anywhere.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let mut config =
            Self::from_sources(FileConfig::default(), |_| None).expect("defaults are valid");
        config.data_dir = data_dir.to_owned();
        config.database_url = format!("sqlite://{}", data_dir.join("switchboard.db").display());
        config.voice.sip = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config
    }
}

fn voice_config(
    file: &FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<VoiceConfig, ConfigError> {
    let defaults = VoiceConfig::default();
    let bad = |name: &'static str, value: &str, reason: &str| ConfigError::Env {
        name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let sip = match env("SWITCHBOARD_SIP").or(file.sip.clone()) {
        None => defaults.sip,
        Some(text) if text == "off" => None,
        Some(text) => Some(text.parse().map_err(|_| {
            bad(
                "SWITCHBOARD_SIP",
                &text,
                "an address such as 0.0.0.0:5060, or off",
            )
        })?),
    };
    let public_ip = match env("SWITCHBOARD_SIP_PUBLIC_IP").or(file.sip_public_ip.clone()) {
        None => None,
        Some(text) => Some(
            text.parse()
                .map_err(|_| bad("SWITCHBOARD_SIP_PUBLIC_IP", &text, "an IP address"))?,
        ),
    };
    let rtp_ports = match env("SWITCHBOARD_RTP_PORTS").or(file.rtp_ports.clone()) {
        None => defaults.rtp_ports,
        Some(text) => text
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| *a >= 1024 && a < b && b - a >= 3)
            .ok_or_else(|| {
                bad(
                    "SWITCHBOARD_RTP_PORTS",
                    &text,
                    "a range such as 20000-29999 (at least 4 ports, from 1024)",
                )
            })?,
    };
    let seconds = |name: &'static str, file_value: Option<u64>, default: u64| match env(name) {
        None => Ok(file_value.unwrap_or(default)),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=3600).contains(s))
            .ok_or_else(|| bad(name, &text, "a whole number of seconds from 1 to 3600")),
    };
    let tts = env("SWITCHBOARD_TTS")
        .or(file.tts.clone())
        .unwrap_or(defaults.tts);
    if !["flite", "espeak-ng", "none"].contains(&tts.as_str()) {
        return Err(bad("SWITCHBOARD_TTS", &tts, "flite, espeak-ng or none"));
    }
    let count = |name: &'static str, file_value: Option<usize>, default: usize| match env(name) {
        None => Ok(file_value.unwrap_or(default)),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| bad(name, &text, "a whole number from 1 to 1000000")),
    };
    Ok(VoiceConfig {
        sip,
        public_ip,
        rtp_ports,
        ring_seconds: seconds(
            "SWITCHBOARD_RING_SECONDS",
            file.ring_seconds,
            defaults.ring_seconds,
        )?,
        announce_seconds: seconds(
            "SWITCHBOARD_ANNOUNCE_SECONDS",
            file.announce_seconds,
            defaults.announce_seconds,
        )?,
        media_timeout_seconds: seconds(
            "SWITCHBOARD_MEDIA_TIMEOUT_SECONDS",
            file.media_timeout_seconds,
            defaults.media_timeout_seconds,
        )?,
        tts,
        tcp_max_connections: count(
            "SWITCHBOARD_SIP_TCP_MAX",
            file.sip_tcp_max,
            defaults.tcp_max_connections,
        )?,
        tcp_per_source: count(
            "SWITCHBOARD_SIP_TCP_PER_SOURCE",
            file.sip_tcp_per_source,
            defaults.tcp_per_source,
        )?,
        tcp_idle_seconds: seconds(
            "SWITCHBOARD_SIP_TCP_IDLE_SECONDS",
            file.sip_tcp_idle_seconds,
            defaults.tcp_idle_seconds,
        )?,
        trunk_max_calls: count(
            "SWITCHBOARD_TRUNK_MAX_CALLS",
            file.trunk_max_calls,
            defaults.trunk_max_calls,
        )?,
        trunk_max_cps: count(
            "SWITCHBOARD_TRUNK_MAX_CPS",
            file.trunk_max_cps,
            defaults.trunk_max_cps,
        )?,
        media_threads: count(
            "SWITCHBOARD_MEDIA_THREADS",
            file.media_threads,
            defaults.media_threads,
        )?,
    })
}

fn security_config(
    file: &FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SecurityConfig, ConfigError> {
    let defaults = SecurityConfig::default();
    // The same range from the file as from the environment: a 0 would refuse every sign-in
    // or switch the widget off, and a huge size would overflow.
    let number = |name: &'static str, file_value: Option<u64>, default: u64| {
        whole_number(
            env,
            name,
            file_value,
            default,
            1_000_000,
            "a whole number from 1 to 1000000 (in the environment or the file)",
        )
    };
    let small = |name: &'static str, file_value: Option<u32>, default: u32| {
        number(name, file_value.map(u64::from), u64::from(default))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let policy = defaults.login_throttle;
    let login_throttle = switchboard_core::throttle::Policy {
        free_failures: small(
            "SWITCHBOARD_LOGIN_FREE_FAILURES",
            file.login_free_failures,
            policy.free_failures,
        )?,
        source_refuse_after: small(
            "SWITCHBOARD_LOGIN_SOURCE_REFUSE_AFTER",
            file.login_source_refuse_after,
            policy.source_refuse_after,
        )?,
        account_slow_after: small(
            "SWITCHBOARD_LOGIN_ACCOUNT_SLOW_AFTER",
            file.login_account_slow_after,
            policy.account_slow_after,
        )?,
        account_refuse_after: small(
            "SWITCHBOARD_LOGIN_ACCOUNT_REFUSE_AFTER",
            file.login_account_refuse_after,
            policy.account_refuse_after,
        )?,
        ..policy
    };
    let megabytes = 1024 * 1024;
    let allowed_origins = match env("SWITCHBOARD_ALLOWED_ORIGINS") {
        Some(text) => text
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect(),
        None => file.allowed_origins.clone().unwrap_or_default(),
    };
    if let Some(bad) = allowed_origins
        .iter()
        .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'))
    {
        return Err(ConfigError::Env {
            name: "SWITCHBOARD_ALLOWED_ORIGINS",
            value: bad.clone(),
            reason: "origins such as https://crm.example.com (scheme and host, no path)".into(),
        });
    }
    Ok(SecurityConfig {
        login_throttle,
        password_hash_slots: usize::try_from(number(
            "SWITCHBOARD_PASSWORD_HASH_SLOTS",
            file.password_hash_slots.map(|n| n as u64),
            defaults.password_hash_slots as u64,
        )?)
        .unwrap_or(1),
        chat_max_bytes: number(
            "SWITCHBOARD_CHAT_MAX_MB",
            file.chat_max_mb,
            defaults.chat_max_bytes / megabytes,
        )? * megabytes,
        visitor_max_bytes: number(
            "SWITCHBOARD_VISITOR_MAX_MB",
            file.visitor_max_mb,
            defaults.visitor_max_bytes / megabytes,
        )? * megabytes,
        attachments_per_minute: small(
            "SWITCHBOARD_ATTACHMENTS_PER_MINUTE",
            file.attachments_per_minute,
            defaults.attachments_per_minute,
        )?,
        visitors_per_minute: small(
            "SWITCHBOARD_VISITORS_PER_MINUTE",
            file.visitors_per_minute,
            defaults.visitors_per_minute,
        )?,
        allowed_origins,
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A whole number from 1 to `max`, from the environment, else the file, else `default`; the
/// same range from either (a 0 would refuse every sign-in or switch a limit off, a huge one
/// would overflow).
fn whole_number(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    file_value: Option<u64>,
    default: u64,
    max: u64,
    reason: &str,
) -> Result<u64, ConfigError> {
    let text = match env(name) {
        Some(text) => text,
        None => match file_value {
            Some(value) => value.to_string(),
            None => return Ok(default),
        },
    };
    text.parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ConfigError::Env {
            name,
            value: text,
            reason: reason.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let file: FileConfig =
            toml::from_str("http = \"127.0.0.1:9000\"\nsession_hours = 4\ndata_dir = \"/srv/sb\"")
                .unwrap();
        let config = Config::from_sources(file, |name| {
            (name == "SWITCHBOARD_HTTP").then(|| "0.0.0.0:7000".into())
        })
        .unwrap();
        assert_eq!(config.http.to_string(), "0.0.0.0:7000");
        assert_eq!(config.session_hours, 4);
        assert_eq!(config.database_url, "sqlite:///srv/sb/switchboard.db");
        let bad = Config::from_sources(FileConfig::default(), |name| {
            (name == "SWITCHBOARD_HTTP").then(|| "nowhere".into())
        });
        assert!(matches!(
            bad,
            Err(ConfigError::Env {
                name: "SWITCHBOARD_HTTP",
                ..
            })
        ));
        assert!(
            toml::from_str::<FileConfig>("htp = 1").is_err(),
            "typos in the file are errors"
        );
    }

    #[test]
    fn security_limits_from_the_file_are_checked_like_the_environment() {
        for text in [
            "login_source_refuse_after = 0",
            "visitors_per_minute = 0",
            "chat_max_mb = 9223372036854775807",
        ] {
            let file: FileConfig = toml::from_str(text).unwrap();
            assert!(
                Config::from_sources(file, |_| None).is_err(),
                "{text} is refused"
            );
        }
        let file: FileConfig = toml::from_str("visitors_per_minute = 5").unwrap();
        assert!(Config::from_sources(file, |_| None).is_ok());
    }

    #[test]
    fn grace_periods_have_defaults_and_are_checked() {
        let config = Config::from_sources(FileConfig::default(), |_| None).unwrap();
        assert_eq!(
            (config.presence_grace_seconds, config.chat_abandon_seconds),
            (60, 120)
        );
        let file: FileConfig = toml::from_str("presence_grace_seconds = 5").unwrap();
        let config = Config::from_sources(file, |name| {
            (name == "SWITCHBOARD_CHAT_ABANDON_SECONDS").then(|| "30".into())
        })
        .unwrap();
        assert_eq!(
            (config.presence_grace_seconds, config.chat_abandon_seconds),
            (5, 30)
        );
        for bad in ["0", "3601", "soon"] {
            let refused = Config::from_sources(FileConfig::default(), |name| {
                (name == "SWITCHBOARD_PRESENCE_GRACE_SECONDS").then(|| bad.into())
            });
            assert!(
                matches!(
                    refused,
                    Err(ConfigError::Env {
                        name: "SWITCHBOARD_PRESENCE_GRACE_SECONDS",
                        ..
                    })
                ),
                "{bad} is refused"
            );
        }
        let file: FileConfig = toml::from_str("chat_abandon_seconds = 0").unwrap();
        assert!(Config::from_sources(file, |_| None).is_err());
    }
}
